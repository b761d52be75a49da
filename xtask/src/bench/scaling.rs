//! `cargo xtask bench --scaling [--quick]`: how each Rust server's requests/s grows from one
//! tokio worker thread to two.
//!
//! Every server runs tokio's default multi-thread runtime, whose worker count follows the CPU
//! affinity. One worker: the server pinned to CPU 1, h2load to CPU 0, as in the main
//! benchmark. Two workers: the server and h2load both allowed on CPUs 0 and 1. This machine
//! has two cores (this process must be allowed on both), so with two workers the load generator competes with the server for them;
//! the ratio is then what the same two cores give each server, and every server faces the
//! same load generator. The load is unary Echo 64 B over gRPC, 256 calls in flight
//! (`h2load -c 16 -m 16`), 5 runs of 5 s after a 2 s warm-up (`--quick`: one run of 1 s),
//! the servers taking their runs in turns for each worker count.
//!
//! The report is `benches/RESULTS-scaling.md` (a full run) or
//! `<target>/benches/RESULTS-scaling.quick.md`. Figures are never asserted.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::binaries;
use super::bodies::Bodies;
use super::h2load::{Amount, Run, Summary};
use super::matrix::{Call, Protocol, Server};
use super::server::{Launch, Running};
use crate::steps::run_step;

/// The servers compared: every Rust server, hyper's bare echo as the ceiling.
const SERVERS: [Server; 4] = [
    Server::Switchboard,
    Server::Tonic,
    Server::Connectrpc,
    Server::Hyper,
];

/// Connections × streams per connection: 256 calls in flight.
const LOAD: (u32, u32) = (16, 16);

/// One server's figures: median requests/s, and server CPU µs per request, with one worker
/// and with two.
struct Figures {
    server: Server,
    one: f64,
    two: f64,
    cpu_one: f64,
    cpu_two: f64,
}

