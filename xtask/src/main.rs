//! Project automation: `cargo xtask test` runs every check CI runs; `cargo xtask check` is
//! the quick loop (lints and the workspace's own tests).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

mod attack;
mod bench;
mod browser;
mod conformance;
mod examples;
mod fuzz;
mod go_tools;
mod interop;
mod otel;
mod peers;
mod process;
mod protolint;
mod quickstart;
mod scale;
mod soak;
mod steps;
mod transcoding;

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "test" => {
            check()?;
            // The crates packaged as crates.io would get them, and the README's quick start
            // built from them in a fresh crate, run and called.
            quickstart::run()?;
            // The repository's schemas against the style guide (buf lint), and the demo's
            // public schema against the previous commit (buf breaking).
            protolint::run()?;
            // The self-checking examples: chat, errors, TLS, axum.
            examples::run()?;
            conformance::run(&[])?;
            interop::run(&[])?;
            peers::run(&[])?;
            // REST requests to switchboard and to connect-go behind vanguard v0.4.0: the same
            // answers, but for the differences the corpus lists and explains.
            transcoding::run(&[])?;
            // A page on another origin calls the demo in headless Chromium (CORS, connect-web,
            // grpc-web).
            browser::run()?;
            // Hostile clients against the demo: each abuse refused in time, memory bounded.
            attack::run(&[])?;
            // Thousands of streams held open with unary traffic: nothing lost, memory flat.
            soak::run(&["--quick".to_owned()])?;
            // Three replicas behind nginx, HAProxy and client-side balancing, stopped and
            // killed under load: no call lost.
            scale::run(&[])?;
            // A traced call's spans exported over OTLP reach an OpenTelemetry Collector,
            // client and server linked.
            otel::run()?;
            // The fuzz targets, briefly, over their committed corpora.
            fuzz::run(&[])?;
            // The harness and every peer's server, verified on each workload; figures are
            // printed, never asserted.
            bench::run(&["--quick".to_owned()])?;
            // HTTP/3 beside connect-go over quic-go, briefly (figures printed, not asserted).
            bench::run(&["--http3".to_owned(), "--quick".to_owned()])?;
            // Memory per idle connection and per open stream beside tonic and connectrpc,
            // on small counts (figures printed, not asserted).
            bench::run(&["--memory".to_owned(), "--quick".to_owned()])?;
            // Requests/s from one worker thread to two, every Rust server (printed only).
            bench::run(&["--scaling".to_owned(), "--quick".to_owned()])?;
            // The performance regression guard: switchboard's instructions per request under
            // callgrind against benches/perf-baseline.toml (no timing is asserted).
            bench::run(&["--guard".to_owned()])
        }
        "check" => check(),
        "conformance" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            conformance::run(&args)
        }
        "peers" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            peers::run(&args)
        }
        "attack" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            attack::run(&args)
        }
        "quickstart" => quickstart::run(),
        "browser" => browser::run(),
        "examples" => examples::run(),
        "protolint" => protolint::run(),
        "soak" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            soak::run(&args)
        }
        "otel" => otel::run(),
        "scale" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            scale::run(&args)
        }
        "fuzz" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            fuzz::run(&args)
        }
        "transcoding" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            transcoding::run(&args)
        }
        "interop" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            interop::run(&args)
        }
        "bench" => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            bench::run(&args)
        }
        _ => {
            eprintln!("usage: cargo xtask <task>");
            eprintln!(
                "  test                     everything CI runs: check, quickstart, protolint, examples, conformance, interop, peers, transcoding, browser, attack, soak --quick, fuzz, bench --quick and --guard"
            );
            eprintln!(
                "  check                    formatting, clippy (warnings are errors) and the workspace tests"
            );
            eprintln!("  fuzz [--seconds N] [TARGET...]");
            eprintln!(
                "                           the cargo-fuzz targets over their corpora (10 s each by default)"
            );
            eprintln!(
                "  quickstart               package the crates; build, run and call the README's quick start"
            );
            eprintln!(
                "  protolint                buf lint of the repository's schemas; buf breaking of the demo's"
            );
            eprintln!("  soak [--quick] [--streams N] [--seconds S] [--unary-rate R] [--record]");
            eprintln!(
                "                           streams held open with unary traffic, replies checked, RSS sampled"
            );
            eprintln!("  attack [-- --only SCENARIO,...]");
            eprintln!(
                "                           hostile clients against the demo (attack/hostile.py)"
            );
            eprintln!("  conformance [server|client] [-- RUNNER ARGS]");
            eprintln!(
                "                           the Connect conformance suite, both modes by default"
            );
            eprintln!("  peers [grpcurl] [connect-node] [grpcio] [grpc-health-probe] [reflection]");
            eprintln!(
                "                           the Eliza demo against real third-party clients, all by default"
            );
            eprintln!("  transcoding [--only vanguard|switchboard] [--case TEXT]");
            eprintln!(
                "                           REST requests (transcoding/corpus.json) to switchboard and to vanguard, answers compared"
            );
            eprintln!("  interop [DIRECTION|CASE...]");
            eprintln!(
                "                           gRPC's interop cases against grpc-go, both ways, and every protocol"
            );
            eprintln!("  bench [--quick] [--only SERVER,...]");
            eprintln!(
                "                           switchboard beside its peers under load; writes benches/RESULTS.md"
            );
            eprintln!(
                "  bench --guard [--repeat N] [--cell KEY,...] [--update-baseline [--note WHY]]"
            );
            eprintln!(
                "                           switchboard's instructions per request vs benches/perf-baseline.toml"
            );
            bail!("unknown task {task:?}")
        }
    }
}

