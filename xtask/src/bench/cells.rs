//! Measuring one cell (server × workload × protocol): a fresh server, a warm-up with the
//! same load, then the measured runs, each with the server's CPU time read from `/proc`
//! before and after, and its peak RSS at the end.

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

/// Measures one cell on a fresh server.
pub(crate) fn measure(
    ctx: &Context,
    server: Server,
    workload: &Workload,
    protocol: Protocol,
) -> Result<Figure> {
    let cell = format!("{} {} {}", server.key(), workload.key, protocol.title());
    let mut running = ctx.start(server, &cell)?;
    let port = running.port;
    let crashed = |running: &mut Running| -> Result<()> {
        running.alive().map_err(|why| {
            crate::steps::print_logs(running.logs());
            anyhow::anyhow!(why)
        })
    };
    let warmup = format!("{cell} warm-up");
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
    crashed(&mut running)?;
    let mut figure = Figure::default();
    for index in 1..=ctx.mode.runs {
        let before = running.cpu_ticks()?;
        let name = format!("{cell} run {index}");
        let sample = drive(ctx, port, workload, protocol, ctx.mode.seconds, &name, true)?;
        let after = running.cpu_ticks()?;
        crashed(&mut running)?;
        let cpu_us = (after - before) as f64 * 1e6 / ctx.clock_ticks as f64;
        figure.runs.push(Run {
            rate: sample.rate,
            completed: sample.completed,
            p50_us: sample.p50_us,
            p99_us: sample.p99_us,
            cpu_us_per_request: cpu_us / sample.completed.max(1) as f64,
        });
    }
    figure.peak_rss_kib = running.peak_rss_kib().ok();
    running
        .stop(STOP_TIMEOUT)
        .map_err(|why| anyhow::anyhow!(why))?;
    Ok(figure)
}
