//! `cargo xtask bench --guard`: the performance regression guard CI runs. It counts
//! instructions per request under callgrind (see [`super::callgrind`]) for a fixed
//! set of switchboard-only cells and compares each with the baseline committed in
//! `benches/perf-baseline.toml`:
//!
//! - more than [`THRESHOLD`] above its baseline fails the run;
//! - more than [`THRESHOLD`] below it passes with a note that the baseline could move down
//!   (so an improvement is locked in instead of becoming slack a later regression hides in);
//! - `--update-baseline [--note TEXT]` rewrites the file with the measured figures, which a
//!   developer commits saying why.
//!
//! Instruction counts do not depend on the machine's load or clock, unlike requests/s on a
//! shared CI runner, which is why they, and nothing timed, are asserted. Each cell's load is
//! one connection with one call at a time, so the server does the same work for every
//! request whatever the scheduling (see the spread recorded at the top of the baseline file,
//! and `--repeat N` to measure it again).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use super::callgrind::{self, Load};
use super::matrix::{Call, Protocol, Server};

/// How far above its baseline a cell may measure before the guard fails: more than ten times
/// the spread of repeated runs (0.01–0.2%, see the baseline file), and below the regressions
/// worth catching.
pub(crate) const THRESHOLD: f64 = 0.03;

/// Where the baseline lives, relative to the workspace root.
pub(crate) const BASELINE_FILE: &str = "benches/perf-baseline.toml";

/// One guarded figure: a call over a protocol under a fixed load, N1 and N2 requests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GuardCell {
    /// The key in the baseline file.
    pub(crate) key: &'static str,
    pub(crate) call: Call,
    pub(crate) protocol: Protocol,
    pub(crate) load: Load,
    /// (N1, N2) requests: round trips for bidi, whole streams for the other streams.
    pub(crate) requests: (u64, u64),
    /// Which switchboard build serves it.
    pub(crate) server: Server,
}

/// One connection, one call at a time: every request finds the server idle, so the work per
/// request does not depend on how the load generator and the server interleave.
const SEQUENTIAL: Load = Load::H2load {
    clients: 1,
    streams: 1,
};

/// The guarded cells: unary echo over each protocol, and one stream of each shape over gRPC.
/// N2 − N1 is chosen so each cell's difference covers about 50–200 M instructions: enough
/// that a stray wake-up is noise far below 0.1%, few enough that the whole guard runs in a
/// few minutes under valgrind.
pub(crate) const CELLS: [GuardCell; 9] = [
    GuardCell {
        key: "unary-connect",
        call: Call::Echo64,
        protocol: Protocol::Connect,
        load: SEQUENTIAL,
        requests: (500, 2500),
        server: SERVER,
    },
    GuardCell {
        key: "unary-grpc",
        call: Call::Echo64,
        protocol: Protocol::Grpc,
        load: SEQUENTIAL,
        requests: (500, 2500),
        server: SERVER,
    },
    GuardCell {
        key: "unary-grpc-web",
        call: Call::Echo64,
        protocol: Protocol::GrpcWeb,
        load: SEQUENTIAL,
        requests: (500, 2500),
        server: SERVER,
    },
    GuardCell {
        key: "server-stream-grpc",
        call: Call::ServerStream,
        protocol: Protocol::Grpc,
        load: SEQUENTIAL,
        requests: (20, 100),
        server: SERVER,
    },
    GuardCell {
        key: "client-stream-grpc",
        call: Call::ClientStream,
        protocol: Protocol::Grpc,
        load: SEQUENTIAL,
        requests: (40, 200),
        server: SERVER,
    },
    GuardCell {
        key: "bidi-grpc",
        call: Call::Bidi,
        protocol: Protocol::Grpc,
        load: Load::Pingpong { streams: 1 },
        requests: (1000, 5000),
        server: SERVER,
    },
    // Bidi with 16 streams on one connection: the replies ready at the same time leave in one
    // write (`server::coalesce`), which saves 18% of the instructions per round trip here and
    // far more system time; one call at a time, as in the cells above, never shows it.
    GuardCell {
        key: "bidi-grpc-s16",
        call: Call::Bidi,
        protocol: Protocol::Grpc,
        load: Load::Pingpong { streams: 16 },
        requests: (2000, 8000),
        server: SERVER,
    },
    // Log ingest (a 20 KB LogBatch of 50 records): guarded from before issue 15's zero-copy
    // work, so that what it gains is kept.
    GuardCell {
        key: "ingest-grpc",
        call: Call::Ingest,
        protocol: Protocol::Grpc,
        load: SEQUENTIAL,
        requests: (100, 500),
        server: SERVER,
    },
    // The same with the buffa backend: the zero-copy view decoding issue 15 added.
    GuardCell {
        key: "ingest-grpc-buffa",
        call: Call::Ingest,
        protocol: Protocol::Grpc,
        load: SEQUENTIAL,
        requests: (100, 500),
        server: Server::SwitchboardBuffa,
    },
];

