//! `cargo xtask fuzz`: the cargo-fuzz targets in `fuzz/` (nightly, libFuzzer with
//! AddressSanitizer), each run over its committed seed corpus.
//!
//! - `cargo xtask fuzz` (in CI): a smoke run, [`SMOKE_SECONDS`] per target.
//! - `cargo xtask fuzz --seconds N [TARGET...]`: a longer run; prints the executions.
//!
//! New inputs the fuzzer finds go to a scratch directory, never into the repository; a crash
//! fails the run and leaves its input in `fuzz/artifacts/TARGET/` (git-ignored), to be turned
//! into a regression test.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::steps::{print_logs, run_step};
use crate::{target_dir, tools_dir, workspace_root};

/// The targets, as named in `fuzz/Cargo.toml`.
const TARGETS: [&str; 5] = [
    "server_request",
    "connection",
    "client_response",
    "codecs",
    "decompress",
];
/// How long each target runs in CI.
const SMOKE_SECONDS: u64 = 10;
/// The cargo-fuzz release installed into the tools cache.
const CARGO_FUZZ_VERSION: &str = "0.13.1";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let mut seconds = SMOKE_SECONDS;
    let mut targets: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--seconds needs a number"))?;
            }
            target if TARGETS.contains(&target) => targets.push(target.to_owned()),
            other => bail!("unknown fuzz argument {other:?}; targets: {TARGETS:?}"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let work = std::env::temp_dir().join(format!("switchboard-fuzz-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> fuzz: logs in {}", logs.display());
    let cargo_fuzz = install(&logs)?;
    // `cargo +nightly fuzz` finds cargo-fuzz on the PATH.
    let path = std::env::join_paths(
        std::iter::once(cargo_fuzz.parent().expect("bin dir").to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ),
    )?;
    let fuzz_dir = workspace_root().join("fuzz");
    let build_target = target_dir().join("fuzz");
    let mut build = Command::new("cargo");
    build
        .env("PATH", &path)
        .args(["+nightly", "fuzz", "build", "-O", "--target-dir"])
        .arg(&build_target)
        .current_dir(&fuzz_dir);
    let step = run_step(
        &logs,
        "cargo fuzz build",
        &mut build,
        Duration::from_secs(1800),
    )?;
    if !step.success() {
        print_logs(&step.logs);
        bail!("cargo fuzz build: {}", step.failure());
    }
    let mut failed = Vec::new();
    for target in &targets {
        let fresh = work.join("new").join(target);
        std::fs::create_dir_all(&fresh)?;
        let mut command = Command::new("cargo");
        command
            .env("PATH", &path)
            .args(["+nightly", "fuzz", "run", "-O", "--target-dir"])
            .arg(&build_target)
            .arg(target)
            .arg(&fresh)
            .arg(fuzz_dir.join("corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1")
            .current_dir(&fuzz_dir);
        let step = run_step(
            &logs,
            &format!("fuzz {target}"),
            &mut command,
            Duration::from_secs(seconds + 600),
        )?;
        let stderr = std::fs::read_to_string(&step.logs[1]).unwrap_or_default();
        let runs = stderr
            .lines()
            .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
            .map(str::trim)
            .unwrap_or("?");
        let verdict = if step.success() { "ok" } else { "FAILED" };
        eprintln!("    {target:<16} {verdict:<6} {runs} executions in {seconds}s");
        if !step.success() {
            print_logs(&step.logs);
            failed.push(target.clone());
        }
    }
    eprintln!("fuzz took {:.1}s", started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!("fuzz targets failed: {failed:?} (inputs in fuzz/artifacts/)");
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// cargo-fuzz in the tools cache, and the nightly toolchain it needs; returns cargo-fuzz.
fn install(logs: &std::path::Path) -> Result<PathBuf> {
    let root = tools_dir().join(format!("cargo-fuzz-{CARGO_FUZZ_VERSION}"));
    let binary = root.join("bin").join("cargo-fuzz");
    let has_nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_nightly {
        run_step(
            logs,
            "rustup toolchain install nightly",
            Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]),
            Duration::from_secs(900),
        )?
        .check()?;
    }
    if binary.exists() {
        eprintln!(
            "==> cargo-fuzz {CARGO_FUZZ_VERSION}: cached in {}",
            root.display()
        );
        return Ok(binary);
    }
    run_step(
        logs,
        "cargo install cargo-fuzz",
        Command::new("cargo")
            .args([
                "install",
                "cargo-fuzz",
                "--locked",
                "--version",
                CARGO_FUZZ_VERSION,
                "--root",
            ])
            .arg(&root),
        Duration::from_secs(1200),
    )?
    .check()?;
    Ok(binary)
}
