//! h2load: the command line of one run, its summary and the latency percentiles of its
//! per-request log (h2load itself prints only min, max, mean and deviation).
//!
//! h2load exits 0 whatever happened to the requests, so a run only counts when its summary
//! says every request succeeded with a 2xx and none failed, errored or timed out.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use super::matrix::{Call, Protocol};

/// How long or how much one h2load run sends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Amount {
    /// `-D SECONDS`.
    Seconds(f64),
    /// `-n REQUESTS`.
    Requests(u64),
}

/// One h2load invocation against `port`.
pub(crate) struct Run<'a> {
    pub(crate) h2load: &'a Path,
    pub(crate) port: u16,
    pub(crate) call: Call,
    pub(crate) protocol: Protocol,
    pub(crate) body: &'a Path,
    /// `-c`: connections.
    pub(crate) clients: u32,
    /// `-m`: streams per connection.
    pub(crate) streams: u32,
    pub(crate) amount: Amount,
    pub(crate) log_file: Option<&'a Path>,
}

impl Run<'_> {
    /// The command, without CPU pinning (the caller wraps it).
    pub(crate) fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-t".to_owned(),
            "1".to_owned(),
            "-c".to_owned(),
            self.clients.to_string(),
            "-m".to_owned(),
            self.streams.to_string(),
        ];
        if self.protocol.is_http1() {
            args.push("--h1".to_owned());
        }
        match self.amount {
            Amount::Seconds(seconds) => {
                args.push("-D".to_owned());
                args.push(format_seconds(seconds));
            }
            Amount::Requests(n) => {
                args.push("-n".to_owned());
                args.push(n.to_string());
            }
        }
        if let Some(log) = self.log_file {
            args.push(format!("--log-file={}", log.display()));
        }
        args.push("-d".to_owned());
        args.push(self.body.display().to_string());
        for (name, value) in self.protocol.headers(self.call) {
            args.push("-H".to_owned());
            args.push(format!("{name}: {value}"));
        }
        args.push(format!(
            "http://127.0.0.1:{}{}",
            self.port,
            self.call.path()
        ));
        args
    }

    /// `taskset -c CPU h2load ...`, or plain h2load when `cpu` is `None`.
    pub(crate) fn command(&self, cpu: Option<u32>) -> Command {
        super::pinned(cpu, self.h2load, &self.args())
    }
}

/// h2load's duration argument: whole seconds as they are, fractions in milliseconds.
fn format_seconds(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("{}", seconds as u64)
    } else {
        format!("{}ms", (seconds * 1000.0).round() as u64)
    }
}

/// The summary lines of h2load's output.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) seconds: f64,
    pub(crate) requests_per_second: f64,
    pub(crate) total: u64,
    pub(crate) done: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) errored: u64,
    pub(crate) timeout: u64,
    pub(crate) status_2xx: u64,
    pub(crate) status_other: u64,
    /// Response body bytes (the `data` of the `traffic:` line).
    pub(crate) data_bytes: u64,
}

