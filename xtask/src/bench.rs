//! `cargo xtask bench [--quick] [--only SERVER,...]`: switchboard side by side with its peers
//! (connectrpc, connect-go, tonic, grpc-go, and a bare hyper echo as the ceiling), written to
//! `benches/RESULTS.md`.
//!
//! `cargo xtask bench --http3 [--quick]` compares HTTP/3 with connect-go over quic-go instead
//! (see [`mod@http3`]), written to `benches/RESULTS-http3.md`.
//!
//! `cargo xtask bench --memory [--quick]` measures memory per idle HTTP/2 connection and per
//! open stream beside tonic and connectrpc instead (see [`mod@memory`]), written to
//! `benches/RESULTS-memory.md`.
//!
//! `cargo xtask bench --scaling [--quick]` measures requests/s with one tokio worker thread
//! and with two for every Rust server instead (see [`mod@scaling`]), written to
//! `benches/RESULTS-scaling.md`.
//!
//! `cargo xtask bench --guard [--repeat N] [--cell KEY,...] [--update-baseline [--note WHY]]`
//! is the performance regression guard instead: switchboard's instructions per request under
//! callgrind against `benches/perf-baseline.toml` (see [`mod@guard`]).
//!
//! 1. Installs h2load and valgrind (Debian packages) and ghz (`go install`, pinned) when
//!    missing, into the tools cache (`$SWITCHBOARD_TOOLS`, else `~/.cache/switchboard/tools`).
//! 2. Builds the benches workspace in release mode (into `<target>/benches`, where `<target>`
//!    is `$CARGO_TARGET_DIR` or the workspace's `target/`) and the Go servers with
//!    `benches/go/build.sh` (into `<target>/benches/go`).
//! 3. Writes every request body (see [`bodies`]).
//! 4. Verifies every server × call × protocol with one request (see [`verify`]); whatever
//!    fails gets no figure and is listed. For connectrpc and tonic a failing protocol is
//!    reported as not supported; for everything else it fails the run.
//! 5. Measures each cell (server × workload × protocol) with a fresh server pinned to CPU 1
//!    and the load generator pinned to CPU 0: a warm-up, then 3 runs of 5 s (`--quick`: one
//!    run of 1 s, on a reduced set), the servers of one workload and protocol taking their runs
//!    in turns; recording the rate, p50/p99 latency, the server's CPU time and write system
//!    calls per request and its peak RSS.
//! 6. Counts instructions per request under callgrind (not with `--quick`: `cargo xtask test`
//!    runs `--guard` after it), and allocations per call with `alloc-count`.
//! 7. Writes the report: `benches/RESULTS.md` for a full run of every server, else
//!    `<target>/benches/RESULTS.quick.md` (`--quick`) or `RESULTS.partial.md` (`--only`), so a
//!    quick or partial run never touches the committed file. Everything after
//!    `<!-- notes: kept across runs -->` in the previous file is kept.
//!
//! Exits non-zero if a verification fails (other than a probed peer's unsupported protocol),
//! a server crashes or does not exit cleanly on SIGTERM, or a tool fails. Figures are never
//! asserted, except by `--guard`, and only instruction counts.

pub(crate) mod binaries;
mod bodies;
mod callgrind;
mod cells;
mod ghz;
mod guard;
mod h2load;
mod http3;
mod matrix;
mod memory;
mod pingpong;
mod report;
mod results;
mod scaling;
mod server;
mod support;
mod tools;
mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::steps::{Step, first_line, run_step};
use crate::workspace_root;
use binaries::Binaries;
use bodies::Bodies;
use matrix::{Call, Protocol, Server, WORKLOADS};
use results::{Cell, Instructions, Outcome, Results};
use server::{Launch, Running};
use tools::Tools;

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const ALLOC_TIMEOUT: Duration = Duration::from_secs(900);

/// `taskset -c CPU program args...`, or the program alone when `cpu` is `None`. taskset execs
/// the program, so the child's pid is the program's.
pub(crate) fn pinned(cpu: Option<u32>, program: &Path, args: &[String]) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command
                .arg("-c")
                .arg(cpu.to_string())
                .arg(program)
                .args(args);
            command
        }
        None => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    }
}

