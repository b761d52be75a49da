//! `pingpong`, the bidi driver (h2load cannot wait for an answer before sending the next
//! message): its command line and its one-line JSON report.

use anyhow::{Context as _, Result, bail};

use super::bodies::SMALL_PAYLOAD;
use super::matrix::{PINGPONG_ROUND_TRIPS, Protocol};

/// The arguments of a run: `warmup` seconds uncounted, then `seconds` measured.
pub(crate) fn args(
    port: u16,
    protocol: Protocol,
    streams: u32,
    warmup: f64,
    seconds: f64,
) -> Vec<String> {
    let mut args = shared_args(port, protocol, streams);
    args.extend([
        "--warmup".to_owned(),
        warmup.to_string(),
        "--duration".to_owned(),
        seconds.to_string(),
        "--json".to_owned(),
    ]);
    args
}

/// The arguments of a run of exactly `total` round trips without warm-up, for instruction
/// counts: how much the server does must not depend on how fast it is.
pub(crate) fn counted_args(port: u16, protocol: Protocol, streams: u32, total: u64) -> Vec<String> {
    let mut args = shared_args(port, protocol, streams);
    args.extend([
        "--warmup".to_owned(),
        "0".to_owned(),
        "--total".to_owned(),
        total.to_string(),
        "--json".to_owned(),
    ]);
    args
}

/// Address, protocol, streams and message shape: what every run has in common.
fn shared_args(port: u16, protocol: Protocol, streams: u32) -> Vec<String> {
    vec![
        "--addr".to_owned(),
        format!("127.0.0.1:{port}"),
        "--protocol".to_owned(),
        protocol.pingpong_name().to_owned(),
        "--streams".to_owned(),
        streams.to_string(),
        "--round-trips".to_owned(),
        PINGPONG_ROUND_TRIPS.to_string(),
        "--payload".to_owned(),
        SMALL_PAYLOAD.to_string(),
    ]
}

/// What a pingpong run measured.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Report {
    pub(crate) round_trips: u64,
    pub(crate) round_trips_per_second: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

/// Reads the JSON object pingpong prints, failing on any counted error.
pub(crate) fn parse(stdout: &str) -> Result<Report> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("pingpong printed no JSON report")?;
    let value: serde_json::Value = serde_json::from_str(line)?;
    let number = |key: &str| -> Result<f64> {
        value[key]
            .as_f64()
            .with_context(|| format!("no {key} in pingpong's report"))
    };
    let errors = number("errors")?;
    if errors > 0.0 {
        bail!("pingpong counted {errors} errors");
    }
    let round_trips = number("round_trips")? as u64;
    if round_trips == 0 {
        bail!("pingpong completed no round trip");
    }
    Ok(Report {
        round_trips,
        round_trips_per_second: number("round_trips_per_sec")?,
        p50_us: number("p50_us")?,
        p99_us: number("p99_us")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_report() {
        let out = "{\"round_trips\":5000,\"rpcs\":50,\"errors\":0,\"seconds\":1.000000,\
                   \"round_trips_per_sec\":5000.0,\"p50_us\":180,\"p99_us\":900,\"max_us\":2000}\n";
        let report = parse(out).unwrap();
        assert_eq!(report.round_trips, 5000);
        assert_eq!(report.round_trips_per_second, 5000.0);
        assert_eq!(report.p99_us, 900.0);
        assert!(parse(&out.replace("\"errors\":0", "\"errors\":3")).is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn command_line() {
        let args = args(9000, Protocol::Connect, 16, 1.0, 0.5).join(" ");
        assert_eq!(
            args,
            "--addr 127.0.0.1:9000 --protocol connect --streams 16 --round-trips 100 \
             --payload 64 --warmup 1 --duration 0.5 --json"
        );
        let counted = counted_args(9000, Protocol::Grpc, 1, 2000).join(" ");
        assert_eq!(
            counted,
            "--addr 127.0.0.1:9000 --protocol grpc --streams 1 --round-trips 100 \
             --payload 64 --warmup 0 --total 2000 --json"
        );
    }
}
