//! `cargo xtask examples`: runs every self-checking example, each of which serves on a free
//! port, calls itself over real sockets, asserts what it got and exits non-zero otherwise:
//! `chat` (a bidi chat room), `errors` (errors with details in every protocol), `tls` (mutual
//! TLS), the axum app (RPC, REST and CORS on one port), and the tonic migration (a tonic
//! service and its switchboard version side by side, calling each other), and `buffa-ingest`
//! (a service on the buffa message backend, in every protocol and codec). The `auth` example is exercised by
//! the peers suite (grpcurl and curl), the browser app by `cargo xtask browser`.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::steps::{print_logs, run_step};
use crate::workspace_root;

/// (package, example or `None` for the package's binary).
const EXAMPLES: [(&str, Option<&str>); 6] = [
    ("eliza", Some("chat")),
    ("eliza", Some("errors")),
    ("eliza", Some("tls")),
    ("axum-example", None),
    ("tonic-migration", None),
    ("buffa-ingest", None),
];

/// Entry point.
pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-examples-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> examples: logs in {}", logs.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut failed = Vec::new();
    for (package, example) in EXAMPLES {
        let name = example.unwrap_or(package);
        let mut command = Command::new(&cargo);
        command.args(["run", "-q", "-p", package]);
        if let Some(example) = example {
            command.args(["--example", example]);
        }
        command.current_dir(workspace_root());
        let step = run_step(
            &logs,
            &format!("example {name}"),
            &mut command,
            Duration::from_secs(900),
        )?;
        let last = step.stdout.lines().last().unwrap_or("").to_owned();
        if step.success() {
            eprintln!("    {name:<16} ok    {last}");
        } else {
            eprintln!("    {name:<16} FAILED");
            print_logs(&step.logs);
            failed.push(name);
        }
    }
    eprintln!("examples took {:.1}s", started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!("examples failed: {failed:?}");
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
