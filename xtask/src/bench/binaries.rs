//! Builds what runs: the Rust servers and drivers of the benches workspace (release, in a
//! target directory of their own so they never fight the main workspace's build), and the Go
//! servers with `benches/go/build.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::steps::run_step;
use crate::{target_dir, tools_dir, workspace_root};

const BUILD_TIMEOUT: Duration = Duration::from_secs(2400);

/// Where the binaries are, and how the Go build went.
pub(crate) struct Binaries {
    /// `switchboard-echo`, `tonic-echo`, `connectrpc-echo`, `hyper-echo`, `pingpong`,
    /// `alloc-count`, `libfrozen_clock.so`.
    pub(crate) rust: PathBuf,
    /// `connect-echo` and `grpc-echo`.
    pub(crate) go: PathBuf,
    /// Why the Go servers are missing, if they are.
    pub(crate) go_error: Option<String>,
    pub(crate) rust_time: Duration,
    pub(crate) go_time: Duration,
}

impl Binaries {
    /// The `LD_PRELOAD` library that stops the wall clock (`benches/frozen-clock`).
    pub(crate) fn frozen_clock(&self) -> PathBuf {
        self.rust.join("libfrozen_clock.so")
    }
}

/// The benches workspace's target directory: `<target>/benches`.
pub(crate) fn bench_target() -> PathBuf {
    target_dir().join("benches")
}

/// Builds everything (the Go servers only when `go` is set); a failed Rust build fails the
/// run, a failed Go build only the Go servers. The whole Rust workspace is built even when
/// one server is wanted: cargo unifies dependency features over the packages it builds, so
/// building fewer would compile a different switchboard-echo (tokio with other features)
/// than the one the full benchmark and the guard's baseline measured.
pub(crate) fn build(logs: &Path, go: bool) -> Result<Binaries> {
    let target = bench_target();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--manifest-path"])
        .arg(workspace_root().join("benches").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .current_dir(workspace_root());
    // Extra features of the switchboard server, for measurements off the record (`otel`: the
    // OpenTelemetry interceptor's cost); never set by the benchmarks or the guard.
    if let Ok(features) = std::env::var("SWITCHBOARD_ECHO_FEATURES") {
        command.arg("--features").arg(
            features
                .split(',')
                .map(|f| format!("switchboard-echo/{}", f.trim()))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    run_step(
        logs,
        "cargo build --release (benches)",
        &mut command,
        BUILD_TIMEOUT,
    )?
    .check()
    .context("building the benches workspace")?;
    build_buffa(logs, &target)?;
    let rust_time = started.elapsed();

    let started = Instant::now();
    let go_dir = target.join("go");
    if !go {
        return Ok(Binaries {
            rust: target.join("release"),
            go: go_dir,
            go_error: Some("not built for this run".to_owned()),
            rust_time,
            go_time: Duration::ZERO,
        });
    }
    let go = go_dir;
    let mut command = Command::new("bash");
    command
        .arg(workspace_root().join("benches").join("go").join("build.sh"))
        .env("TOOLS_DIR", tools_dir().join("bench-go"))
        .env("OUT_DIR", &go)
        .current_dir(workspace_root());
    let step = run_step(logs, "benches/go/build.sh", &mut command, BUILD_TIMEOUT)?;
    let go_error = (!step.success()).then(|| {
        crate::steps::print_logs(&step.logs);
        format!("benches/go/build.sh {}", step.failure())
    });
    Ok(Binaries {
        rust: target.join("release"),
        go,
        go_error,
        rust_time,
        go_time: started.elapsed(),
    })
}

/// `switchboard-echo-buffa` (switchboard-echo with its `buffa` feature), built apart so the
/// workspace build's `switchboard-echo`, which the guard measures, stays as it was.
fn build_buffa(logs: &Path, target: &Path) -> Result<()> {
    build_echo_variant(logs, target, "buffa", &["switchboard-echo-buffa"])
}

/// Builds only `bins` of switchboard-echo with `feature` on (a separate cargo invocation, so
/// the workspace build's binaries keep their features).
fn build_echo_variant(logs: &Path, target: &Path, feature: &str, bins: &[&str]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--manifest-path"])
        .arg(workspace_root().join("benches").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target)
        .args(["-p", "switchboard-echo", "--features", feature])
        .current_dir(workspace_root());
    for bin in bins {
        command.args(["--bin", bin]);
    }
    let what = bins.join(" and ");
    run_step(
        logs,
        &format!("cargo build --release ({what})"),
        &mut command,
        BUILD_TIMEOUT,
    )?
    .check()
    .with_context(|| format!("building {what}"))?;
    Ok(())
}

/// The HTTP/3 programs, built apart from the benchmark servers: `switchboard-echo-h3` and
/// `h3-check` (switchboard-echo with its `http3` feature; building only these two binaries
/// leaves `switchboard-echo`, which the guard measures, as the workspace build made it), and
/// the Go `connect-h3` (connect-go over quic-go). Returns the Rust and the Go directory.
pub(crate) fn build_http3(logs: &Path) -> Result<(PathBuf, PathBuf)> {
    let target = bench_target();
    build_echo_variant(logs, &target, "http3", &["switchboard-echo-h3", "h3-check"])?;
    let go = target.join("go");
    let mut command = Command::new("bash");
    command
        .arg(workspace_root().join("benches").join("go").join("build.sh"))
        .env("TOOLS_DIR", tools_dir().join("bench-go"))
        .env("OUT_DIR", &go)
        .current_dir(workspace_root());
    run_step(logs, "benches/go/build.sh", &mut command, BUILD_TIMEOUT)?
        .check()
        .context("building the Go peers")?;
    Ok((target.join("release"), go))
}
