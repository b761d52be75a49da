//! RESULTS.md: the header (machine, tools, method), a table per workload, the callgrind
//! ranking, the allocation table and the list of problems, then the hand-written notes that
//! survive every run (everything after [`NOTES_MARKER`] in the previous file).

use std::fmt::Write as _;

use super::matrix::{Driver, Server, WORKLOADS, Workload};
use super::results::{Figure, Outcome, Results};

/// Everything after this line in RESULTS.md is copied into the next one.
pub(crate) const NOTES_MARKER: &str = "<!-- notes: kept across runs -->";

/// The machine and the toolchain, for the header.
pub(crate) struct Machine {
    pub(crate) date: String,
    pub(crate) cpu_model: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) versions: Vec<(&'static str, String)>,
}

/// How the figures were taken.
pub(crate) struct Method {
    pub(crate) quick: bool,
    pub(crate) runs: usize,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
    /// (server CPU, load generator CPU), or `None` when there was only one.
    pub(crate) pinning: Option<(u32, u32)>,
    pub(crate) clock_ticks: u64,
    pub(crate) command: String,
}

/// The notes section of an earlier RESULTS.md (the marker line included), or a fresh one.
pub(crate) fn kept_notes(old: Option<&str>) -> String {
    match old.and_then(|text| text.find(NOTES_MARKER).map(|at| &text[at..])) {
        Some(notes) => notes.trim_end().to_owned() + "\n",
        None => format!(
            "{NOTES_MARKER}\n\n## Notes\n\n_Hand-written; `cargo xtask bench` keeps everything \
             from the marker line above onwards._\n"
        ),
    }
}