/// The server most cells measure: only switchboard's own cost is guarded.
pub(crate) const SERVER: Server = Server::Switchboard;

/// One line of the baseline file: the figure and the comment saying when and why.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) instructions: u64,
    pub(crate) comment: String,
}

/// The parsed baseline file.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Baseline {
    /// The comment lines before the first entry, kept verbatim when the file is rewritten.
    pub(crate) header: Vec<String>,
    pub(crate) entries: BTreeMap<String, Entry>,
}

impl Baseline {
    /// Reads `key = instructions  # comment` lines; `#` lines and blank lines are comments.
    /// A deliberately small subset of TOML (the file stays valid TOML), parsed by hand so the
    /// harness needs no TOML dependency.
    pub(crate) fn parse(text: &str) -> Result<Baseline> {
        let mut baseline = Baseline::default();
        let mut in_header = true;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                if in_header {
                    baseline.header.push(line.trim_end().to_owned());
                }
                continue;
            }
            in_header = false;
            let (assignment, comment) = match trimmed.split_once('#') {
                Some((assignment, comment)) => (assignment, comment.trim()),
                None => (trimmed, ""),
            };
            let (key, value) = assignment
                .split_once('=')
                .with_context(|| format!("line {number}: expected `key = instructions`"))?;
            let key = key.trim();
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!("line {number}: {key:?} is not a cell name");
            }
            let value = value.trim().replace('_', "");
            let instructions: u64 = value.parse().with_context(|| {
                format!("line {number}: {value:?} is not a whole number of instructions")
            })?;
            if instructions == 0 {
                bail!("line {number}: a baseline of 0 instructions");
            }
            let entry = Entry {
                instructions,
                comment: comment.to_owned(),
            };
            if baseline.entries.insert(key.to_owned(), entry).is_some() {
                bail!("line {number}: {key} appears twice");
            }
        }
        // Blank lines between the header and the first entry are layout, not header.
        while baseline.header.last().is_some_and(|l| l.trim().is_empty()) {
            baseline.header.pop();
        }
        Ok(baseline)
    }

    /// The file's text: the header, a blank line, then one line per entry in `order` (entries
    /// not in `order` follow, sorted), figures aligned.
    pub(crate) fn render(&self, order: &[&str]) -> String {
        let mut keys: Vec<&str> = order
            .iter()
            .copied()
            .filter(|key| self.entries.contains_key(*key))
            .collect();
        keys.extend(
            self.entries
                .keys()
                .map(String::as_str)
                .filter(|key| !order.contains(key)),
        );
        let width = keys.iter().map(|key| key.len()).max().unwrap_or(0);
        let mut text = String::new();
        for line in &self.header {
            text.push_str(line);
            text.push('\n');
        }
        if !self.header.is_empty() {
            text.push('\n');
        }
        for key in keys {
            let entry = &self.entries[key];
            let _ = write!(text, "{key:<width$} = {:>9}", entry.instructions);
            if !entry.comment.is_empty() {
                let _ = write!(text, "  # {}", entry.comment);
            }
            text.push('\n');
        }
        text
    }
}

/// How one cell compares with its baseline.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Within the threshold either way.
    Pass,
    /// More than the threshold above: fails the guard.
    Regressed,
    /// More than the threshold below: passes, with a note to move the baseline down.
    Improved,
    /// The file has no figure for the cell: fails (run `--update-baseline`).
    NoBaseline,
    /// The cell could not be measured: fails.
    Failed(String),
}