/// Command-line options.
struct Options {
    quick: bool,
    only: Vec<Server>,
    /// `--guard` (or any of its options): the regression guard instead of the comparison.
    guard: Option<guard::GuardOptions>,
    /// `--http3`: the HTTP/3 comparison instead (see [`mod@http3`]).
    http3: bool,
    /// `--memory`: memory per idle connection and per open stream instead (see
    /// [`mod@memory`]).
    memory: bool,
    /// `--scaling`: requests/s with one worker thread and with two instead (see
    /// [`mod@scaling`]).
    scaling: bool,
    /// `--instructions`: only the callgrind comparison (no throughput runs, no alloc-count),
    /// written to the partial report: side-by-side instruction counts in a fraction of the
    /// time of a full run.
    instructions_only: bool,
}

const USAGE: &str = "use [--quick] [--only SERVER,...] [--instructions], or --http3 [--quick], or --memory [--quick], or --scaling [--quick], or --guard [--repeat N] [--cell KEY,...] \
                     [--update-baseline [--note WHY]]";

/// The guard's options, `--guard` implied by any of them.
fn guard(options: &mut Options) -> &mut guard::GuardOptions {
    options.guard.get_or_insert_with(Default::default)
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        quick: false,
        only: Server::ALL.to_vec(),
        guard: None,
        http3: false,
        memory: false,
        scaling: false,
        instructions_only: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String> {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .with_context(|| format!("{name} needs a value: {USAGE}"))
        };
        let only = match name {
            "--quick" => {
                options.quick = true;
                continue;
            }
            "--guard" => {
                guard(&mut options);
                continue;
            }
            "--http3" => {
                options.http3 = true;
                continue;
            }
            "--memory" => {
                options.memory = true;
                continue;
            }
            "--scaling" => {
                options.scaling = true;
                continue;
            }
            "--instructions" => {
                options.instructions_only = true;
                continue;
            }
            "--update-baseline" => {
                guard(&mut options).update = true;
                continue;
            }
            "--note" => {
                guard(&mut options).note = Some(value()?);
                continue;
            }
            "--repeat" => {
                let repeat = value()?;
                guard(&mut options).repeat =
                    repeat.parse().ok().filter(|n| *n > 0).with_context(|| {
                        format!("--repeat needs a positive number, not {repeat:?}")
                    })?;
                continue;
            }
            "--cell" => {
                let list = value()?;
                let cells = list.split(',').filter(|c| !c.is_empty());
                for cell in cells {
                    if !guard::CELLS.iter().any(|c| c.key == cell) {
                        let keys: Vec<&str> = guard::CELLS.iter().map(|c| c.key).collect();
                        bail!("unknown cell {cell:?}: use {}", keys.join(", "));
                    }
                    guard(&mut options).cells.push(cell.to_owned());
                }
                continue;
            }
            "--only" => value()?,
            other => bail!("unknown argument {other:?}: {USAGE}"),
        };
        options.only = only
            .split(',')
            .filter(|name| !name.is_empty())
            .map(|name| {
                Server::parse(name).with_context(|| {
                    let names: Vec<&str> = Server::ALL.iter().map(|s| s.key()).collect();
                    format!("unknown server {name:?}: use {}", names.join(", "))
                })
            })
            .collect::<Result<_>>()?;
    }
    // The side comparisons run alone, with --quick at most.
    let sides = [
        ("--http3", options.http3),
        ("--memory", options.memory),
        ("--scaling", options.scaling),
    ];
    let chosen = sides.iter().filter(|(_, on)| *on).count();
    for (flag, on) in sides {
        if on && (chosen > 1 || options.guard.is_some() || options.only.len() != Server::ALL.len())
        {
            bail!("{flag} takes only --quick");
        }
    }
    if options.instructions_only
        && (options.quick
            || options.memory
            || options.scaling
            || options.http3
            || options.guard.is_some())
    {
        bail!("--instructions takes only --only");
    }
    if options.guard.is_some() && (options.quick || options.only.len() != Server::ALL.len()) {
        bail!("--guard measures switchboard alone: it takes neither --quick nor --only");
    }
    if let Some(guard) = &options.guard
        && guard.note.is_some()
        && !guard.update
    {
        bail!("--note goes with --update-baseline");
    }
    Ok(options)
}

