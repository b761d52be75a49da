//! What a run counted, and how it is printed: one JSON object for the harness, or a few
//! lines of text for people.

use std::fmt::Write as _;

/// How many error messages are kept for the text report and stderr; the count is exact
/// either way, but a broken server would otherwise print one line per stream.
const KEPT_ERRORS: usize = 5;

/// Counters filled in by the streams while the run goes on.
#[derive(Debug, Default)]
pub struct Tally {
    /// Round trips completed in the measured period.
    pub round_trips: u64,
    /// RPCs that ended successfully in the measured period.
    pub rpcs: u64,
    /// Failures of any kind, warm-up included.
    pub errors: u64,
    /// Latency of every measured round trip, in microseconds.
    pub samples: Vec<u32>,
    /// The first few error messages.
    pub first_errors: Vec<String>,
}

impl Tally {
    /// Counts one failure, keeping its message if it is among the first few.
    pub fn error(&mut self, message: String) {
        self.errors += 1;
        if self.first_errors.len() < KEPT_ERRORS {
            self.first_errors.push(message);
        }
    }
}

/// The summary printed at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Measured round trips.
    pub round_trips: u64,
    /// Measured RPCs that completed successfully.
    pub rpcs: u64,
    /// Failures.
    pub errors: u64,
    /// Length of the measured period.
    pub seconds: f64,
    /// `round_trips / seconds`.
    pub round_trips_per_sec: f64,
    /// Median round-trip latency.
    pub p50_us: u32,
    /// 99th-percentile round-trip latency.
    pub p99_us: u32,
    /// Slowest round trip.
    pub max_us: u32,
}

impl Report {
    /// Summarises `tally` over a measured period of `seconds`. Sorts the samples in place.
    pub fn new(tally: &mut Tally, seconds: f64) -> Self {
        tally.samples.sort_unstable();
        let samples = &tally.samples;
        let round_trips_per_sec = if seconds > 0.0 {
            tally.round_trips as f64 / seconds
        } else {
            0.0
        };
        Report {
            round_trips: tally.round_trips,
            rpcs: tally.rpcs,
            errors: tally.errors,
            seconds,
            round_trips_per_sec,
            p50_us: percentile(samples, 50),
            p99_us: percentile(samples, 99),
            max_us: samples.last().copied().unwrap_or(0),
        }
    }

    /// One line of JSON with the fields the harness reads.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"round_trips\":{},\"rpcs\":{},\"errors\":{},\"seconds\":{:.6},\
             \"round_trips_per_sec\":{:.1},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
            self.round_trips,
            self.rpcs,
            self.errors,
            self.seconds,
            self.round_trips_per_sec,
            self.p50_us,
            self.p99_us,
            self.max_us
        )
    }

    /// A few human-readable lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "round trips: {} in {:.3} s = {:.1}/s",
            self.round_trips, self.seconds, self.round_trips_per_sec
        );
        let _ = writeln!(out, "rpcs:        {}", self.rpcs);
        let _ = writeln!(
            out,
            "latency:     p50 {} us, p99 {} us, max {} us",
            self.p50_us, self.p99_us, self.max_us
        );
        let _ = write!(out, "errors:      {}", self.errors);
        out
    }
}

/// Nearest-rank percentile of sorted samples (0 when there are none).
pub fn percentile(sorted: &[u32], pct: u64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    // The smallest rank r with r / n >= pct / 100, i.e. ceil(pct * n / 100), at least 1.
    let rank = (pct * n).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 50), 7);
        assert_eq!(percentile(&[7], 99), 7);
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50), 50);
        assert_eq!(percentile(&hundred, 99), 99);
        assert_eq!(percentile(&hundred, 100), 100);
        let thousand: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&thousand, 99), 990);
    }

    #[test]
    fn json_report() {
        let mut tally = Tally {
            round_trips: 4,
            rpcs: 2,
            errors: 0,
            samples: vec![40, 10, 30, 20],
            first_errors: Vec::new(),
        };
        let report = Report::new(&mut tally, 2.0);
        assert_eq!(
            report.to_json(),
            "{\"round_trips\":4,\"rpcs\":2,\"errors\":0,\"seconds\":2.000000,\
             \"round_trips_per_sec\":2.0,\"p50_us\":20,\"p99_us\":40,\"max_us\":40}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(parsed["p99_us"], 40);
    }

    #[test]
    fn keeps_only_first_errors() {
        let mut tally = Tally::default();
        for i in 0..20 {
            tally.error(format!("e{i}"));
        }
        assert_eq!(tally.errors, 20);
        assert_eq!(tally.first_errors.len(), KEPT_ERRORS);
        assert_eq!(tally.first_errors[0], "e0");
    }
}
