//! `cargo xtask bench --memory [--quick]`: what each Rust server keeps in memory per idle
//! HTTP/2 connection and per open bidi stream, side by side.
//!
//! `pingpong --hold` (written on the h2 crate, foreign to every server) opens the connections,
//! then the streams one after another. Each stream makes one round trip and is then left
//! open. The server's resident memory (VmRSS) is read once everything is held:
//!
//! - per idle connection: (RSS holding C connections − RSS before) / C;
//! - per open stream: (RSS holding S streams on C' connections − RSS before − C' × the
//!   per-connection figure) / S.
//!
//! Each figure gets a fresh server, pinned to one CPU, warmed by one held stream first, so
//! lazily made state (thread-locals, the first buffers) is in the "before" figure.
//! Full runs hold 2,000 connections, then 10,000 streams on 100 connections; `--quick` holds
//! 200, then 1,000 streams on 10. The report is `benches/RESULTS-memory.md` (a full run) or
//! `<target>/benches/RESULTS-memory.quick.md`.
//!
//! The figures are guarded only against the peers measured in the same run: switchboard's
//! bytes per idle connection and per open stream may be at most [`TOLERANCE`] times the best
//! peer's, or the run fails after writing its report. Measured this way the guard does not
//! move with the machine, the kernel or the allocator, which move every server alike;
//! repeated quick runs differ by one page over the connections held (about 20 bytes per
//! connection). Issue 15's target is at most the best peer's; the 2% allowance is there
//! because switchboard and tonic are within 1–2% of each other per idle connection, and
//! tokio allocates each task in a 128-byte-aligned cell: 8 more bytes in the connection's
//! future can cost 128 bytes of heap and about 270 of resident memory per connection (the
//! write-coalescing layer did, until its state and `FirstBytes` were made smaller).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::binaries;
use super::matrix::Server;
use super::server::{Launch, Running};
use crate::process::{Banner, Process};

/// The servers compared: switchboard and the Rust peers that serve bidi streams.
const SERVERS: [Server; 3] = [Server::Switchboard, Server::Tonic, Server::Connectrpc];

/// How much is held.
#[derive(Clone, Copy)]
struct Sizes {
    idle_connections: u32,
    streams: u32,
    stream_connections: u32,
}

const FULL: Sizes = Sizes {
    idle_connections: 2_000,
    streams: 10_000,
    stream_connections: 100,
};

const QUICK: Sizes = Sizes {
    idle_connections: 200,
    streams: 1_000,
    stream_connections: 10,
};

/// One server's figures, in bytes.
struct Figures {
    server: Server,
    /// Resident memory of the warmed server, before the connections (KiB).
    base_kib: u64,
    per_connection: f64,
    per_stream: f64,
}

/// Entry point of `--memory`.
pub(crate) fn run(quick: bool) -> Result<()> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-bench-mem-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> bench --memory: logs in {}", logs.display());
    let binaries = binaries::build(&logs, false)?;
    let cpus = super::server::allowed_cpus(
        &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
    );
    let pinning = (cpus.len() >= 2).then(|| (cpus[1], cpus[0]));
    let sizes = if quick { QUICK } else { FULL };
    let pingpong = binaries.rust.join("pingpong");

    let mut rows = Vec::new();
    for server in SERVERS {
        let binary = binaries.rust.join(server.binary_name());
        let measure = |connections: u32, streams: u32| -> Result<(u64, u64)> {
            held_rss(
                &logs,
                server,
                &binary,
                &pingpong,
                pinning,
                connections,
                streams,
            )
        };
        eprintln!(
            "==> {}: {} idle connections",
            server.key(),
            sizes.idle_connections
        );
        let (base_kib, idle_kib) = measure(sizes.idle_connections, 0)
            .with_context(|| format!("{}: idle connections", server.key()))?;
        let per_connection =
            (idle_kib as f64 - base_kib as f64) * 1024.0 / f64::from(sizes.idle_connections);
        eprintln!(
            "==> {}: {} streams on {} connections",
            server.key(),
            sizes.streams,
            sizes.stream_connections
        );
        let (before_kib, streams_kib) = measure(sizes.stream_connections, sizes.streams)
            .with_context(|| format!("{}: open streams", server.key()))?;
        let per_stream = ((streams_kib as f64 - before_kib as f64) * 1024.0
            - f64::from(sizes.stream_connections) * per_connection)
            / f64::from(sizes.streams);
        rows.push(Figures {
            server,
            base_kib,
            per_connection,
            per_stream,
        });
    }

    let text = report(&rows, sizes, quick, pinning);
    super::write_side_report("memory", &text, quick)?;
    eprintln!(
        "bench --memory took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&work);
    let above = above_best_peer(&rows);
    for line in &above {
        eprintln!("bench --memory: {line}");
    }
    if !above.is_empty() {
        anyhow::bail!(
            "switchboard keeps more memory than its best peer allows: {}",
            above.join("; ")
        );
    }
    Ok(())
}