impl Summary {
    /// Reads `finished in ...`, `requests: ...` and `status codes: ...`.
    pub(crate) fn parse(output: &str) -> Result<Summary> {
        let mut summary = Summary::default();
        let mut seen = [false; 4];
        for line in output.lines() {
            if let Some(rest) = line.strip_prefix("finished in ") {
                let mut parts = rest.split(',').map(str::trim);
                summary.seconds = parse_duration(parts.next().unwrap_or_default())?;
                let rps = parts.next().unwrap_or_default();
                summary.requests_per_second = rps
                    .strip_suffix(" req/s")
                    .with_context(|| format!("no req/s in {line:?}"))?
                    .parse()?;
                seen[0] = true;
            } else if let Some(rest) = line.strip_prefix("requests: ") {
                for part in rest.split(',') {
                    let (count, what) = count_and_word(part)?;
                    match what {
                        "total" => summary.total = count,
                        "done" => summary.done = count,
                        "succeeded" => summary.succeeded = count,
                        "failed" => summary.failed = count,
                        "errored" => summary.errored = count,
                        "timeout" => summary.timeout = count,
                        _ => {}
                    }
                }
                seen[1] = true;
            } else if let Some(rest) = line.strip_prefix("status codes: ") {
                for part in rest.split(',') {
                    let (count, what) = count_and_word(part)?;
                    if what == "2xx" {
                        summary.status_2xx = count;
                    } else {
                        summary.status_other += count;
                    }
                }
                seen[2] = true;
            } else if let Some(rest) = line.strip_prefix("traffic: ") {
                // `2.24MB (2344421) total, 349.51KB (357899) headers (...), 1.21MB (1271008) data`
                let data = rest
                    .split(',')
                    .find(|part| part.trim_end().ends_with(" data"))
                    .and_then(|part| part.split_once('(')?.1.split_once(')'))
                    .with_context(|| format!("no data bytes in {line:?}"))?;
                summary.data_bytes = data.0.parse()?;
                seen[3] = true;
            }
        }
        if seen != [true; 4] {
            bail!("h2load printed no summary");
        }
        Ok(summary)
    }

    /// Fails unless every request succeeded with a 2xx status. `in_flight` is how many
    /// responses may have started (and been counted by status) without finishing: when a
    /// timed run ends, h2load stops with the streams in flight unfinished, which is not a
    /// failure (it counts them in neither `succeeded` nor `failed`).
    pub(crate) fn check(&self, in_flight: u64) -> Result<()> {
        if self.succeeded == 0 {
            bail!("h2load: no request succeeded");
        }
        if self.failed > 0 || self.errored > 0 || self.timeout > 0 {
            bail!(
                "h2load: {} failed, {} errored, {} timed out of {}",
                self.failed,
                self.errored,
                self.timeout,
                self.total
            );
        }
        let unfinished = self.status_2xx.saturating_sub(self.succeeded);
        if self.status_other > 0 || self.status_2xx < self.succeeded || unfinished > in_flight {
            bail!(
                "h2load: {} responses with a 2xx status, {} with another, of {} succeeded",
                self.status_2xx,
                self.status_other,
                self.succeeded
            );
        }
        Ok(())
    }
}

impl Summary {
    /// Fails when the responses carried fewer body bytes than `min_per_response` each: some
    /// calls failed in a way only the body shows (a gRPC error is an HTTP 200 without
    /// messages).
    pub(crate) fn check_data(&self, min_per_response: u64) -> Result<()> {
        let wanted = self.succeeded * min_per_response;
        if self.data_bytes < wanted {
            bail!(
                "h2load: {} response body bytes for {} calls, fewer than the {wanted} their \
                 messages alone take: some calls failed",
                self.data_bytes,
                self.succeeded
            );
        }
        Ok(())
    }
}

/// `"12 succeeded"` → (12, "succeeded").
fn count_and_word(part: &str) -> Result<(u64, &str)> {
    let mut words = part.split_whitespace();
    let count = words
        .next()
        .context("empty h2load field")?
        .parse()
        .with_context(|| format!("h2load field {part:?}"))?;
    Ok((count, words.next().unwrap_or_default()))
}

/// `5.00s`, `12.5ms`, `272us` → seconds.
fn parse_duration(text: &str) -> Result<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        bail!("unknown duration {text:?}")
    };
    Ok(number.parse::<f64>()? * scale)
}

/// Latencies in microseconds of the requests that succeeded, from `--log-file` (tab-separated
/// start time, status, latency; status -1 for failed streams).
pub(crate) fn log_latencies(log: &str) -> Result<Vec<u64>> {
    let mut latencies = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [_, status, latency, ..] = fields[..] else {
            bail!("unexpected h2load log line {line:?}");
        };
        let status: i32 = status.trim().parse()?;
        if (200..300).contains(&status) {
            latencies.push(latency.trim().parse()?);
        }
    }
    Ok(latencies)
}

