//! grpcurl and curl against `buffa-ingest`, the example served with the buffa message
//! backend: strangers' clients encode the request (grpc-go's protobuf, found through server
//! reflection; JSON over the Connect protocol), switchboard decodes it as zero-copy views.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use super::{CALL_TIMEOUT, Report, Server};
use crate::steps::{Step, run_step};

const INGEST: &str = "acme.logs.v1.LogService/Ingest";

/// Two records from two services: 4 + 5 bytes of messages, one of them non-ASCII (ü is two
/// bytes in UTF-8), with a map entry and a `bytes` field in each encoding.
const BATCH: &str = r#"{"records":[{"service":"checkout","message":"paid","attributes":{"region":"eu"},"traceId":"q80="},{"service":"search","message":"grün","timeUnixNanos":"1"}]}"#;

/// The answer to [`BATCH`], as compact JSON.
const COUNTED: &str = r#"{"accepted":2,"messageBytes":"9","services":["checkout","search"]}"#;

/// A record without a service, which the handler refuses.
const INVALID: &str = r#"{"records":[{"message":"orphan"}]}"#;

/// Runs the checks, recording each in `report`.
pub(super) fn checks(
    report: &mut Report,
    logs: &Path,
    grpcurl: &Path,
    server: &Server,
) -> Result<()> {
    let step = run_step(
        logs,
        "buffa: grpcurl Ingest",
        Command::new(grpcurl).args(["-plaintext", "-d", BATCH, &server.addr, INGEST]),
        CALL_TIMEOUT,
    )?;
    // grpcurl pretty-prints its JSON.
    let compact: String = step.stdout.split_whitespace().collect();
    let outcome = expect_counted(&step, &compact);
    report.record(
        "buffa: grpcurl (gRPC, via reflection) Ingest is counted",
        outcome,
        &step.logs,
    );

    let step = run_step(
        logs,
        "buffa: grpcurl Ingest without a service",
        Command::new(grpcurl).args(["-plaintext", "-d", INVALID, &server.addr, INGEST]),
        CALL_TIMEOUT,
    )?;
    report.record(
        "buffa: grpcurl Ingest without a service is InvalidArgument",
        super::expect_grpcurl_status(&step, "InvalidArgument"),
        &step.logs,
    );

    let url = format!("http://{}/{INGEST}", server.addr);
    let step = run_step(
        logs,
        "buffa: curl Ingest",
        Command::new("curl").args([
            "--silent",
            "--header",
            "content-type: application/json",
            "--data",
            BATCH,
            &url,
        ]),
        CALL_TIMEOUT,
    )?;
    let outcome = expect_counted(&step, step.stdout.trim());
    report.record(
        "buffa: curl (Connect JSON) Ingest is counted",
        outcome,
        &step.logs,
    );
    Ok(())
}

/// A call that succeeded and answered [`COUNTED`] (`json`: its output, made compact).
fn expect_counted(step: &Step, json: &str) -> Result<(), String> {
    if step.success() && json == COUNTED {
        Ok(())
    } else {
        Err(format!(
            "want {COUNTED}, got {} / {:?}",
            step.failure(),
            step.stdout
        ))
    }
}
