//! grpcurl and curl against `buffa-ingest`, the example served with the buffa message
//! backend: strangers' clients encode the request (grpc-go's protobuf, found through server
//! reflection; JSON over the Connect protocol), switchboard decodes it as zero-copy views.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use super::{CALL_TIMEOUT, Report, Server};
use crate::steps::run_step;

const INGEST: &str = "acme.logs.v1.LogService/Ingest";

/// Two records from two services: 4 + 5 bytes of messages, one of them non-ASCII (ü is two
/// bytes in UTF-8), with a map entry and a `bytes` field in each encoding.
const BATCH: &str = r#"{"records":[{"service":"checkout","message":"paid","attributes":{"region":"eu"},"traceId":"q80="},{"service":"search","message":"grün","timeUnixNanos":"1"}]}"#;

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
    let compact: String = step.stdout.split_whitespace().collect();
    let want = r#"{"accepted":2,"messageBytes":"9","services":["checkout","search"]}"#;
    let outcome = if step.success() && compact == want {
        Ok(())
    } else {
        Err(format!(
            "want {want}, got {} / {:?}",
            step.failure(),
            step.stdout
        ))
    };
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
    let output = format!(
        "{}{}",
        step.stdout,
        std::fs::read_to_string(&step.logs[1]).unwrap_or_default()
    );
    let outcome = if !step.success() && output.contains("Code: InvalidArgument") {
        Ok(())
    } else {
        Err(format!("want Code: InvalidArgument, got {output:?}"))
    };
    report.record(
        "buffa: grpcurl Ingest without a service is InvalidArgument",
        outcome,
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
    let want = r#"{"accepted":2,"messageBytes":"9","services":["checkout","search"]}"#;
    let outcome = if step.success() && step.stdout.trim() == want {
        Ok(())
    } else {
        Err(format!(
            "want {want}, got {} / {:?}",
            step.failure(),
            step.stdout
        ))
    };
    report.record(
        "buffa: curl (Connect JSON) Ingest is counted",
        outcome,
        &step.logs,
    );
    Ok(())
}
