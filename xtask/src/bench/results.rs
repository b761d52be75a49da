//! What a bench run found: figures per cell (server × workload × protocol), instruction
//! counts, allocation counts and every problem, with the statistics the report prints.

use super::matrix::{Call, Protocol, Server, Workload};

/// One measured run of a cell.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Run {
    /// Requests (or round trips) per second.
    pub(crate) rate: f64,
    /// Requests (or round trips) completed.
    pub(crate) completed: u64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    /// Server CPU time (user + system) per completed request, in microseconds.
    pub(crate) cpu_us_per_request: f64,
    /// The server's write system calls per completed request: below 1 when the replies of
    /// several calls leave together.
    pub(crate) writes_per_request: f64,
}

/// The runs of one cell and the server's peak RSS over them.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Figure {
    pub(crate) runs: Vec<Run>,
    pub(crate) peak_rss_kib: Option<u64>,
}

impl Figure {
    fn stat(&self, value: fn(&Run) -> f64) -> Vec<f64> {
        self.runs.iter().map(value).collect()
    }

    pub(crate) fn rate(&self) -> f64 {
        median(&self.stat(|r| r.rate))
    }

    pub(crate) fn rate_range(&self) -> (f64, f64) {
        let rates = self.stat(|r| r.rate);
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }

    pub(crate) fn p50_us(&self) -> f64 {
        median(&self.stat(|r| r.p50_us))
    }

    pub(crate) fn p99_us(&self) -> f64 {
        median(&self.stat(|r| r.p99_us))
    }

    pub(crate) fn cpu_us_per_request(&self) -> f64 {
        median(&self.stat(|r| r.cpu_us_per_request))
    }

    pub(crate) fn writes_per_request(&self) -> f64 {
        median(&self.stat(|r| r.writes_per_request))
    }
}

/// The median (the mean of the middle two for an even count; NaN when empty).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// How a cell ended.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    Measured(Figure),
    /// Verification, a tool or the server failed: no figure.
    Failed(String),
    /// A peer that does not serve this protocol (its verification failed; the why is kept).
    NotSupported(String),
}

/// One server × workload × protocol.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub(crate) server: Server,
    pub(crate) workload: Workload,
    pub(crate) protocol: Protocol,
    pub(crate) outcome: Outcome,
}

/// Instructions per request of one server, call and protocol.
#[derive(Clone, Debug)]
pub(crate) struct Instructions {
    pub(crate) server: Server,
    pub(crate) call: Call,
    pub(crate) protocol: Protocol,
    pub(crate) requests: (u64, u64),
    pub(crate) outcome: Result<f64, String>,
}

/// One row of `alloc-count --json`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Allocations {
    pub(crate) library: String,
    pub(crate) protocol: String,
    pub(crate) allocs_per_call: f64,
    pub(crate) bytes_per_call: f64,
}

/// Reads `alloc-count --json`.
pub(crate) fn parse_allocations(json: &str) -> anyhow::Result<Vec<Allocations>> {
    use anyhow::Context as _;
    let value: serde_json::Value = serde_json::from_str(json.trim())?;
    value
        .as_array()
        .context("alloc-count did not print a JSON array")?
        .iter()
        .map(|row| {
            let text = |key: &str| {
                row[key]
                    .as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("no {key} in {row}"))
            };
            let number = |key: &str| {
                row[key]
                    .as_f64()
                    .with_context(|| format!("no {key} in {row}"))
            };
            Ok(Allocations {
                library: text("library")?,
                protocol: text("protocol")?,
                allocs_per_call: number("allocs_per_call")?,
                bytes_per_call: number("bytes_per_call")?,
            })
        })
        .collect()
}

/// Something that went wrong or is not supported, for the report's list.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub(crate) what: String,
    pub(crate) why: String,
    /// Whether it fails the run (a peer's unsupported protocol does not).
    pub(crate) fatal: bool,
}

/// Everything a run found.
#[derive(Default)]
pub(crate) struct Results {
    pub(crate) cells: Vec<Cell>,
    pub(crate) instructions: Vec<Instructions>,
    pub(crate) allocations: Option<Result<Vec<Allocations>, String>>,
    pub(crate) problems: Vec<Problem>,
}

impl Results {
    pub(crate) fn problem(&mut self, what: impl Into<String>, why: impl Into<String>, fatal: bool) {
        let (what, why) = (what.into(), why.into());
        eprintln!(
            "    {}: {what}: {why}",
            if fatal { "FAILED" } else { "note" }
        );
        self.problems.push(Problem { what, why, fatal });
    }

    pub(crate) fn fatal_count(&self) -> usize {
        self.problems.iter().filter(|p| p.fatal).count()
    }

    /// The switchboard figure of the same workload and protocol, for the ratio columns.
    pub(crate) fn baseline(&self, workload: &Workload, protocol: Protocol) -> Option<&Figure> {
        self.cells.iter().find_map(|cell| match &cell.outcome {
            Outcome::Measured(figure)
                if cell.server == Server::Switchboard
                    && cell.workload.key == workload.key
                    && cell.protocol == protocol =>
            {
                Some(figure)
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn figure_statistics() {
        let run = |rate, p99| Run {
            rate,
            completed: 10,
            p50_us: 1.0,
            p99_us: p99,
            cpu_us_per_request: rate / 100.0,
            writes_per_request: 1.0,
        };
        let figure = Figure {
            runs: vec![run(100.0, 9.0), run(300.0, 5.0), run(200.0, 7.0)],
            peak_rss_kib: Some(1024),
        };
        assert_eq!(figure.rate(), 200.0);
        assert_eq!(figure.rate_range(), (100.0, 300.0));
        assert_eq!(figure.p99_us(), 7.0);
        assert_eq!(figure.cpu_us_per_request(), 2.0);
    }

    #[test]
    fn parses_alloc_count() {
        let json = r#"[
  {"library": "switchboard", "protocol": "grpc", "allocs_per_call": 12.5, "bytes_per_call": 2048.0},
  {"library": "tonic", "protocol": "grpc", "allocs_per_call": 30, "bytes_per_call": 4096}
]"#;
        let rows = parse_allocations(json).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].library, "tonic");
        assert_eq!(rows[1].allocs_per_call, 30.0);
        assert!(parse_allocations("{}").is_err());
    }
}
