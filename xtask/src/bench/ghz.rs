//! ghz, the second load generator (gRPC unary only): its command line and its JSON report.
//!
//! ghz reads the schema itself (no protoc) and builds each request from JSON. With
//! `--duration-stop wait` the calls in flight when the time is up finish and count, instead
//! of being cancelled and reported as errors.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;

use super::bodies::{SMALL_PAYLOAD, payload};
use super::matrix::GHZ_CONNECTIONS;

/// The `-d` JSON of an `EchoRequest` with the 64-byte payload.
pub(crate) fn echo_data() -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(payload(SMALL_PAYLOAD));
    format!("{{\"payload\":\"{encoded}\"}}")
}

/// The arguments of a run of `seconds` at `concurrency` against `port`.
pub(crate) fn args(workspace: &Path, port: u16, concurrency: u32, seconds: f64) -> Vec<String> {
    let protos = workspace.join("benches").join("proto");
    vec![
        "--insecure".to_owned(),
        "--proto".to_owned(),
        protos.join("bench/v1/echo.proto").display().to_string(),
        "--import-paths".to_owned(),
        protos.display().to_string(),
        "--call".to_owned(),
        "bench.v1.EchoService.Echo".to_owned(),
        "-d".to_owned(),
        echo_data(),
        "-c".to_owned(),
        concurrency.to_string(),
        "--connections".to_owned(),
        GHZ_CONNECTIONS.to_string(),
        "-z".to_owned(),
        format!("{}ms", (seconds * 1000.0).round() as u64),
        "--duration-stop".to_owned(),
        "wait".to_owned(),
        "--format".to_owned(),
        "json".to_owned(),
        format!("127.0.0.1:{port}"),
    ]
}

/// `taskset -c CPU ghz ...`.
pub(crate) fn command(ghz: &Path, cpu: Option<u32>, args: &[String]) -> Command {
    super::pinned(cpu, ghz, args)
}

/// What a ghz run measured.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Report {
    pub(crate) count: u64,
    pub(crate) requests_per_second: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

/// Reads ghz's JSON report, failing unless every call ended with status OK and no error.
pub(crate) fn parse(json: &str) -> Result<Report> {
    let value: serde_json::Value =
        serde_json::from_str(json.trim()).context("ghz did not print a JSON report")?;
    let count = value["count"]
        .as_u64()
        .context("no count in ghz's report")?;
    if count == 0 {
        bail!("ghz: no call completed");
    }
    let errors = value["errorDistribution"].as_object();
    if let Some(errors) = errors.filter(|errors| !errors.is_empty()) {
        let list: Vec<String> = errors.iter().map(|(e, n)| format!("{n}× {e}")).collect();
        bail!("ghz reported errors: {}", list.join("; "));
    }
    let statuses = value["statusCodeDistribution"]
        .as_object()
        .context("no statusCodeDistribution in ghz's report")?;
    let ok = statuses.get("OK").and_then(|n| n.as_u64()).unwrap_or(0);
    if ok != count || statuses.len() != 1 {
        bail!("ghz: {ok} of {count} calls OK ({statuses:?})");
    }
    let latency = |percentage: u64| -> Result<f64> {
        value["latencyDistribution"]
            .as_array()
            .context("no latencyDistribution in ghz's report")?
            .iter()
            .find(|entry| entry["percentage"].as_u64() == Some(percentage))
            .and_then(|entry| entry["latency"].as_f64())
            .map(|nanos| nanos / 1000.0)
            .with_context(|| format!("no p{percentage} in ghz's report"))
    };
    Ok(Report {
        count,
        requests_per_second: value["rps"].as_f64().context("no rps in ghz's report")?,
        p50_us: latency(50)?,
        p99_us: latency(99)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_report() {
        let json = r#"{"date":"2026-01-01T00:00:00Z","count":1000,"total":1000000000,
            "rps":9876.5,"errorDistribution":{},"statusCodeDistribution":{"OK":1000},
            "latencyDistribution":[{"percentage":10,"latency":100000},
              {"percentage":50,"latency":250000},{"percentage":99,"latency":1500000}],
            "details":[]}"#;
        let report = parse(json).unwrap();
        assert_eq!(report.count, 1000);
        assert_eq!(report.requests_per_second, 9876.5);
        assert_eq!(report.p50_us, 250.0);
        assert_eq!(report.p99_us, 1500.0);
    }

    #[test]
    fn rejects_errors_and_other_statuses() {
        let errors = r#"{"count":10,"rps":1,"errorDistribution":{"rpc error: code = Unavailable":2},
            "statusCodeDistribution":{"OK":8,"Unavailable":2},"latencyDistribution":[]}"#;
        let why = parse(errors).unwrap_err().to_string();
        assert!(why.contains("Unavailable"), "{why}");
        let unimplemented = r#"{"count":10,"rps":1,"errorDistribution":null,
            "statusCodeDistribution":{"Unimplemented":10},"latencyDistribution":null}"#;
        assert!(parse(unimplemented).is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn data_is_the_base64_payload() {
        let data = echo_data();
        assert!(data.starts_with("{\"payload\":\"AwoRGB8m"), "{data}");
        assert_eq!(data.len(), "{\"payload\":\"\"}".len() + 88);
    }
}
