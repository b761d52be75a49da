//! `cargo xtask soak`: many concurrent conversations held open plus steady unary traffic
//! against the demo, every reply checked and the server's resident memory sampled (the
//! driver is `examples/eliza/examples/soak.rs`).
//!
//! - `cargo xtask soak --quick` (in CI): 2,000 streams for 20 s on the debug build.
//! - `cargo xtask soak [--streams N] [--seconds S] [--unary-rate R] [--record]`: the full
//!   soak on release builds (10,000 streams, 300 s, 200 unary calls a second by default);
//!   `--record` writes the output to `benches/SOAK.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::peers::{Server, build_eliza};
use crate::steps::{print_logs, run_step};
use crate::{target_dir, workspace_root};

struct Plan {
    quick: bool,
    streams: u64,
    seconds: u64,
    unary_rate: u64,
    record: bool,
}

/// Entry point.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let plan = parse(args)?;
    let work = std::env::temp_dir().join(format!("switchboard-soak-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> soak: logs in {}", logs.display());
    let (eliza, driver) = if plan.quick {
        let eliza = build_eliza(&logs)?;
        let driver = target_dir().join("debug").join("examples").join("soak");
        (eliza, driver)
    } else {
        build_release(&logs)?
    };
    let server = Server::start(&logs, "eliza-soak", &eliza, None)?;
    let (round, sample) = if plan.quick { (5, 2) } else { (30, 10) };
    let mut command = Command::new(&driver);
    command
        .args(["--url", &format!("http://{}", server.addr)])
        .args(["--pid", &server.pid().to_string()])
        .args(["--streams", &plan.streams.to_string()])
        .args(["--seconds", &plan.seconds.to_string()])
        .args(["--unary-rate", &plan.unary_rate.to_string()])
        .args(["--round-seconds", &round.to_string()])
        .args(["--sample-seconds", &sample.to_string()]);
    let limit = Duration::from_secs(plan.seconds + 300);
    let step = run_step(&logs, "soak driver", &mut command, limit)?;
    eprint!("{}", step.stdout);
    let passed = step.success();
    if !passed {
        print_logs(&step.logs);
        print_logs(server.logs());
    }
    drop(server);
    if plan.record && passed {
        record(&plan, &step.stdout)?;
    }
    eprintln!("soak took {:.1}s", started.elapsed().as_secs_f64());
    if !passed {
        bail!("soak: {}", step.failure());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn parse(args: &[String]) -> Result<Plan> {
    let mut plan = Plan {
        quick: false,
        streams: 10_000,
        seconds: 300,
        unary_rate: 200,
        record: false,
    };
    let mut args = args.iter().filter(|a| *a != "--");
    while let Some(arg) = args.next() {
        let mut number = || -> Result<u64> {
            args.next()
                .with_context(|| format!("{arg} needs a number"))?
                .parse()
                .with_context(|| format!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--quick" => {
                plan.quick = true;
                plan.streams = 2_000;
                plan.seconds = 20;
                plan.unary_rate = 100;
            }
            "--streams" => plan.streams = number()?,
            "--seconds" => plan.seconds = number()?,
            "--unary-rate" => plan.unary_rate = number()?,
            "--record" => plan.record = true,
            other => bail!("unknown soak argument {other:?}"),
        }
    }
    if plan.record && plan.quick {
        bail!("--record is for the full soak, on release builds");
    }
    Ok(plan)
}

/// The demo and the driver in release mode (a separate target directory from the debug
/// builds the suites share).
fn build_release(logs: &Path) -> Result<(PathBuf, PathBuf)> {
    let target = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_step(
        logs,
        "cargo build --release -p eliza",
        Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "eliza",
                "--bin",
                "eliza",
                "--example",
                "soak",
            ])
            .arg("--target-dir")
            .arg(&target)
            .current_dir(workspace_root()),
        Duration::from_secs(1800),
    )?
    .check()?;
    let release = target.join("release");
    Ok((release.join("eliza"), release.join("examples").join("soak")))
}

/// Writes the full soak's output to `benches/SOAK.md`.
fn record(plan: &Plan, output: &str) -> Result<()> {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let text = format!(
        "# Soak\n\n\
         Recorded by `cargo xtask soak --streams {} --seconds {} --unary-rate {} --record` on {date} \
         ({cores} cores): the Eliza demo and the driver (`examples/eliza/examples/soak.rs`) built in \
         release mode, on one machine over loopback.\n\n\
         Each stream is a `Converse` conversation that says a sentence when it opens, one more \
         every 30 s, and a last one before it closes; every reply is compared with Eliza's \
         answer to that sentence. Unary `Say` calls go out steadily on a connection of their \
         own, each reply checked the same way. The server's resident memory (VmRSS) is sampled \
         every 10 s; the soak fails on any lost or mis-answered call, or if RSS grows more than \
         10% after warm-up (the first fifth of the run).\n\n\
         ```text\n{}```\n",
        plan.streams, plan.seconds, plan.unary_rate, output
    );
    let path = workspace_root().join("benches").join("SOAK.md");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("    recorded in {}", path.display());
    Ok(())
}