impl Verdict {
    pub(crate) fn fails(&self) -> bool {
        matches!(
            self,
            Verdict::Regressed | Verdict::NoBaseline | Verdict::Failed(_)
        )
    }

    fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "ok",
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "improved",
            Verdict::NoBaseline => "NO BASELINE",
            Verdict::Failed(_) => "FAILED",
        }
    }
}

/// Compares a measured figure with its baseline: the threshold is relative and strict (a
/// figure exactly 3% above still passes).
pub(crate) fn judge(baseline: Option<u64>, measured: f64, threshold: f64) -> Verdict {
    let Some(baseline) = baseline else {
        return Verdict::NoBaseline;
    };
    let ratio = measured / baseline as f64;
    if ratio > 1.0 + threshold {
        Verdict::Regressed
    } else if ratio < 1.0 - threshold {
        Verdict::Improved
    } else {
        Verdict::Pass
    }
}

/// One row of the guard's table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    pub(crate) key: String,
    pub(crate) baseline: Option<u64>,
    /// The figure compared: the median of the repeats.
    pub(crate) measured: Option<f64>,
    /// Every repeat's figure, in order.
    pub(crate) samples: Vec<f64>,
    pub(crate) verdict: Verdict,
}

impl Row {
    /// Builds the row for `key` from its repeats (`Err` when a repeat failed).
    pub(crate) fn new(
        key: &str,
        baseline: Option<u64>,
        samples: Result<Vec<f64>, String>,
        threshold: f64,
    ) -> Row {
        match samples {
            Ok(samples) => {
                let measured = median(&samples);
                let verdict = match measured {
                    Some(measured) => judge(baseline, measured, threshold),
                    None => Verdict::Failed("no figure".to_owned()),
                };
                Row {
                    key: key.to_owned(),
                    baseline,
                    measured,
                    samples,
                    verdict,
                }
            }
            Err(why) => Row {
                key: key.to_owned(),
                baseline,
                measured: None,
                samples: Vec::new(),
                verdict: Verdict::Failed(why),
            },
        }
    }

    /// measured / baseline.
    pub(crate) fn ratio(&self) -> Option<f64> {
        Some(self.measured? / self.baseline? as f64)
    }

    /// (max − min) / median of the repeats, when there are several.
    pub(crate) fn spread(&self) -> Option<f64> {
        if self.samples.len() < 2 {
            return None;
        }
        let min = self.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self
            .samples
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        Some((max - min) / self.measured?)
    }
}

/// The median (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    })
}

