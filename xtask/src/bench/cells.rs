//! Measuring one workload over one protocol on several servers side by side: a fresh server
//! each, a warm-up with the same load, then the measured runs taken in turns, each with the
//! server's CPU time read from `/proc` before and after, and each server's peak RSS at the
//! end.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::matrix::{Driver, Protocol, Server, Workload};
use super::results::{Figure, Run};
use super::server::Running;
use super::{Context, STOP_TIMEOUT, bodies, ghz, h2load, last_words, pingpong, pinned};
use crate::steps::{run_step, slug};
use crate::workspace_root;

/// A load run gets its duration plus this.
const RUN_SLACK: Duration = Duration::from_secs(120);

/// One run's figures before CPU is attached.
struct Sample {
    rate: f64,
    completed: u64,
    p50_us: f64,
    p99_us: f64,
}

/// Runs the workload's load generator once against `port`; `record` asks for latencies.
fn drive(
    ctx: &Context,
    port: u16,
    workload: &Workload,
    protocol: Protocol,
    seconds: f64,
    name: &str,
    record: bool,
) -> Result<Sample> {
    let timeout = Duration::from_secs_f64(seconds) + RUN_SLACK;
    match workload.driver {
        Driver::H2load => {
            let (clients, streams) = workload.h2load_clients(protocol);
            let log = ctx.logs.join(format!("{}.latencies.log", slug(name)));
            let body = ctx.bodies.path(workload.call, protocol);
            let run = h2load::Run {
                h2load: &ctx.tools.h2load,
                port,
                call: workload.call,
                protocol,
                body: &body,
                clients,
                streams,
                amount: h2load::Amount::Seconds(seconds),
                log_file: record.then_some(log.as_path()),
            };
            let step = run_step(&ctx.logs, name, &mut run.command(ctx.load_cpu()), timeout)?;
            if !step.success() {
                bail!("h2load {}: {}", step.failure(), last_words(&step));
            }
            let summary = h2load::Summary::parse(&step.stdout)?;
            summary.check(u64::from(clients * streams))?;
            summary.check_data(bodies::min_response_bytes(workload.call, protocol))?;
            let (p50_us, p99_us) = if record {
                let text = std::fs::read_to_string(&log).context("reading h2load's log")?;
                let _ = std::fs::remove_file(&log);
                let mut latencies = h2load::log_latencies(&text)?;
                let p50 = h2load::percentile(&mut latencies, 50.0).context("no latencies")?;
                let p99 = h2load::percentile(&mut latencies, 99.0).context("no latencies")?;
                (p50 as f64, p99 as f64)
            } else {
                (0.0, 0.0)
            };
            Ok(Sample {
                rate: summary.requests_per_second,
                completed: summary.succeeded,
                p50_us,
                p99_us,
            })
        }
        Driver::Ghz => {
            let args = ghz::args(&workspace_root(), port, workload.concurrency, seconds);
            let ghz_path = ctx
                .tools
                .ghz
                .as_deref()
                .context("ghz was not installed for this run")?;
            let mut command = ghz::command(ghz_path, ctx.load_cpu(), &args);
            let step = run_step(&ctx.logs, name, &mut command, timeout)?;
            let report = ghz::parse(&step.stdout)
                .with_context(|| format!("ghz {}: {}", step.failure(), last_words(&step)))?;
            if !step.success() {
                bail!("ghz {}: {}", step.failure(), last_words(&step));
            }
            // The report lists every call; it has served its purpose.
            let _ = std::fs::remove_file(&step.logs[0]);
            Ok(Sample {
                rate: report.requests_per_second,
                completed: report.count,
                p50_us: report.p50_us,
                p99_us: report.p99_us,
            })
        }
        Driver::Pingpong => {
            let args = pingpong::args(port, protocol, workload.concurrency, 0.0, seconds);
            let binary = ctx.binaries.rust.join("pingpong");
            let mut command = pinned(ctx.load_cpu(), &binary, &args);
            let step = run_step(&ctx.logs, name, &mut command, timeout)?;
            let report = pingpong::parse(&step.stdout)
                .with_context(|| format!("pingpong {}: {}", step.failure(), last_words(&step)))?;
            if !step.success() {
                bail!("pingpong {}: {}", step.failure(), last_words(&step));
            }
            Ok(Sample {
                rate: report.round_trips_per_second,
                completed: report.round_trips,
                p50_us: report.p50_us,
                p99_us: report.p99_us,
            })
        }
    }
}