/// Runs a command from the workspace root, failing on a non-zero exit.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("==> {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("could not start {program}"))?;
    if !status.success() {
        bail!("{program} {} failed with {status}", args.join(" "));
    }
    Ok(())
}

pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The runtime's cargo features, each checked alone by `cargo xtask check`.
const RUNTIME_FEATURES: [&str; 9] = [
    "tls",
    "http3",
    "buffa",
    "webpki-roots",
    "cors",
    "gzip",
    "brotli",
    "zstd",
    "snappy",
];

fn check() -> Result<()> {
    // A fresh machine may have a minimal toolchain; make sure the linters are there.
    let _ = Command::new("rustup")
        .args(["component", "add", "rustfmt", "clippy"])
        .status();
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace"])?;
    // The runtime's optional parts: it builds (lint-clean) with none of them, and with each
    // alone.
    let started = std::time::Instant::now();
    let mut feature_sets = vec![String::new()];
    feature_sets.extend(RUNTIME_FEATURES.iter().map(|f| f.to_string()));
    for features in &feature_sets {
        let mut args = vec![
            "clippy",
            "-p",
            "switchboard-rpc",
            "--lib",
            "--no-default-features",
        ];
        if !features.is_empty() {
            args.extend(["--features", features]);
        }
        // Warnings are errors here too: code only one feature uses must be gated with it.
        args.extend(["--", "-D", "warnings"]);
        run("cargo", &args)?;
    }
    // The generator without its optional buffa backend (the workspace build turns it on).
    run(
        "cargo",
        &[
            "clippy",
            "-p",
            "switchboard-build",
            "--lib",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    eprintln!(
        "feature checks ({} sets) took {:.1}s",
        feature_sets.len() + 1,
        started.elapsed().as_secs_f64()
    );
    // The API docs, as docs.rs builds them: a broken intra-doc link or a public item without
    // docs fails the build (`missing_docs` is a workspace lint, an error under -D warnings).
    let started = std::time::Instant::now();
    let status = Command::new("cargo")
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()
        .context("running cargo doc")?;
    if !status.success() {
        bail!("cargo doc --workspace --no-deps (RUSTDOCFLAGS=-D warnings) failed");
    }
    eprintln!("cargo doc took {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Where tools are installed: `$SWITCHBOARD_TOOLS`, else `~/.cache/switchboard/tools`.
pub(crate) fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_TOOLS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("switchboard").join("tools")
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else the workspace's `target/`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