/// How long and how often each cell is measured.
struct Mode {
    quick: bool,
    runs: usize,
    seconds: f64,
    warmup: f64,
}

impl Mode {
    fn new(quick: bool) -> Mode {
        if quick {
            Mode {
                quick,
                runs: 1,
                seconds: 1.0,
                warmup: 1.0,
            }
        } else {
            Mode {
                quick,
                runs: 3,
                seconds: 5.0,
                warmup: 2.0,
            }
        }
    }

    /// The callgrind runs: (call, protocol, N1, N2), N in whole calls (streams for the
    /// streaming calls, round trips for bidi). `--quick` has none: `cargo xtask test`
    /// runs `--guard` after it, which counts switchboard's instructions and asserts them.
    fn callgrind_plan(&self, _server: Server) -> Vec<(Call, Protocol, u64, u64)> {
        if self.quick {
            return Vec::new();
        }
        vec![
            (Call::Echo64, Protocol::Grpc, 2000, 6000),
            (Call::Echo64, Protocol::Connect, 2000, 6000),
            (Call::Ingest, Protocol::Grpc, 1000, 3000),
            (Call::ServerStream, Protocol::Grpc, 100, 300),
            (Call::ClientStream, Protocol::Grpc, 100, 300),
            (Call::Bidi, Protocol::Grpc, 2000, 6000),
        ]
    }
}

/// Everything the measuring code needs.
struct Context {
    logs: PathBuf,
    tools: Tools,
    bodies: Bodies,
    binaries: Binaries,
    mode: Mode,
    /// (server CPU, load generator CPU).
    pinning: Option<(u32, u32)>,
    clock_ticks: u64,
    runtime: tokio::runtime::Runtime,
}

impl Context {
    fn server_cpu(&self) -> Option<u32> {
        self.pinning.map(|(server, _)| server)
    }

    fn load_cpu(&self) -> Option<u32> {
        self.pinning.map(|(_, load)| load)
    }

    fn binary(&self, server: Server) -> PathBuf {
        server.binary(&self.binaries.rust, &self.binaries.go)
    }

    fn start(&self, server: Server, name: &str) -> Result<Running> {
        Running::start(
            &self.logs,
            name,
            &Launch {
                binary: &self.binary(server),
                cpu: self.server_cpu(),
                callgrind: None,
                preload: None,
                start_timeout: SERVER_START_TIMEOUT,
            },
        )
    }
}

/// The last non-empty line of a step's logs, for one-line reasons.
fn last_words(step: &Step) -> String {
    step.logs
        .iter()
        .rev()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| {
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().chars().take(200).collect::<String>())
        })
        .next()
        .unwrap_or_default()
}

/// `alloc-count --json`.
fn allocations(ctx: &Context) -> Result<Vec<results::Allocations>> {
    let binary = ctx.binaries.rust.join("alloc-count");
    let mut command = pinned(ctx.server_cpu(), &binary, &["--json".to_owned()]);
    let step = run_step(&ctx.logs, "alloc-count --json", &mut command, ALLOC_TIMEOUT)?;
    if !step.success() {
        bail!("alloc-count {}: {}", step.failure(), last_words(&step));
    }
    results::parse_allocations(&step.stdout)
}

fn machine(ctx: &Context) -> report::Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mut versions = vec![
        ("rustc", first_line("rustc", &["--version"])),
        ("go", first_line("go", &["version"])),
        ("h2load", first_line(&ctx.tools.h2load, &["--version"])),
        // A `go install`ed ghz reports its version as "dev": the pin is what counts.
        (
            "ghz",
            format!(
                "{} (xtask/go-tools)",
                crate::go_tools::pinned_version(tools::GHZ_MODULE)
                    .unwrap_or_else(|| "unpinned".to_owned())
            ),
        ),
    ];
    if let Some(valgrind) = &ctx.tools.valgrind {
        versions.push(("valgrind", first_line(valgrind, &["--version"])));
    }
    report::Machine {
        date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        cpu_model,
        cores,
        kernel: first_line("uname", &["-r"]),
        versions,
    }
}