/// How far above the best peer switchboard's figures may be before the run fails.
const TOLERANCE: f64 = 1.02;

/// One figure of a row, with what it measures.
type Measure = (&'static str, fn(&Figures) -> f64);

/// Each figure where switchboard keeps more than [`TOLERANCE`] times the bytes of the best of
/// the other servers, said with both figures (empty when it is within everywhere).
fn above_best_peer(rows: &[Figures]) -> Vec<String> {
    let Some(ours) = rows.iter().find(|row| row.server == Server::Switchboard) else {
        return vec!["switchboard was not measured".to_owned()];
    };
    let peers: Vec<&Figures> = rows
        .iter()
        .filter(|row| row.server != Server::Switchboard)
        .collect();
    let measures: [Measure; 2] = [
        ("bytes per idle connection", |row| row.per_connection),
        ("bytes per open stream", |row| row.per_stream),
    ];
    let mut above = Vec::new();
    for (what, figure) in measures {
        let best = peers.iter().min_by(|a, b| figure(a).total_cmp(&figure(b)));
        if let Some(best) = best
            && figure(ours) > figure(best) * TOLERANCE
        {
            above.push(format!(
                "{what}: switchboard {:.0}, {} {:.0}",
                figure(ours),
                best.server.key(),
                figure(best)
            ));
        }
    }
    above
}

/// Starts `server` fresh, warms it with one held stream, and returns its resident memory
/// (KiB) before and while `pingpong --hold` holds `connections` and `streams`.
fn held_rss(
    logs: &Path,
    server: Server,
    binary: &Path,
    pingpong: &Path,
    pinning: Option<(u32, u32)>,
    connections: u32,
    streams: u32,
) -> Result<(u64, u64)> {
    let running = Running::start(
        logs,
        server.key(),
        &Launch {
            binary,
            cpu: pinning.map(|(server, _)| server),
            callgrind: None,
            preload: None,
            start_timeout: Duration::from_secs(30),
        },
    )?;
    let hold = |connections: u32, streams: u32| -> Result<Process> {
        let args = [
            "--addr".to_owned(),
            format!("127.0.0.1:{}", running.port),
            "--hold".to_owned(),
            "--connections".to_owned(),
            connections.to_string(),
            "--streams".to_owned(),
            streams.to_string(),
        ];
        let mut command = super::pinned(pinning.map(|(_, load)| load), pingpong, &args);
        let (process, ()) = Process::start(
            logs,
            &format!("pingpong hold {connections}/{streams}"),
            &mut command,
            Banner::Stdout,
            Duration::from_secs(120),
            |line| line.starts_with("holding ").then_some(()),
        )?;
        Ok(process)
    };
    drop(hold(1, 1)?);
    // Give the server a moment to see the warm-up connection go.
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(running.pid())?;
    let held = hold(connections, streams)?;
    // The last stream's answer was read; let the server finish its side of it.
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_kib(running.pid())?;
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    running
        .stop(Duration::from_secs(10))
        .map_err(anyhow::Error::msg)?;
    Ok((before, during))
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    vm_rss_kib(&status)
}

/// `VmRSS:  12345 kB` from `/proc/<pid>/status`.
fn vm_rss_kib(status: &str) -> Result<u64> {
    super::server::proc_number(status, "VmRSS")
}

fn report(rows: &[Figures], sizes: Sizes, quick: bool, pinning: Option<(u32, u32)>) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Memory per idle connection and per open stream\n\n\
         Written by `cargo xtask bench --memory{}`; do not edit by hand. `pingpong --hold` \
         opens {} idle HTTP/2 connections, then (on a fresh server) {} bidi streams on {} \
         connections, one after another, each after one 64-byte round trip left open. The \
         server's VmRSS is read before and while they are held; the stream figure has the \
         connections' share taken out. Each server is started fresh per figure{} and warmed by \
         one held stream first. Lower is better.\n",
        if quick { " --quick" } else { "" },
        sizes.idle_connections,
        sizes.streams,
        sizes.stream_connections,
        match pinning {
            Some((server, load)) => format!(", pinned to CPU {server}, the driver to CPU {load}"),
            None => String::new(),
        },
    );
    let base = rows.iter().find(|r| r.server == Server::Switchboard);
    let _ = writeln!(
        text,
        "| server | bytes per idle connection | vs switchboard | bytes per open stream | vs switchboard | RSS when idle (MiB) |"
    );
    let _ = writeln!(text, "| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let ratio = |ours: f64, theirs: f64| {
            if ours > 0.0 {
                format!("{:.2}×", theirs / ours)
            } else {
                "–".to_owned()
            }
        };
        let _ = writeln!(
            text,
            "| {} | {:.0} | {} | {:.0} | {} | {:.1} |",
            row.server.key(),
            row.per_connection,
            base.map_or("–".to_owned(), |b| ratio(
                b.per_connection,
                row.per_connection
            )),
            row.per_stream,
            base.map_or("–".to_owned(), |b| ratio(b.per_stream, row.per_stream)),
            row.base_kib as f64 / 1024.0,
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tx\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(vm_rss_kib(status).unwrap(), 4000);
        assert!(vm_rss_kib("Name:\tx\n").is_err());
    }

    #[test]
    fn reports_ratios_against_switchboard() {
        let rows = [
            Figures {
                server: Server::Switchboard,
                base_kib: 7168,
                per_connection: 16_000.0,
                per_stream: 1_000.0,
            },
            Figures {
                server: Server::Tonic,
                base_kib: 4096,
                per_connection: 16_800.0,
                per_stream: 9_000.0,
            },
        ];
        let text = report(&rows, QUICK, true, Some((1, 0)));
        assert!(
            text.contains("| switchboard | 16000 | 1.00× | 1000 | 1.00× | 7.0 |"),
            "{text}"
        );
        assert!(
            text.contains("| tonic | 16800 | 1.05× | 9000 | 9.00× | 4.0 |"),
            "{text}"
        );
    }

    #[test]
    fn fails_only_where_switchboard_keeps_more_than_the_best_peer() {
        let row = |server, per_connection, per_stream| Figures {
            server,
            base_kib: 4096,
            per_connection,
            per_stream,
        };
        let within = [
            row(Server::Switchboard, 16_000.0, 2_500.0),
            row(Server::Tonic, 16_100.0, 10_000.0),
            row(Server::Connectrpc, 16_800.0, 7_400.0),
        ];
        assert!(above_best_peer(&within).is_empty());
        let slightly_above = [
            row(Server::Switchboard, 16_300.0, 2_500.0),
            row(Server::Tonic, 16_100.0, 10_000.0),
        ];
        assert!(above_best_peer(&slightly_above).is_empty(), "within 2%");
        let above = [
            row(Server::Switchboard, 16_500.0, 2_500.0),
            row(Server::Tonic, 16_100.0, 10_000.0),
            row(Server::Connectrpc, 16_800.0, 2_400.0),
        ];
        assert_eq!(
            above_best_peer(&above),
            [
                "bytes per idle connection: switchboard 16500, tonic 16100",
                "bytes per open stream: switchboard 2500, connectrpc 2400"
            ]
        );
    }
}
