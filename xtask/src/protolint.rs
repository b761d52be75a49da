//! `cargo xtask protolint`: `buf lint` over the repository's own schemas (the modules of
//! `buf.yaml`; the rules are explained in `docs/guide/style.md`), and `buf breaking` for the
//! demo's public schema against the previous commit. buf comes from npm, with the peers'
//! other packages (`interop/peers/package.json`), into the tools cache.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::peers::install_node;
use crate::steps::{print_logs, run_step};
use crate::{tools_dir, workspace_root};

/// The public schema whose wire compatibility is checked commit to commit.
const PUBLIC_SCHEMA: &str = "examples/eliza/proto";

/// Entry point.
pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-protolint-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> protolint: logs in {}", logs.display());
    let buf = install_node(&logs)?
        .join("node_modules")
        .join(".bin")
        .join("buf");
    let buf_command = || {
        let mut command = Command::new(&buf);
        command
            .env("BUF_CACHE_DIR", tools_dir().join("buf-cache"))
            .current_dir(workspace_root());
        command
    };
    let lint = run_step(
        &logs,
        "buf lint",
        buf_command().arg("lint"),
        Duration::from_secs(300),
    )?;
    if !lint.success() {
        print_logs(&lint.logs);
        bail!("buf lint: {}", lint.failure());
    }
    eprintln!("    buf lint: every module of buf.yaml passes");

    // Compatibility with the previous commit, when the clone has it.
    let has_parent = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet", "HEAD~1"])
        .current_dir(workspace_root())
        .output()
        .is_ok_and(|o| o.status.success());
    if has_parent {
        let against = format!(".git#ref=HEAD~1,subdir={PUBLIC_SCHEMA}");
        let breaking = run_step(
            &logs,
            "buf breaking",
            buf_command().args(["breaking", PUBLIC_SCHEMA, "--against", &against]),
            Duration::from_secs(300),
        )?;
        if !breaking.success() {
            print_logs(&breaking.logs);
            bail!(
                "buf breaking ({PUBLIC_SCHEMA} against HEAD~1): {}",
                breaking.failure()
            );
        }
        eprintln!("    buf breaking: {PUBLIC_SCHEMA} is wire-compatible with the previous commit");
    } else {
        eprintln!("    buf breaking: not run, this clone has no previous commit (shallow)");
    }
    eprintln!("protolint took {:.1}s", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