/// What verification found, per server, call and protocol.
type Verdicts = HashMap<(Server, Call, Protocol), support::Verdict>;

/// Measures every cell of `servers` that verified; the others get their verdict. Each
/// workload and protocol is measured on all its servers side by side (runs taken in turns, see
/// [`cells::measure_side_by_side`]); the cells are reported server by server as before.
fn measure_all(ctx: &Context, servers: &[Server], verdicts: &Verdicts, results: &mut Results) {
    let mut measured: Vec<Cell> = Vec::new();
    for workload in WORKLOADS.iter().filter(|w| w.quick || !ctx.mode.quick) {
        for protocol in workload.protocols() {
            let entrants: Vec<Server> = servers
                .iter()
                .copied()
                .filter(|s| s.serves(workload.call) && s.protocols().contains(&protocol))
                .collect();
            let mut verified = Vec::new();
            for &server in &entrants {
                let verdict = verdicts
                    .get(&(server, workload.call, protocol))
                    .cloned()
                    .unwrap_or(support::Verdict::Failed("not verified".to_owned()));
                let outcome = match verdict {
                    support::Verdict::Failed(why) => {
                        Outcome::Failed(format!("failed verification: {why}"))
                    }
                    support::Verdict::NotSupported(why) => Outcome::NotSupported(why),
                    support::Verdict::Verified => {
                        verified.push(server);
                        continue;
                    }
                };
                measured.push(Cell {
                    server,
                    workload: *workload,
                    protocol,
                    outcome,
                });
            }
            if verified.is_empty() {
                continue;
            }
            let names: Vec<&str> = verified.iter().map(|s| s.key()).collect();
            eprintln!(
                "==> bench: {} {} on {}",
                workload.key,
                protocol.title(),
                names.join(", ")
            );
            let figures = cells::measure_side_by_side(ctx, &verified, workload, protocol);
            for (server, figure) in verified.into_iter().zip(figures) {
                let outcome = match figure {
                    Ok(figure) => Outcome::Measured(figure),
                    Err(error) => {
                        let why = format!("{error:#}");
                        results.problem(
                            format!(
                                "{} {} over {}",
                                server.key(),
                                workload.title(),
                                protocol.title()
                            ),
                            format!("figure discarded: {why}"),
                            true,
                        );
                        Outcome::Failed(why)
                    }
                };
                measured.push(Cell {
                    server,
                    workload: *workload,
                    protocol,
                    outcome,
                });
            }
        }
    }
    // Server by server, in the order given, as the report lists them.
    let rank = |server: Server| servers.iter().position(|&s| s == server);
    measured.sort_by_key(|cell| rank(cell.server));
    results.cells.extend(measured);
}

/// Instructions per request under callgrind, for what the mode plans and verification passed.
fn count_instructions(
    ctx: &Context,
    servers: &[Server],
    verdicts: &Verdicts,
    results: &mut Results,
) {
    if let Some(valgrind) = ctx.tools.valgrind.clone() {
        for &server in servers {
            for (call, protocol, n1, n2) in ctx.mode.callgrind_plan(server) {
                if !server.serves(call) || !server.protocols().contains(&protocol) {
                    continue;
                }
                if !matches!(
                    verdicts.get(&(server, call, protocol)),
                    Some(support::Verdict::Verified)
                ) {
                    continue;
                }
                eprintln!(
                    "==> bench: {} callgrind {} {}",
                    server.key(),
                    call.key(),
                    protocol.title()
                );
                // Bidi round trips come from the ping-pong driver (h2load cannot wait for an
                // answer before sending the next message); N counts round trips.
                let load = if call == Call::Bidi {
                    callgrind::Load::Pingpong { streams: 16 }
                } else {
                    callgrind::Load::H2load {
                        clients: 4,
                        streams: 4,
                    }
                };
                let outcome = callgrind::instructions(
                    ctx,
                    &valgrind,
                    server,
                    (call, protocol, load),
                    (n1, n2),
                )
                .map_err(|error| format!("{error:#}"));
                if let Err(why) = &outcome {
                    // valgrind is not every runtime's friend: only our own servers must run
                    // under it.
                    results.problem(
                        format!(
                            "{} under callgrind ({} {})",
                            server.key(),
                            call.title(),
                            protocol.title()
                        ),
                        why.clone(),
                        !server.is_go(),
                    );
                }
                results.instructions.push(Instructions {
                    server,
                    call,
                    protocol,
                    requests: (n1, n2),
                    outcome,
                });
            }
        }
    }
}

