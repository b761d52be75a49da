//! `cargo xtask conformance`: the official Connect conformance suite against switchboard's
//! server and client.
//!
//! Takes the `connectconformance` runner pinned in `xtask/go-tools` (see
//! [`crate::go_tools`]), builds `conformance-server` and `conformance-client` in release mode,
//! runs each mode with its config file, and fails on any failing case. No test is skipped and
//! no known-failing list is passed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::go_tools::go_tool;
use crate::target_dir;
use crate::{run as run_command, workspace_root};

fn build_binaries() -> Result<PathBuf> {
    let target = target_dir();
    let manifest = workspace_root().join("conformance").join("Cargo.toml");
    let manifest_str = manifest.to_str().context("path is not UTF-8")?;
    let target_str = target.to_str().context("path is not UTF-8")?;
    // The crate is outside the main workspace, so lint it here.
    run_command(
        "cargo",
        &["fmt", "--manifest-path", manifest_str, "--all", "--check"],
    )?;
    run_command(
        "cargo",
        &[
            "clippy",
            "--manifest-path",
            manifest_str,
            "--target-dir",
            target_str,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run_command(
        "cargo",
        &[
            "build",
            "--release",
            "--manifest-path",
            manifest.to_str().context("path is not UTF-8")?,
            "--target-dir",
            target.to_str().context("path is not UTF-8")?,
            "--bins",
        ],
    )?;
    Ok(target.join("release"))
}

fn run_mode(runner: &Path, bins: &Path, mode: &str, extra: &[String]) -> Result<()> {
    let root = workspace_root();
    let config = root.join("conformance").join(format!("{mode}-config.yaml"));
    let program = bins.join(format!("conformance-{mode}"));
    eprintln!("==> conformance, {mode} mode");
    let status = Command::new(runner)
        .arg("--mode")
        .arg(mode)
        .arg("--conf")
        .arg(&config)
        .args(extra)
        .arg("--")
        .arg(&program)
        .current_dir(&root)
        .status()
        .with_context(|| format!("could not start {}", runner.display()))?;
    if !status.success() {
        bail!("conformance {mode} mode failed ({status})");
    }
    Ok(())
}

/// Entry point: `[server|client] [-- runner args]`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let (modes, extra): (Vec<&str>, Vec<String>) = {
        let split = args.iter().position(|a| a == "--");
        let (head, tail) = match split {
            Some(i) => (&args[..i], args[i + 1..].to_vec()),
            None => (args, Vec::new()),
        };
        let modes = if head.is_empty() {
            vec!["server", "client"]
        } else {
            head.iter().map(String::as_str).collect()
        };
        (modes, tail)
    };
    for mode in &modes {
        if !matches!(*mode, "server" | "client") {
            bail!("unknown conformance mode {mode:?}: use server or client");
        }
    }
    let runner = go_tool("connectconformance")?;
    let bins = build_binaries()?;
    let mut failed = Vec::new();
    for mode in modes {
        if let Err(error) = run_mode(&runner, &bins, mode, &extra) {
            eprintln!("{error:#}");
            failed.push(mode);
        }
    }
    if !failed.is_empty() {
        bail!("conformance failed in mode(s): {}", failed.join(", "));
    }
    Ok(())
}