/// A server of a side-by-side cell, started and warmed up, with the runs measured so far.
struct Entrant {
    name: String,
    running: Running,
    figure: Figure,
}

impl Entrant {
    /// `Err` with the server's logs printed if it is no longer running.
    fn check_alive(&mut self) -> Result<()> {
        self.running.alive().map_err(|why| {
            crate::steps::print_logs(self.running.logs());
            anyhow::anyhow!(why)
        })
    }

    /// One measured run, with the server's CPU time read before and after.
    fn run(
        &mut self,
        ctx: &Context,
        workload: &Workload,
        protocol: Protocol,
        index: usize,
    ) -> Result<()> {
        let before = self.running.cpu_ticks()?;
        let writes_before = self.running.write_calls()?;
        let name = format!("{} run {index}", self.name);
        let port = self.running.port;
        let sample = drive(ctx, port, workload, protocol, ctx.mode.seconds, &name, true)?;
        let after = self.running.cpu_ticks()?;
        let writes_after = self.running.write_calls()?;
        self.check_alive()?;
        let cpu_us = (after - before) as f64 * 1e6 / ctx.clock_ticks as f64;
        self.figure.runs.push(Run {
            rate: sample.rate,
            completed: sample.completed,
            p50_us: sample.p50_us,
            p99_us: sample.p99_us,
            cpu_us_per_request: cpu_us / sample.completed.max(1) as f64,
            writes_per_request: (writes_after - writes_before) as f64
                / sample.completed.max(1) as f64,
        });
        Ok(())
    }
}

/// Starts a fresh server for the cell and warms it up with the same load.
fn enter(
    ctx: &Context,
    server: Server,
    workload: &Workload,
    protocol: Protocol,
) -> Result<Entrant> {
    let name = format!("{} {} {}", server.key(), workload.key, protocol.title());
    let running = ctx.start(server, &name)?;
    let mut entrant = Entrant {
        name,
        running,
        figure: Figure::default(),
    };
    let warmup = format!("{} warm-up", entrant.name);
    let port = entrant.running.port;
    drive(
        ctx,
        port,
        workload,
        protocol,
        ctx.mode.warmup,
        &warmup,
        false,
    )
    .context("warm-up")?;
    entrant.check_alive()?;
    Ok(entrant)
}

/// Measures one workload over one protocol on every server in `servers`, side by side: each
/// server is started and warmed up, then the runs go round the servers (run 1 of each, then
/// run 2 of each, ...). The machine is shared, and its load drifts over minutes; measured one
/// server after another, a drift shows up as a difference between servers, while taken in
/// turns it spreads over all of them. Returns each server's figure, or why it has none (a
/// server that fails drops out; the others go on).
pub(crate) fn measure_side_by_side(
    ctx: &Context,
    servers: &[Server],
    workload: &Workload,
    protocol: Protocol,
) -> Vec<Result<Figure>> {
    let mut entrants: Vec<Result<Entrant>> = servers
        .iter()
        .map(|&server| enter(ctx, server, workload, protocol))
        .collect();
    for index in 1..=ctx.mode.runs {
        for slot in entrants.iter_mut() {
            if let Ok(entrant) = slot
                && let Err(error) = entrant.run(ctx, workload, protocol, index)
            {
                *slot = Err(error);
            }
        }
    }
    entrants
        .into_iter()
        .map(|slot| {
            let mut entrant = slot?;
            entrant.figure.peak_rss_kib = entrant.running.peak_rss_kib().ok();
            entrant
                .running
                .stop(STOP_TIMEOUT)
                .map_err(|why| anyhow::anyhow!(why))?;
            Ok(entrant.figure)
        })
        .collect()
}