/// What a run needs besides the benches' Rust binaries.
struct Wanted {
    /// valgrind, for callgrind.
    callgrind: bool,
    /// ghz and the Go servers: only the comparison with the peers needs them.
    peers: bool,
}

/// A measuring context and where its files are.
struct Prepared {
    ctx: Context,
    /// The run's scratch directory (logs and bodies), removed after a clean run.
    work: PathBuf,
    install_time: Duration,
}

/// Installs the tools, builds the binaries, writes the bodies and picks the CPUs.
fn prepare(mode: Mode, wanted: Wanted) -> Result<Prepared> {
    let work = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    std::fs::create_dir_all(crate::tools_dir())?;
    eprintln!("==> bench: logs in {}", logs.display());

    let phase = Instant::now();
    let tools = tools::ensure(&logs, wanted.callgrind, wanted.peers)?;
    let install_time = phase.elapsed();
    let binaries = binaries::build(&logs, wanted.peers)?;
    let bodies = Bodies::write(&work.join("bodies"))?;
    // The server gets the second CPU this process may use, the load generator the first.
    let cpus =
        server::allowed_cpus(&std::fs::read_to_string("/proc/self/status").unwrap_or_default());
    let ctx = Context {
        logs,
        tools,
        bodies,
        binaries,
        mode,
        pinning: (cpus.len() >= 2).then(|| (cpus[1], cpus[0])),
        clock_ticks: server::clock_ticks_per_second(),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    if ctx.pinning.is_none() {
        eprintln!("==> bench: only one CPU: servers and load generators are not pinned");
    }
    Ok(Prepared {
        ctx,
        work,
        install_time,
    })
}

/// `--guard`: builds what switchboard's cells need (no Go, no ghz) and runs the guard.
fn run_guard(options: &guard::GuardOptions) -> Result<()> {
    let started = Instant::now();
    let Prepared { ctx, work, .. } = prepare(
        Mode::new(true),
        Wanted {
            callgrind: true,
            peers: false,
        },
    )?;
    let after_builds = Instant::now();
    let valgrind = ctx
        .tools
        .valgrind
        .clone()
        .context("valgrind is not installed")?;
    // One request of each cell first, so a broken server fails here with a clear reason
    // instead of as an odd instruction count.
    let mut results = Results::default();
    let mut verdicts = HashMap::new();
    let mut servers: Vec<Server> = Vec::new();
    for cell in &guard::CELLS {
        if !servers.contains(&cell.server) {
            servers.push(cell.server);
        }
    }
    for server in servers {
        for (cell, verdict) in support::verify_server(&ctx, server, &mut results) {
            verdicts.insert((server, cell), verdict);
        }
    }
    for cell in &guard::CELLS {
        match verdicts.get(&(cell.server, (cell.call, cell.protocol))) {
            Some(support::Verdict::Verified) => {}
            Some(support::Verdict::Failed(why) | support::Verdict::NotSupported(why)) => {
                bail!("guard cell {} failed verification: {why}", cell.key)
            }
            None => bail!("guard cell {} was not verified", cell.key),
        }
    }
    let outcome = guard::run(&ctx, &valgrind, options);
    println!(
        "perf guard took {:.1}s ({:.1}s after the builds)",
        started.elapsed().as_secs_f64(),
        after_builds.elapsed().as_secs_f64()
    );
    match outcome {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&work);
            Ok(())
        }
        Err(error) => bail!("{error:#} (logs kept in {})", ctx.logs.display()),
    }
}

