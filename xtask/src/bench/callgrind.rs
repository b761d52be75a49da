//! Instructions per request under callgrind: a server runs under `valgrind --tool=callgrind`
//! twice, once for N1 requests and once for N2, and (Ir(N2) − Ir(N1)) / (N2 − N1) is the
//! cost of one request with start-up, connection set-up and shutdown subtracted out. Unlike
//! wall-clock figures it does not depend on the machine's load or frequency.
//!
//! The server runs with its wall clock stopped (`benches/frozen-clock`, preloaded): hyper's
//! `Date` header otherwise changes at whichever request crosses a second, and the HPACK
//! table and heap layout that follow from it made the count of the same run vary by up to
//! 0.5%. With one tokio worker (`TOKIO_WORKER_THREADS=1`) and the clock stopped, repeated
//! runs agree to a few hundredths of a percent.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::matrix::{Call, Protocol, Server};
use super::server::{Launch, Running};
use super::{Context, bodies, h2load, last_words, pingpong, pinned};
use crate::steps::{print_logs, run_step, slug};

/// valgrind makes everything ~50 times slower, start-up included.
const VALGRIND_START_TIMEOUT: Duration = Duration::from_secs(300);
const VALGRIND_STOP_TIMEOUT: Duration = Duration::from_secs(120);
const CALLGRIND_LOAD_TIMEOUT: Duration = Duration::from_secs(1800);

/// The instruction count callgrind recorded: the `totals:` line of its output file (or the
/// older `summary:` line), whose first number is the first event, `Ir` by default.
pub(crate) fn total_instructions(out_file: &str) -> Result<u64> {
    let events = out_file
        .lines()
        .find_map(|line| line.strip_prefix("events:"))
        .map(|events| events.split_whitespace().collect::<Vec<_>>());
    if let Some(events) = events.filter(|events| events.first() != Some(&"Ir")) {
        bail!("callgrind recorded {events:?}, not Ir first");
    }
    let line = out_file
        .lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .or_else(|| {
            out_file
                .lines()
                .find_map(|line| line.strip_prefix("summary:"))
        })
        .context("no totals: or summary: line in the callgrind output")?;
    let first = line
        .split_whitespace()
        .next()
        .context("empty callgrind totals")?;
    Ok(first.parse()?)
}

/// Instructions per request from the totals of two runs of `n1` and `n2` requests.
pub(crate) fn per_request(n1: u64, total1: u64, n2: u64, total2: u64) -> Result<f64> {
    if n2 <= n1 {
        bail!("the second run must send more requests ({n2} <= {n1})");
    }
    if total2 <= total1 {
        bail!("the longer run executed fewer instructions ({total2} <= {total1})");
    }
    Ok((total2 - total1) as f64 / (n2 - n1) as f64)
}

/// What sends the requests of a callgrind run. The concurrency is part of what is measured:
/// how many requests the server finds ready per wake-up changes the instructions each one
/// costs, so a figure is only comparable with one taken under the same load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Load {
    /// `h2load -n N -c clients -m streams`: a request is one call (for a stream, the whole
    /// stream).
    H2load { clients: u32, streams: u32 },
    /// `pingpong --total N --streams streams` on one connection (bidi calls, which h2load
    /// cannot play): a request is one round trip.
    Pingpong { streams: u32 },
}

impl Load {
    /// How the report and the guard describe it.
    pub(crate) fn describe(self) -> String {
        match self {
            Load::H2load { clients, streams } => format!("h2load -c {clients} -m {streams}"),
            Load::Pingpong { streams } => format!(
                "pingpong --streams {streams} --round-trips {}",
                super::matrix::PINGPONG_ROUND_TRIPS
            ),
        }
    }
}

/// Sends exactly `requests` requests of `call` to `port` and checks that every one succeeded.
fn drive(
    ctx: &Context,
    name: &str,
    port: u16,
    call: Call,
    protocol: Protocol,
    load: Load,
    requests: u64,
) -> Result<()> {
    match load {
        Load::H2load { clients, streams } => {
            let body = ctx.bodies.path(call, protocol);
            let run = h2load::Run {
                h2load: &ctx.tools.h2load,
                port,
                call,
                protocol,
                body: &body,
                clients,
                streams,
                amount: h2load::Amount::Requests(requests),
                log_file: None,
            };
            let step = run_step(
                &ctx.logs,
                &format!("{name} h2load"),
                &mut run.command(ctx.load_cpu()),
                CALLGRIND_LOAD_TIMEOUT,
            )?;
            if !step.success() {
                bail!("h2load {}: {}", step.failure(), last_words(&step));
            }
            let summary = h2load::Summary::parse(&step.stdout)?;
            summary.check(0)?;
            summary.check_data(bodies::min_response_bytes(call, protocol))?;
            if summary.succeeded != requests {
                bail!(
                    "h2load completed {} of {requests} requests",
                    summary.succeeded
                );
            }
        }
        Load::Pingpong { streams } => {
            if call != Call::Bidi {
                bail!("pingpong drives bidi calls only, not {}", call.key());
            }
            let args = pingpong::counted_args(port, protocol, streams, requests);
            let binary = ctx.binaries.rust.join("pingpong");
            let mut command = pinned(ctx.load_cpu(), &binary, &args);
            let step = run_step(
                &ctx.logs,
                &format!("{name} pingpong"),
                &mut command,
                CALLGRIND_LOAD_TIMEOUT,
            )?;
            let report = pingpong::parse(&step.stdout)
                .with_context(|| format!("pingpong {}: {}", step.failure(), last_words(&step)))?;
            if !step.success() {
                bail!("pingpong {}: {}", step.failure(), last_words(&step));
            }
            if report.round_trips != requests {
                bail!(
                    "pingpong completed {} of {requests} round trips",
                    report.round_trips
                );
            }
        }
    }
    Ok(())
}