/// Entry point of `--scaling`.
pub(crate) fn run(quick: bool) -> Result<()> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-bench-scale-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> bench --scaling: logs in {}", logs.display());
    let tools = super::tools::ensure(&logs, false, false)?;
    let binaries = binaries::build(&logs, false)?;
    let bodies = Bodies::write(&work.join("bodies"))?;
    let cpus = super::server::allowed_cpus(
        &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
    );
    if cpus.len() < 2 {
        bail!("--scaling needs two CPUs, this process may use {cpus:?}");
    }
    let (runs, seconds, warmup) = if quick { (1, 1.0, 0.5) } else { (5, 5.0, 2.0) };
    let body = bodies.path(Call::Echo64, Protocol::Grpc);
    let ticks_per_second = super::server::clock_ticks_per_second() as f64;

    // Each worker count is measured on every server side by side: all started, each warmed
    // up, then the runs taken in turns, so a drift in the shared machine's load (which moves
    // the two-worker figures most, as the load generator shares their CPUs) spreads over all
    // of them.
    let mut measured: Vec<[(f64, f64); 2]> = vec![[(0.0, 0.0); 2]; SERVERS.len()];
    for (slot, workers) in [1u32, 2].into_iter().enumerate() {
        // One worker: the server started on the second CPU, the load on the first. Two:
        // both on both; tokio sizes the runtime from the affinity at start.
        let (server_cpu, load_cpus) = if workers == 1 {
            (Some(cpus[1]), cpus[0].to_string())
        } else {
            (None, format!("{},{}", cpus[0], cpus[1]))
        };
        let load = |label: &str, port: u16, amount: f64| -> Result<Summary> {
            let run = Run {
                h2load: &tools.h2load,
                port,
                call: Call::Echo64,
                protocol: Protocol::Grpc,
                body: &body,
                clients: LOAD.0,
                streams: LOAD.1,
                amount: Amount::Seconds(amount),
                log_file: None,
            };
            let mut command = std::process::Command::new("taskset");
            command
                .arg("-c")
                .arg(&load_cpus)
                .arg(&tools.h2load)
                .args(run.args());
            let step = run_step(&logs, label, &mut command, Duration::from_secs(120))?;
            if !step.success() {
                bail!("h2load {}", step.failure());
            }
            let summary = Summary::parse(&step.stdout)?;
            summary.check(u64::from(LOAD.0 * LOAD.1))?;
            Ok(summary)
        };
        let mut running = Vec::new();
        for server in SERVERS {
            let label = format!("{} with {workers} worker(s)", server.key());
            eprintln!("==> {label}");
            let started = Running::start(
                &logs,
                &label,
                &Launch {
                    binary: &binaries.rust.join(server.binary_name()),
                    cpu: server_cpu,
                    callgrind: None,
                    preload: None,
                    start_timeout: Duration::from_secs(30),
                },
            )?;
            load(&label, started.port, warmup).with_context(|| format!("{label}: warm-up"))?;
            running.push((label, started, Vec::new(), 0u64, 0u64));
        }
        for _ in 0..runs {
            for (label, server, rates, ticks, requests) in running.iter_mut() {
                let before = server.cpu_ticks()?;
                let summary = load(label, server.port, seconds).with_context(|| label.clone())?;
                *ticks += server.cpu_ticks()?.saturating_sub(before);
                *requests += summary.succeeded;
                rates.push(summary.requests_per_second);
            }
        }
        for (index, (_, server, rates, ticks, requests)) in running.into_iter().enumerate() {
            let cpu = ticks as f64 / ticks_per_second * 1e6 / requests.max(1) as f64;
            server
                .stop(Duration::from_secs(10))
                .map_err(anyhow::Error::msg)?;
            measured[index][slot] = (super::guard::median(&rates).unwrap_or(0.0), cpu);
        }
    }
    let rows: Vec<Figures> = SERVERS
        .into_iter()
        .zip(measured)
        .map(|(server, [(one, cpu_one), (two, cpu_two)])| Figures {
            server,
            one,
            two,
            cpu_one,
            cpu_two,
        })
        .collect();

    let text = report(&rows, quick, (runs, seconds));
    super::write_side_report("scaling", &text, quick)?;
    eprintln!(
        "bench --scaling took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn report(rows: &[Figures], quick: bool, (runs, seconds): (usize, f64)) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Scaling from one worker thread to two\n\n\
         Written by `cargo xtask bench --scaling{}`; do not edit by hand. Unary Echo 64 B over \
         gRPC, 256 calls in flight (`h2load -t 1 -c 16 -m 16`), the median of {runs} run(s) of \
         {seconds} s. One worker: the server pinned to one CPU, h2load to the other. Two \
         workers: server and h2load both on both CPUs, so the load generator competes with \
         the server for the second core (the machine has two), and requests/s with two \
         workers is bounded by that contest as much as by the server. CPU µs/request (the \
         server's utime + stime from /proc over the runs, per request) shows what a second \
         worker costs the server itself: equal figures mean no cost from the second thread.\n",
        if quick { " --quick" } else { "" },
    );
    let _ = writeln!(
        text,
        "| server | req/s, 1 worker | req/s, 2 workers | scaling | CPU µs/req, 1 worker | CPU µs/req, 2 workers |"
    );
    let _ = writeln!(text, "| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let scaling = if row.one > 0.0 {
            format!("{:.2}×", row.two / row.one)
        } else {
            "–".to_owned()
        };
        let _ = writeln!(
            text,
            "| {} | {:.0} | {:.0} | {scaling} | {:.2} | {:.2} |",
            row.server.key(),
            row.one,
            row.two,
            row.cpu_one,
            row.cpu_two,
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_ratio_of_two_workers_to_one() {
        let rows = [Figures {
            server: Server::Tonic,
            one: 40_000.0,
            two: 50_000.0,
            cpu_one: 20.0,
            cpu_two: 22.5,
        }];
        let text = report(&rows, true, (1, 1.0));
        assert!(
            text.contains("| tonic | 40000 | 50000 | 1.25× | 20.00 | 22.50 |"),
            "{text}"
        );
    }
}