/// The `p`th percentile (nearest rank) of unsorted `values`.
pub(crate) fn percentile(values: &mut [u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "starting benchmark...
Application protocol: h2c

finished in 2.00s, 19859.50 req/s, 1.12MB/s
requests: 39719 total, 39735 started, 39719 done, 39719 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 39719 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 2.24MB (2344421) total, 349.51KB (357899) headers (space savings 93.28%), 1.21MB (1271008) data
                     min         max         mean         sd        +/- sd
time for request:       39us     16.31ms       761us      1.23ms    91.17%
";

    #[test]
    fn parses_the_summary() {
        let summary = Summary::parse(OUTPUT).unwrap();
        assert_eq!(summary.seconds, 2.0);
        assert_eq!(summary.requests_per_second, 19859.5);
        assert_eq!(summary.total, 39719);
        assert_eq!(summary.done, 39719);
        assert_eq!(summary.succeeded, 39719);
        assert_eq!(summary.status_2xx, 39719);
        assert_eq!(summary.status_other, 0);
        summary.check(0).unwrap();
        assert_eq!(summary.data_bytes, 1271008);
        summary.check_data(32).unwrap();
        assert!(summary.check_data(33).is_err());
        // A timed run ends with streams in flight whose headers arrived.
        let cut = OUTPUT.replace("39719 2xx", "39721 2xx");
        let summary = Summary::parse(&cut).unwrap();
        assert!(summary.check(0).is_err());
        summary.check(16).unwrap();
        assert!(summary.check(1).is_err());
    }

    #[test]
    fn rejects_failures_and_non_2xx() {
        let not_found = "finished in 4.12ms, 24289.53 req/s, 2.10MB/s
requests: 100 total, 100 started, 100 done, 0 succeeded, 100 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 100 4xx, 0 5xx
traffic: 8.84KB (9052) total, 940B (940) headers (space savings 89.20%), 5.96KB (6100) data
";
        let summary = Summary::parse(not_found).unwrap();
        assert!((summary.seconds - 0.00412).abs() < 1e-9);
        assert!(summary.check(16).is_err());
        let refused = "finished in 272us, 0.00 req/s, 0B/s
requests: 100 total, 0 started, 0 done, 0 succeeded, 100 failed, 100 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 0B (0) total, 0B (0) headers (space savings 0.00%), 0B (0) data
";
        let summary = Summary::parse(refused).unwrap();
        assert_eq!(summary.errored, 100);
        assert!(summary.check(16).is_err());
        let some_failed = OUTPUT.replace("0 failed", "3 failed");
        assert!(Summary::parse(&some_failed).unwrap().check(16).is_err());
        assert!(Summary::parse("connect: Connection refused").is_err());
    }

    #[test]
    fn reads_latencies_from_the_log() {
        let log =
            "1795251749672743\t200\t1528\n1795251749672738\t-1\t1563\n1795251749672742\t200\t90\n";
        assert_eq!(log_latencies(log).unwrap(), [1528, 90]);
        assert!(log_latencies("garbage").is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut values: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut values, 50.0), Some(50));
        assert_eq!(percentile(&mut values, 99.0), Some(99));
        assert_eq!(percentile(&mut values, 100.0), Some(100));
        assert_eq!(percentile(&mut values, 0.0), Some(1));
        assert_eq!(percentile(&mut [7], 99.0), Some(7));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn builds_the_command_line() {
        let run = Run {
            h2load: Path::new("h2load"),
            port: 8080,
            call: Call::Echo64,
            protocol: Protocol::ConnectH1,
            body: Path::new("/b"),
            clients: 16,
            streams: 1,
            amount: Amount::Seconds(0.5),
            log_file: None,
        };
        let args = run.args().join(" ");
        assert_eq!(
            args,
            "-t 1 -c 16 -m 1 --h1 -D 500ms -d /b -H content-type: application/proto \
             -H connect-protocol-version: 1 http://127.0.0.1:8080/bench.v1.EchoService/Echo"
        );
        assert_eq!(format_seconds(5.0), "5");
    }
}