fn format_rate(rate: f64) -> String {
    let digits = (rate.round() as u64).to_string();
    // Groups of three from the right: 1234567 → 1,234,567.
    let mut groups = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

fn format_us(us: f64) -> String {
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

fn format_ratio(value: f64, base: f64) -> String {
    if base > 0.0 && value.is_finite() {
        format!("{:.2}×", value / base)
    } else {
        "–".to_owned()
    }
}

/// What a workload counts, as (rate, per-item) labels: requests, or bidi round trips.
fn units(workload: &Workload) -> (&'static str, &'static str) {
    if workload.driver == Driver::Pingpong {
        ("round trips/s", "round trip")
    } else {
        ("req/s", "req")
    }
}

fn write_header(out: &mut String, machine: &Machine, method: &Method) {
    let title = if method.quick {
        "# Benchmark results (quick run)"
    } else {
        "# Benchmark results"
    };
    let _ = writeln!(out, "{title}\n");
    let _ = writeln!(
        out,
        "Written by `{}` on {}. Regenerate with `cargo xtask bench`; every figure below is \
         replaced by the next run, except the notes at the end.\n",
        method.command, machine.date
    );
    if method.quick {
        let _ = writeln!(
            out,
            "**Quick run:** one short run per cell on a reduced set of workloads, to prove that \
             everything answers and verifies. These figures are noisy; do not quote them.\n"
        );
    }
    let _ = writeln!(out, "## Machine\n");
    let _ = writeln!(
        out,
        "- CPU: {} ({} cores)",
        machine.cpu_model, machine.cores
    );
    let _ = writeln!(out, "- Linux kernel {}", machine.kernel);
    for (tool, version) in &machine.versions {
        let _ = writeln!(out, "- {tool}: {version}");
    }
    let _ = writeln!(out, "\n## Method\n");
    match method.pinning {
        Some((server, load)) => {
            let _ = writeln!(
                out,
                "- The server under test runs alone, pinned to CPU {server} (`taskset -c \
                 {server}`; tokio's runtime then has one worker, Go's GOMAXPROCS is 1); the load \
                 generator is pinned to CPU {load}. One server is under load at a time; the \
                 others of the cell wait idle."
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- **No CPU pinning:** this machine has a single CPU, so the server and the load \
                 generator share it and the figures are much less meaningful."
            );
        }
    }
    let _ = writeln!(
        out,
        "- Each server is started afresh for every cell (server × workload × protocol): once \
         it prints `listening on`, {:.0} s of the same load warms it up (not recorded). The \
         servers of one workload and protocol are measured side by side: {} run(s) of {} s \
         each, taken in turns (run 1 of every server, then run 2, ...), so a drift in this \
         shared machine's load spreads over all of them instead of showing as a difference \
         between servers. Each server is then stopped with SIGTERM and must exit with status \
         0.",
        method.warmup, method.runs, method.seconds
    );
    let _ = writeln!(
        out,
        "- Before anything is measured, every server × call × protocol is verified with one \
         request from a small hyper client in the harness: HTTP 200, the content type, \
         `grpc-status: 0` (gRPC trailers, the gRPC-Web trailer frame) or a Connect end-stream \
         message without error, and the decoded response (the echoed payload, \
         `IngestAck{{records: 50, message_bytes}}`, 1,000 stream messages, \
         `StreamSummary{{1000, 64000}}`). hyper-echo, which echoes bytes without parsing them, \
         must return the request body. A cell that fails verification gets no figure. The load \
         generators must also report no error and only 2xx responses (ghz: only `OK`), or the \
         figure is discarded."
    );
    let _ = writeln!(
        out,
        "- Load: h2load (`-t 1`, h2c with prior knowledge) for unary and streaming calls; \
         concurrency c over HTTP/2 is √c connections × √c streams (`-c 4 -m 4` for 16, `-c 8 \
         -m 8` for 64, `-c 16 -m 16` for 256); over HTTP/1.1 (`--h1`) it is c connections. \
         ghz (`-c 64 --connections 4`) is a second load generator for gRPC unary, a real \
         gRPC client: it needs far more CPU per call than h2load, so when every server shows \
         about the same ghz rate, ghz on its one core is the limit and only the CPU column \
         compares the servers. `pingpong` \
         drives bidi streams: 16 concurrent streams on one connection, each 100 round trips of \
         64 B, then a new stream."
    );
    let _ = writeln!(
        out,
        "- Figures: req/s is the median of the runs (min–max in brackets). p50 and p99 are \
         latencies in µs, the median over the runs of each run's percentile (h2load's \
         per-request `--log-file`, nearest rank; ghz's and pingpong's own percentiles). CPU \
         µs/req is the server's user + system CPU time (`/proc/<pid>/stat`, {} ticks per \
         second) over the run divided by the requests completed, median of the runs. writes/req \
         is the server's write system calls (`syscw` of `/proc/<pid>/io`) over the run divided \
         by the requests completed, median of the runs: 1 when every reply is written alone, \
         below 1 when replies ready together leave in one write. Peak \
         RSS is `VmHWM` of the server at the end of the cell. The ratios compare with \
         switchboard on the same workload and protocol (req/s: higher is better; CPU: lower \
         is better).",
        method.clock_ticks
    );
    let _ = writeln!(
        out,
        "- Instructions per request: the server runs under `valgrind --tool=callgrind` twice, \
         driven by `h2load -n N -c 4 -m 4` with N1 and then N2 requests (bidi: `pingpong \
         --streams 16 --total N` round trips); (Ir(N2) − Ir(N1)) / \
         (N2 − N1) removes start-up and connection costs (the counts are dumped with \
         `callgrind_control -d` once the load has finished, before the server is stopped). \
         This figure does not depend on the machine's load. Rust servers run there with one \
         tokio worker (`TOKIO_WORKER_THREADS=1`) and their wall clock stopped \
         (`benches/frozen-clock`, preloaded), so a `Date` header changing mid-run does not \
         shift the count. Go servers run there with `GODEBUG=asyncpreemptoff=1`: callgrind \
         aborts on the signals Go's goroutine preemption sends.\n"
    );
}

fn cell_columns(figure: &Figure, baseline: Option<&Figure>) -> String {
    let (min, max) = figure.rate_range();
    let rate = if figure.runs.len() > 1 {
        format!(
            "{} ({}–{})",
            format_rate(figure.rate()),
            format_rate(min),
            format_rate(max)
        )
    } else {
        format_rate(figure.rate())
    };
    let rss = figure
        .peak_rss_kib
        .map(|kib| format!("{:.1}", kib as f64 / 1024.0))
        .unwrap_or_else(|| "–".to_owned());
    let (rate_ratio, cpu_ratio) = match baseline {
        Some(base) => (
            format_ratio(figure.rate(), base.rate()),
            format_ratio(figure.cpu_us_per_request(), base.cpu_us_per_request()),
        ),
        None => ("–".to_owned(), "–".to_owned()),
    };
    format!(
        "{rate} | {} | {} | {} | {:.2} | {rss} | {rate_ratio} | {cpu_ratio}",
        format_us(figure.p50_us()),
        format_us(figure.p99_us()),
        format_us(figure.cpu_us_per_request()),
        figure.writes_per_request(),
    )
}

fn write_workloads(out: &mut String, results: &Results) {
    for workload in WORKLOADS {
        let cells: Vec<_> = results
            .cells
            .iter()
            .filter(|c| c.workload.key == workload.key)
            .collect();
        if cells.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {}\n", workload.title());
        let _ = writeln!(
            out,
            "| server | protocol | {rate} median (min–max) | p50 µs | p99 µs | CPU µs/{item} | writes/{item} | peak RSS MiB | {rate} vs switchboard | CPU vs switchboard |",
            rate = units(&workload).0,
            item = units(&workload).1,
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for cell in cells {
            let figures = match &cell.outcome {
                Outcome::Measured(figure) => {
                    cell_columns(figure, results.baseline(&cell.workload, cell.protocol))
                }
                Outcome::Failed(_) => "**failed** (see below) | | | | | | ".to_owned(),
                Outcome::NotSupported(_) => "not supported | | | | | | ".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {figures} |",
                cell.server.key(),
                cell.protocol.title()
            );
        }
        let _ = writeln!(out);
    }
}

fn write_instructions(out: &mut String, results: &Results) {
    if results.instructions.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Instructions per request (callgrind)\n");
    let _ = writeln!(
        out,
        "| call | protocol | server | instructions/request | vs switchboard | N1 → N2 |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|");
    let mut groups: Vec<_> = Vec::new();
    for row in &results.instructions {
        if !groups.contains(&(row.call, row.protocol)) {
            groups.push((row.call, row.protocol));
        }
    }
    for (call, protocol) in groups {
        let mut rows: Vec<_> = results
            .instructions
            .iter()
            .filter(|r| r.call == call && r.protocol == protocol)
            .collect();
        // The ranking: fewest instructions first, failures last.
        rows.sort_by(|a, b| match (&a.outcome, &b.outcome) {
            (Ok(x), Ok(y)) => x.total_cmp(y),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => std::cmp::Ordering::Equal,
        });
        let base = rows
            .iter()
            .find(|r| r.server == Server::Switchboard)
            .and_then(|r| r.outcome.as_ref().ok().copied());
        for row in rows {
            let (count, ratio) = match &row.outcome {
                Ok(per) => (
                    format_rate(*per),
                    base.map(|b| format_ratio(*per, b))
                        .unwrap_or_else(|| "–".to_owned()),
                ),
                Err(_) => ("**failed** (see below)".to_owned(), "–".to_owned()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {count} | {ratio} | {} → {} |",
                call.title(),
                protocol.title(),
                row.server.key(),
                format_rate(row.requests.0 as f64),
                format_rate(row.requests.1 as f64),
            );
        }
    }
    let _ = writeln!(out);
}

fn write_allocations(out: &mut String, results: &Results) {
    let Some(allocations) = &results.allocations else {
        return;
    };
    let _ = writeln!(out, "## Heap allocations per unary call (alloc-count)\n");
    let _ = writeln!(
        out,
        "In-process: each library's service called directly with a prebuilt unary Echo request \
         (64 B payload), no sockets and no HTTP codec; a counting global allocator measures each \
         call until the response body is drained.\n"
    );
    match allocations {
        Ok(rows) => {
            let _ = writeln!(
                out,
                "| library | protocol | allocations/call | bytes/call |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|");
            for row in rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1} | {:.0} |",
                    row.library, row.protocol, row.allocs_per_call, row.bytes_per_call
                );
            }
        }
        Err(why) => {
            let _ = writeln!(out, "alloc-count failed: {why}");
        }
    }
    let _ = writeln!(out);
}

fn write_problems(out: &mut String, results: &Results) {
    let _ = writeln!(out, "## Failed verification, not supported, discarded\n");
    if results.problems.is_empty() {
        let _ = writeln!(
            out,
            "Nothing: every server answered and verified on every call and protocol it was \
             asked for, and every load generator reported only successes.\n"
        );
        return;
    }
    for problem in &results.problems {
        let why: String = problem.why.chars().take(400).collect();
        let why = why.replace('\n', " ").replace('|', "\\|");
        let _ = writeln!(out, "- {}: {why}", problem.what);
    }
    let _ = writeln!(out);
}

/// The whole file.
pub(crate) fn render(machine: &Machine, method: &Method, results: &Results, notes: &str) -> String {
    let mut out = String::new();
    write_header(&mut out, machine, method);
    let _ = writeln!(out, "## Throughput, latency, CPU and memory\n");
    write_workloads(&mut out, results);
    write_instructions(&mut out, results);
    write_allocations(&mut out, results);
    write_problems(&mut out, results);
    out.push_str(notes);
    out
}

/// The table printed at the end of a run.
pub(crate) fn print_summary(results: &Results) {
    println!();
    println!(
        "{:<18} {:<12} {:<17} {:>12} {:>9} {:>9} {:>8}",
        "workload", "server", "protocol", "rate/s", "p99 µs", "CPU µs", "vs sb"
    );
    println!("{}", "-".repeat(91));
    for cell in &results.cells {
        let figures = match &cell.outcome {
            Outcome::Measured(figure) => {
                let ratio = results
                    .baseline(&cell.workload, cell.protocol)
                    .map(|base| format_ratio(figure.rate(), base.rate()))
                    .unwrap_or_else(|| "–".to_owned());
                format!(
                    "{:>12} {:>9} {:>9} {:>8}",
                    format_rate(figure.rate()),
                    format_us(figure.p99_us()),
                    format_us(figure.cpu_us_per_request()),
                    ratio
                )
            }
            Outcome::Failed(why) => format!("FAILED: {}", why.chars().take(60).collect::<String>()),
            Outcome::NotSupported(why) => format!(
                "not supported: {}",
                why.chars().take(55).collect::<String>()
            ),
        };
        println!(
            "{:<18} {:<12} {:<17} {figures}",
            cell.workload.key,
            cell.server.key(),
            cell.protocol.title()
        );
    }
    for row in &results.instructions {
        let value = match &row.outcome {
            Ok(per) => format!("{} instructions/request", format_rate(*per)),
            Err(why) => format!("FAILED: {}", why.chars().take(60).collect::<String>()),
        };
        println!(
            "callgrind          {:<12} {:<17} {} {value}",
            row.server.key(),
            row.protocol.title(),
            row.call.key()
        );
    }
    if let Some(Ok(rows)) = &results.allocations {
        for row in rows {
            println!(
                "alloc-count        {:<12} {:<17} {:.1} allocations, {:.0} bytes per call",
                row.library, row.protocol, row.allocs_per_call, row.bytes_per_call
            );
        }
    }
    let fatal = results.fatal_count();
    println!(
        "bench: {} cells measured, {} problems ({} fatal)",
        results
            .cells
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Measured(_)))
            .count(),
        results.problems.len(),
        fatal
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::matrix::Protocol;
    use crate::bench::results::{Cell, Run};

    #[test]
    fn keeps_the_notes() {
        let old =
            "# Old\n| table |\n<!-- notes: kept across runs -->\n\n## Notes\n\n- tried X: +3%\n";
        let notes = kept_notes(Some(old));
        assert_eq!(
            notes,
            "<!-- notes: kept across runs -->\n\n## Notes\n\n- tried X: +3%\n"
        );
        assert!(kept_notes(None).starts_with(NOTES_MARKER));
        assert!(kept_notes(Some("# no marker")).starts_with(NOTES_MARKER));
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(format_rate(1234567.4), "1,234,567");
        assert_eq!(format_rate(999.0), "999");
        assert_eq!(format_rate(1000.0), "1,000");
        assert_eq!(format_us(12.34), "12.3");
        assert_eq!(format_us(1234.5), "1234");
        assert_eq!(format_ratio(50.0, 100.0), "0.50×");
        assert_eq!(format_ratio(1.0, 0.0), "–");
    }

    #[test]
    fn renders_a_table_with_ratios_and_the_notes() {
        let figure = |rate: f64| {
            Outcome::Measured(Figure {
                runs: vec![Run {
                    rate,
                    completed: 1000,
                    p50_us: 100.0,
                    p99_us: 500.0,
                    cpu_us_per_request: 1e6 / rate,
                    writes_per_request: 1.0,
                }],
                peak_rss_kib: Some(10 * 1024),
            })
        };
        let mut results = Results::default();
        for (server, outcome) in [
            (Server::Switchboard, figure(20_000.0)),
            (Server::Tonic, figure(10_000.0)),
            (Server::Connectrpc, Outcome::NotSupported("HTTP 415".into())),
        ] {
            results.cells.push(Cell {
                server,
                workload: WORKLOADS[0],
                protocol: Protocol::Grpc,
                outcome,
            });
        }
        results.problem("connectrpc gRPC-Web", "not supported: HTTP 415", false);
        let machine = Machine {
            date: "2026-01-01".into(),
            cpu_model: "Test CPU".into(),
            cores: 2,
            kernel: "6.0".into(),
            versions: vec![("h2load", "h2load nghttp2/1.52.0".into())],
        };
        let method = Method {
            quick: false,
            runs: 3,
            seconds: 5.0,
            warmup: 2.0,
            pinning: Some((1, 0)),
            clock_ticks: 100,
            command: "cargo xtask bench".into(),
        };
        let text = render(&machine, &method, &results, &kept_notes(None));
        assert!(
            text.contains(
                "| switchboard | gRPC | 20,000 | 100 | 500 | 50.0 | 1.00 | 10.0 | 1.00× | 1.00× |"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "| tonic | gRPC | 10,000 | 100 | 500 | 100 | 1.00 | 10.0 | 0.50× | 2.00× |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| connectrpc | gRPC | not supported |"),
            "{text}"
        );
        assert!(text.contains("- connectrpc gRPC-Web: not supported: HTTP 415"));
        assert!(text.ends_with(&kept_notes(None)));
    }
}