/// `1234567` → `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The table the guard prints: cell, baseline, measured, ratio, verdict, and the spread and
/// every figure when the cells were measured more than once.
pub(crate) fn table(rows: &[Row]) -> String {
    let repeated = rows.iter().any(|row| row.samples.len() > 1);
    let mut lines = vec![{
        let mut header = vec![
            "cell".to_owned(),
            "baseline".to_owned(),
            "measured".to_owned(),
            "ratio".to_owned(),
            "verdict".to_owned(),
        ];
        if repeated {
            header.push("spread".to_owned());
            header.push("runs".to_owned());
        }
        header
    }];
    for row in rows {
        let mut line = vec![
            row.key.clone(),
            row.baseline.map_or("-".to_owned(), thousands),
            row.measured
                .map_or("-".to_owned(), |m| thousands(m.round() as u64)),
            row.ratio().map_or("-".to_owned(), |r| format!("{r:.4}")),
            match &row.verdict {
                Verdict::Failed(why) => format!("FAILED: {why}"),
                other => other.word().to_owned(),
            },
        ];
        if repeated {
            line.push(
                row.spread()
                    .map_or("-".to_owned(), |s| format!("{:.3}%", s * 100.0)),
            );
            line.push(
                row.samples
                    .iter()
                    .map(|s| format!("{s:.1}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        lines.push(line);
    }
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                // Names and words to the left, figures to the right.
                if c == 0 || c == 4 || c == 6 {
                    format!("{cell:<width$}", width = widths[c])
                } else {
                    format!("{cell:>width$}", width = widths[c])
                }
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// The baseline with the measured figures of `rows` in place of the old ones, each changed
/// line commented with `comment`; cells whose figure did not change keep their comment, and
/// cells that could not be measured keep their line.
pub(crate) fn updated(old: &Baseline, rows: &[Row], comment: &str) -> Baseline {
    let mut new = old.clone();
    for row in rows {
        let Some(measured) = row.measured else {
            continue;
        };
        let instructions = measured.round() as u64;
        if old
            .entries
            .get(&row.key)
            .is_some_and(|entry| entry.instructions == instructions)
        {
            continue;
        }
        new.entries.insert(
            row.key.clone(),
            Entry {
                instructions,
                comment: comment.to_owned(),
            },
        );
    }
    new
}

/// Guard options from the command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct GuardOptions {
    /// Rewrite the baseline instead of failing on it.
    pub(crate) update: bool,
    /// Why the baseline moves, for the comment of each changed line.
    pub(crate) note: Option<String>,
    /// How many times each cell is measured (the median is compared; the spread printed).
    pub(crate) repeat: usize,
    /// Only these cells (all when empty).
    pub(crate) cells: Vec<String>,
}

/// Measures every cell `repeat` times, compares, prints the table, and fails on a regression
/// (or rewrites the baseline with `--update-baseline`).
pub(crate) fn run(ctx: &super::Context, valgrind: &Path, options: &GuardOptions) -> Result<()> {
    let path = crate::workspace_root().join(BASELINE_FILE);
    let baseline = match std::fs::read_to_string(&path) {
        Ok(text) => {
            Baseline::parse(&text).with_context(|| format!("reading {}", path.display()))?
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && options.update => {
            Baseline::default()
        }
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", path.display()));
        }
    };
    let cells: Vec<&GuardCell> = CELLS
        .iter()
        .filter(|cell| options.cells.is_empty() || options.cells.iter().any(|c| c == cell.key))
        .collect();
    let mut samples: Vec<Result<Vec<f64>, String>> = vec![Ok(Vec::new()); cells.len()];
    for round in 1..=options.repeat.max(1) {
        for (cell, samples) in cells.iter().zip(samples.iter_mut()) {
            let Ok(figures) = samples else {
                continue;
            };
            eprintln!(
                "==> guard ({round}/{}): {} ({}, {} → {})",
                options.repeat.max(1),
                cell.key,
                cell.load.describe(),
                cell.requests.0,
                cell.requests.1
            );
            match callgrind::instructions(
                ctx,
                valgrind,
                cell.server,
                (cell.call, cell.protocol, cell.load),
                cell.requests,
            ) {
                Ok(figure) => figures.push(figure),
                Err(error) => *samples = Err(format!("{error:#}")),
            }
        }
    }
    let rows: Vec<Row> = cells
        .iter()
        .zip(samples)
        .map(|(cell, samples)| {
            let base = baseline.entries.get(cell.key).map(|e| e.instructions);
            Row::new(cell.key, base, samples, THRESHOLD)
        })
        .collect();
    println!(
        "perf guard: switchboard instructions per request under callgrind vs {BASELINE_FILE} \
         (fails above +{:.0}%)",
        THRESHOLD * 100.0
    );
    print!("{}", table(&rows));
    for key in baseline.entries.keys() {
        if !CELLS.iter().any(|cell| cell.key == key) {
            println!("note: {BASELINE_FILE} has {key}, which is not a guarded cell");
        }
    }

    if options.update {
        let comment = format!(
            "{} at {}: {}",
            super::first_line("date", &["-u", "+%Y-%m-%d"]),
            super::first_line("git", &["rev-parse", "--short", "HEAD"]),
            options
                .note
                .as_deref()
                .unwrap_or("re-measured with cargo xtask bench --guard --update-baseline")
        );
        let order: Vec<&str> = CELLS.iter().map(|cell| cell.key).collect();
        let mut new = updated(&baseline, &rows, &comment);
        if new.header.is_empty() {
            new.header = vec![
                "# Baseline of `cargo xtask bench --guard`: switchboard instructions per \
                 request under callgrind; see xtask/src/bench/guard.rs."
                    .to_owned(),
            ];
        }
        std::fs::write(&path, new.render(&order))
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "perf guard: wrote {}; commit it with a message saying why the baseline moves",
            path.display()
        );
        let failed: Vec<&Row> = rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
            .collect();
        if !failed.is_empty() {
            bail!("perf guard: {} cell(s) could not be measured", failed.len());
        }
        return Ok(());
    }

    for row in rows.iter().filter(|r| r.verdict == Verdict::Improved) {
        println!(
            "note: {} is {:.1}% below its baseline: if the improvement is meant, lock it in with \
             `cargo xtask bench --guard --update-baseline --note WHY` and commit {BASELINE_FILE}",
            row.key,
            (1.0 - row.ratio().unwrap_or(1.0)) * 100.0
        );
    }
    let failing: Vec<&Row> = rows.iter().filter(|r| r.verdict.fails()).collect();
    if !failing.is_empty() {
        let keys: Vec<&str> = failing.iter().map(|r| r.key.as_str()).collect();
        println!(
            "perf guard: {} above the baseline by more than {:.0}% or not measured. If the cost \
             is intended, move the baseline with `cargo xtask bench --guard --update-baseline \
             --note WHY` and commit {BASELINE_FILE} saying why.",
            keys.join(", "),
            THRESHOLD * 100.0
        );
        bail!("perf guard failed: {}", keys.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# Baseline of the guard.
# spread: 0.01%

unary-connect = 49_612   # 2026-11-30 at e153b96: first baseline
unary-grpc    =     53574 # why # with a hash
bidi-grpc = 30000
";

    #[test]
    fn parses_the_baseline() {
        let baseline = Baseline::parse(FILE).unwrap();
        assert_eq!(
            baseline.header,
            ["# Baseline of the guard.", "# spread: 0.01%"]
        );
        assert_eq!(baseline.entries.len(), 3);
        assert_eq!(
            baseline.entries["unary-connect"],
            Entry {
                instructions: 49_612,
                comment: "2026-11-30 at e153b96: first baseline".to_owned()
            }
        );
        assert_eq!(baseline.entries["unary-grpc"].instructions, 53_574);
        assert_eq!(baseline.entries["unary-grpc"].comment, "why # with a hash");
        assert_eq!(baseline.entries["bidi-grpc"].comment, "");
    }

    #[test]
    fn rejects_malformed_baselines() {
        assert!(Baseline::parse("unary-grpc 5\n").is_err());
        assert!(Baseline::parse("unary-grpc = 5.5\n").is_err());
        assert!(Baseline::parse("unary-grpc = -5\n").is_err());
        assert!(Baseline::parse("unary-grpc = 0\n").is_err());
        assert!(Baseline::parse("unary grpc = 5\n").is_err());
        assert!(Baseline::parse("= 5\n").is_err());
        assert!(Baseline::parse("a = 1\na = 2\n").is_err());
        assert_eq!(Baseline::parse("").unwrap(), Baseline::default());
    }

    #[test]
    fn renders_what_it_parses() {
        let baseline = Baseline::parse(FILE).unwrap();
        let text = baseline.render(&["unary-connect", "unary-grpc", "bidi-grpc"]);
        assert_eq!(
            text,
            "# Baseline of the guard.\n# spread: 0.01%\n\n\
             unary-connect =     49612  # 2026-11-30 at e153b96: first baseline\n\
             unary-grpc    =     53574  # why # with a hash\n\
             bidi-grpc     =     30000\n"
        );
        assert_eq!(Baseline::parse(&text).unwrap(), baseline);
        // Keys the order does not know come last.
        let text = baseline.render(&["bidi-grpc"]);
        assert!(text.ends_with("bidi-grpc     =     30000\nunary-connect =     49612  # 2026-11-30 at e153b96: first baseline\nunary-grpc    =     53574  # why # with a hash\n"));
    }

    #[test]
    fn judges_against_the_threshold() {
        assert_eq!(judge(Some(100_000), 100_000.0, 0.03), Verdict::Pass);
        assert_eq!(judge(Some(100_000), 103_000.0, 0.03), Verdict::Pass);
        assert_eq!(judge(Some(100_000), 103_001.0, 0.03), Verdict::Regressed);
        assert_eq!(judge(Some(100_000), 97_000.0, 0.03), Verdict::Pass);
        assert_eq!(judge(Some(100_000), 96_999.0, 0.03), Verdict::Improved);
        assert_eq!(judge(None, 1.0, 0.03), Verdict::NoBaseline);
        assert!(Verdict::Regressed.fails());
        assert!(Verdict::NoBaseline.fails());
        assert!(Verdict::Failed("crash".to_owned()).fails());
        assert!(!Verdict::Improved.fails());
        assert!(!Verdict::Pass.fails());
    }

    #[test]
    fn rows_take_the_median_and_the_spread() {
        let row = Row::new(
            "unary-grpc",
            Some(50_000),
            Ok(vec![50_010.0, 49_990.0, 50_000.0]),
            0.03,
        );
        assert_eq!(row.measured, Some(50_000.0));
        assert_eq!(row.ratio(), Some(1.0));
        assert!((row.spread().unwrap() - 20.0 / 50_000.0).abs() < 1e-12);
        assert_eq!(row.verdict, Verdict::Pass);
        let once = Row::new("unary-grpc", Some(50_000), Ok(vec![60_000.0]), 0.03);
        assert_eq!(once.spread(), None);
        assert_eq!(once.verdict, Verdict::Regressed);
        let failed = Row::new("unary-grpc", Some(1), Err("crashed".to_owned()), 0.03);
        assert_eq!(failed.verdict, Verdict::Failed("crashed".to_owned()));
        assert_eq!(failed.ratio(), None);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn prints_a_table() {
        let rows = [
            Row::new("unary-grpc", Some(53_574), Ok(vec![55_500.0]), 0.03),
            Row::new("bidi-grpc", None, Ok(vec![30_000.0]), 0.03),
        ];
        assert_eq!(
            table(&rows),
            "cell        baseline  measured   ratio  verdict\n\
             unary-grpc    53,574    55,500  1.0360  REGRESSED\n\
             bidi-grpc          -    30,000       -  NO BASELINE\n"
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn updates_only_what_moved() {
        let old = Baseline::parse(FILE).unwrap();
        let rows = [
            Row::new("unary-connect", Some(49_612), Ok(vec![49_612.2]), 0.03),
            Row::new("unary-grpc", Some(53_574), Ok(vec![51_000.4]), 0.03),
            Row::new("bidi-grpc", Some(30_000), Err("crashed".to_owned()), 0.03),
            Row::new("unary-grpc-web", None, Ok(vec![50_000.0]), 0.03),
        ];
        let new = updated(&old, &rows, "today: faster headers");
        assert_eq!(new.header, old.header);
        assert_eq!(new.entries["unary-connect"], old.entries["unary-connect"]);
        assert_eq!(
            new.entries["unary-grpc"],
            Entry {
                instructions: 51_000,
                comment: "today: faster headers".to_owned()
            }
        );
        assert_eq!(new.entries["bidi-grpc"], old.entries["bidi-grpc"]);
        assert_eq!(new.entries["unary-grpc-web"].instructions, 50_000);
    }

    #[test]
    fn the_committed_baseline_covers_every_cell() {
        let path = crate::workspace_root().join(BASELINE_FILE);
        let baseline = Baseline::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        for cell in CELLS {
            assert!(baseline.entries.contains_key(cell.key), "{}", cell.key);
        }
        assert_eq!(baseline.entries.len(), CELLS.len());
        assert!(!baseline.header.is_empty());
    }

    #[test]
    fn cells_are_switchboard_only_and_distinct() {
        let mut keys: Vec<&str> = CELLS.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), CELLS.len());
        for cell in CELLS {
            assert!(cell.requests.0 < cell.requests.1, "{}", cell.key);
            assert!(matches!(
                cell.server,
                Server::Switchboard | Server::SwitchboardBuffa
            ));
            assert!(
                cell.server.serves(cell.call) && cell.server.protocols().contains(&cell.protocol)
            );
            assert_eq!(
                matches!(cell.load, Load::Pingpong { .. }),
                cell.call == Call::Bidi
            );
        }
        for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
            assert!(
                CELLS
                    .iter()
                    .any(|c| c.call == Call::Echo64 && c.protocol == protocol)
            );
        }
    }
}