/// Writes the report of a side comparison (`--http3`, `--memory`, `--scaling`):
/// `benches/RESULTS-<name>.md` for a full run, `<target>/benches/RESULTS-<name>.quick.md` for
/// `--quick`; prints it and where it went.
fn write_side_report(name: &str, text: &str, quick: bool) -> Result<()> {
    let path = if quick {
        binaries::bench_target().join(format!("RESULTS-{name}.quick.md"))
    } else {
        workspace_root()
            .join("benches")
            .join(format!("RESULTS-{name}.md"))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("{text}");
    println!("bench --{name}: report written to {}", path.display());
    Ok(())
}

/// Entry point.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    if let Some(guard) = &options.guard {
        return run_guard(guard);
    }
    if options.http3 {
        return http3::run(options.quick);
    }
    if options.memory {
        return memory::run(options.quick);
    }
    if options.scaling {
        return scaling::run(options.quick);
    }
    let started = Instant::now();
    let mode = Mode::new(options.quick);
    let callgrind_wanted = options
        .only
        .iter()
        .any(|server| !mode.callgrind_plan(*server).is_empty());
    let Prepared {
        ctx,
        work,
        install_time,
    } = prepare(
        mode,
        Wanted {
            callgrind: callgrind_wanted,
            peers: true,
        },
    )?;
    let logs = ctx.logs.clone();
    let mut results = Results::default();
    let after_builds = Instant::now();

    // Verification of everything first: what fails gets no figure.
    let phase = Instant::now();
    let mut verdicts = Verdicts::new();
    for &server in &options.only {
        for (pair, verdict) in support::verify_server(&ctx, server, &mut results) {
            verdicts.insert((server, pair.0, pair.1), verdict);
        }
    }
    let verify_time = phase.elapsed();

    // Measurement, one server at a time.
    let phase = Instant::now();
    if !options.instructions_only {
        measure_all(&ctx, &options.only, &verdicts, &mut results);
    }
    let measure_time = phase.elapsed();

    // Instructions per request.
    let phase = Instant::now();
    count_instructions(&ctx, &options.only, &verdicts, &mut results);
    let callgrind_time = phase.elapsed();

    // Allocations.
    let phase = Instant::now();
    if !options.instructions_only {
        eprintln!("==> bench: alloc-count");
        let allocations = allocations(&ctx).map_err(|error| format!("{error:#}"));
        if let Err(why) = &allocations {
            results.problem("alloc-count", why.clone(), true);
        }
        results.allocations = Some(allocations);
    }
    let alloc_time = phase.elapsed();

    // The report.
    let complete = options.only.len() == Server::ALL.len() && !options.instructions_only;
    let path = if !ctx.mode.quick && complete {
        workspace_root().join("benches").join("RESULTS.md")
    } else if ctx.mode.quick {
        binaries::bench_target().join("RESULTS.quick.md")
    } else {
        binaries::bench_target().join("RESULTS.partial.md")
    };
    let old = std::fs::read_to_string(&path).ok();
    let method = report::Method {
        quick: ctx.mode.quick,
        runs: ctx.mode.runs,
        seconds: ctx.mode.seconds,
        warmup: ctx.mode.warmup,
        pinning: ctx.pinning,
        clock_ticks: ctx.clock_ticks,
        command: format!("cargo xtask bench {}", args.join(" "))
            .trim_end()
            .to_owned(),
    };
    let text = report::render(
        &machine(&ctx),
        &method,
        &results,
        &report::kept_notes(old.as_deref()),
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    report::print_summary(&results);
    println!("bench: report written to {}", path.display());
    println!(
        "bench took {:.1}s: install {:.1}s, build {:.1}s (Rust {:.1}s, Go {:.1}s); after the \
         builds {:.1}s: verify {:.1}s, measure {:.1}s, callgrind {:.1}s, alloc-count {:.1}s",
        started.elapsed().as_secs_f64(),
        install_time.as_secs_f64(),
        (ctx.binaries.rust_time + ctx.binaries.go_time).as_secs_f64(),
        ctx.binaries.rust_time.as_secs_f64(),
        ctx.binaries.go_time.as_secs_f64(),
        after_builds.elapsed().as_secs_f64(),
        verify_time.as_secs_f64(),
        measure_time.as_secs_f64(),
        callgrind_time.as_secs_f64(),
        alloc_time.as_secs_f64(),
    );
    let fatal = results.fatal_count();
    if fatal > 0 {
        for problem in results.problems.iter().filter(|p| p.fatal) {
            println!("FAIL {}: {}", problem.what, problem.why);
        }
        bail!("bench: {fatal} problem(s); logs kept in {}", logs.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_options() {
        let all = parse_options(&[]).unwrap();
        assert!(!all.quick);
        assert_eq!(all.only.len(), Server::ALL.len());
        let some = parse_options(&strings(&["--quick", "--only", "switchboard,grpc-go"])).unwrap();
        assert!(some.quick);
        assert_eq!(some.only, [Server::Switchboard, Server::GrpcGo]);
        let eq = parse_options(&strings(&["--only=tonic"])).unwrap();
        assert_eq!(eq.only, [Server::Tonic]);
        assert!(parse_options(&strings(&["--only", "nginx"])).is_err());
        assert!(parse_options(&strings(&["--fast"])).is_err());
    }

    #[test]
    fn quick_leaves_callgrind_to_the_guard() {
        let quick = Mode::new(true);
        assert!(quick.callgrind_plan(Server::Switchboard).is_empty());
        assert_eq!(Mode::new(false).callgrind_plan(Server::GrpcGo).len(), 6);
    }

    #[test]
    fn side_comparisons_run_alone() {
        for flag in ["--http3", "--memory", "--scaling"] {
            assert!(
                parse_options(&strings(&[flag, "--quick"])).is_ok(),
                "{flag}"
            );
            assert!(
                parse_options(&strings(&[flag, "--guard"])).is_err(),
                "{flag}"
            );
            assert!(
                parse_options(&strings(&[flag, "--only", "tonic"])).is_err(),
                "{flag}"
            );
        }
        assert!(parse_options(&strings(&["--http3", "--memory"])).is_err());
        assert!(parse_options(&strings(&["--memory", "--scaling"])).is_err());
    }

    #[test]
    fn instructions_only_goes_with_only() {
        let options =
            parse_options(&strings(&["--instructions", "--only", "switchboard,tonic"])).unwrap();
        assert!(options.instructions_only);
        assert_eq!(options.only, [Server::Switchboard, Server::Tonic]);
        assert!(parse_options(&strings(&["--instructions", "--quick"])).is_err());
        assert!(parse_options(&strings(&["--instructions", "--guard"])).is_err());
    }

    #[test]
    fn parses_guard_options() {
        let plain = parse_options(&strings(&["--guard"])).unwrap();
        assert_eq!(plain.guard, Some(guard::GuardOptions::default()));
        let update = parse_options(&strings(&[
            "--update-baseline",
            "--note",
            "faster headers",
            "--repeat=3",
            "--cell",
            "unary-grpc,bidi-grpc",
        ]))
        .unwrap()
        .guard
        .unwrap();
        assert!(update.update);
        assert_eq!(update.note.as_deref(), Some("faster headers"));
        assert_eq!(update.repeat, 3);
        assert_eq!(update.cells, ["unary-grpc", "bidi-grpc"]);
        assert!(parse_options(&strings(&["--guard", "--quick"])).is_err());
        assert!(parse_options(&strings(&["--guard", "--only", "tonic"])).is_err());
        assert!(parse_options(&strings(&["--guard", "--note", "why"])).is_err());
        assert!(parse_options(&strings(&["--repeat", "0"])).is_err());
        assert!(parse_options(&strings(&["--cell", "unary-http3"])).is_err());
        assert!(parse_options(&strings(&["--note"])).is_err());
    }
}