/// Instructions callgrind counts in one server run serving `requests` calls.
fn callgrind_total(
    ctx: &Context,
    valgrind: &Path,
    server: Server,
    (call, protocol, load): (Call, Protocol, Load),
    requests: u64,
) -> Result<u64> {
    let name = format!(
        "{} callgrind {} {} n{requests}",
        server.key(),
        call.key(),
        protocol.title()
    );
    let out_file = ctx.logs.join(format!("{}.callgrind.out", slug(&name)));
    let running = Running::start(
        &ctx.logs,
        &name,
        &Launch {
            binary: &ctx.binary(server),
            cpu: ctx.server_cpu(),
            callgrind: Some((valgrind, &out_file)),
            preload: Some(&ctx.binaries.frozen_clock()),
            start_timeout: VALGRIND_START_TIMEOUT,
        },
    )?;
    drive(ctx, &name, running.port, call, protocol, load, requests)?;
    // Dump the counts while the server still runs: callgrind can abort on the SIGTERM that
    // stops a Go server (its signal bookkeeping and Go's handlers disagree), and the dump
    // taken here is what counts either way. It lands in `<out file>.1`.
    let mut control = Command::new("callgrind_control");
    control.arg("-d").arg(running.pid().to_string());
    let step = run_step(
        &ctx.logs,
        &format!("{name} dump"),
        &mut control,
        VALGRIND_STOP_TIMEOUT,
    )?;
    if !step.success() {
        bail!(
            "callgrind_control -d {}: {}",
            step.failure(),
            last_words(&step)
        );
    }
    let dump = PathBuf::from(format!("{}.1", out_file.display()));
    let text = std::fs::read_to_string(&dump)
        .with_context(|| format!("callgrind wrote no {}", dump.display()))?;
    let total = total_instructions(&text)?;
    let logs = running.logs().to_vec();
    if let Err(why) = running.stop(VALGRIND_STOP_TIMEOUT) {
        if !server.is_go() {
            print_logs(&logs);
            bail!(why);
        }
        eprintln!("    (ignored: {why}; the counts were dumped before)");
    }
    let _ = std::fs::remove_file(&out_file);
    let _ = std::fs::remove_file(&dump);
    Ok(total)
}

/// Instructions per request of `server` serving `call` over `protocol` under `load`, from
/// runs of N1 and N2 requests.
pub(crate) fn instructions(
    ctx: &Context,
    valgrind: &Path,
    server: Server,
    cell: (Call, Protocol, Load),
    (n1, n2): (u64, u64),
) -> Result<f64> {
    let total1 = callgrind_total(ctx, valgrind, server, cell, n1)?;
    let total2 = callgrind_total(ctx, valgrind, server, cell, n2)?;
    per_request(n1, total1, n2, total2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_totals_line() {
        let out = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 42\n\
                   cmd: ./server --addr 127.0.0.1:1\npart: 1\n\npositions: line\nevents: Ir\n\
                   summary: 123456789\n\nfl=(1) a.rs\nfn=(1) main\n5 100\n\ntotals: 123456789\n";
        assert_eq!(total_instructions(out).unwrap(), 123_456_789);
        let old = "events: Ir\nsummary: 42\n";
        assert_eq!(total_instructions(old).unwrap(), 42);
        assert!(total_instructions("events: Ir\n").is_err());
        assert!(total_instructions("events: Dr Ir\ntotals: 1 2\n").is_err());
    }

    #[test]
    fn subtracts_fixed_costs() {
        let per = per_request(
            2000,
            50_000_000 + 2000 * 30_000,
            6000,
            50_000_000 + 6000 * 30_000,
        );
        assert_eq!(per.unwrap(), 30_000.0);
        assert!(per_request(6000, 1, 2000, 2).is_err());
        assert!(per_request(2000, 5, 6000, 4).is_err());
    }
}
