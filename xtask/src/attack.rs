//! `cargo xtask attack`: hostile clients against the demo server (attack/hostile.py, with
//! Python's h2 package for raw HTTP/2 frames), each scenario bounded in time and traffic and
//! asserting its bound: refused in time, resident memory growth under a stated limit, and a
//! normal call still answered afterwards. Loopback only.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::peers::{Server, build_eliza, virtualenv};
use crate::steps::{print_logs, run_step};
use crate::workspace_root;

/// The whole suite's time limit (its scenarios take about 15 s together).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// Entry point: `[-- --only scenario,scenario]`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-attack-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> attack: logs in {}", logs.display());
    let dir = attack_dir();
    let python = virtualenv(
        &logs,
        "attack-pyenv",
        &dir.join("requirements.txt"),
        "import h2, hyperframe, hpack",
        "h2 (attack)",
    )?;
    let eliza = build_eliza(&logs)?;
    let server = Server::start(&logs, "eliza-attack", &eliza, None)?;
    let mut command = Command::new(&python);
    command
        .arg(dir.join("hostile.py"))
        .args(["--addr", &server.addr])
        .args(["--pid", &server.pid().to_string()])
        .args(args.iter().skip_while(|a| *a == "--"));
    let step = run_step(&logs, "hostile clients", &mut command, SUITE_TIMEOUT)?;
    eprint!("{}", step.stdout);
    let passed = step.success();
    if !passed {
        print_logs(&step.logs);
        print_logs(server.logs());
    }
    drop(server);
    eprintln!("attack took {:.1}s", started.elapsed().as_secs_f64());
    if !passed {
        bail!("hostile clients: {}", step.failure());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn attack_dir() -> PathBuf {
    workspace_root().join("attack")
}
