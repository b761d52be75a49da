//! `cargo xtask bench --http3 [--quick]`: switchboard and connect-go (over quic-go, the only
//! other Connect implementation with HTTP/3) side by side over HTTP/3, and over HTTP/2 with TLS
//! beside it, driven by one load generator for every cell: connect-go's client
//! (`benches/go/cmd/connect-h3 load`), so neither server is favoured by its own client.
//!
//! h2load, which the main benchmark uses, cannot speak HTTP/3; that is why this table is
//! separate. Each cell gets a fresh server pinned to one CPU and the load pinned to the other
//! (as in the main benchmark). It measures calls per second and the server's CPU time per call.
//! The runs are 3 of 5 s each after a 1 s warm-up; `--quick` does one run of 1 s.
//!
//! The report is `benches/RESULTS-http3.md` for a full run and
//! `<target>/benches/RESULTS-http3.quick.md` for `--quick`. Figures are never asserted; a cell
//! with errors fails the run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::binaries::build_http3;
use super::server::cpu_ticks;
use crate::process::{Banner, Process};
use crate::steps::run_step;

/// One measured workload.
struct Workload {
    name: &'static str,
    protocol: &'static str,
    shape: &'static str,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "unary 64 B, Connect",
        protocol: "connect",
        shape: "unary",
    },
    Workload {
        name: "unary 64 B, gRPC",
        protocol: "grpc",
        shape: "unary",
    },
    Workload {
        name: "server stream 100 × 64 B, Connect",
        protocol: "connect",
        shape: "server-stream",
    },
];

/// Calls in flight at once, over one connection.
const CONCURRENCY: u32 = 16;

/// The two servers.
#[derive(Clone, Copy)]
enum Peer {
    Switchboard,
    ConnectGo,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Switchboard => "switchboard",
            Peer::ConnectGo => "connect-go",
        }
    }
}

/// A measured cell: calls per second and server CPU microseconds per call, averaged over runs.
#[derive(Clone, Copy, Default)]
struct Figure {
    rate: f64,
    cpu_us: f64,
}

struct Paths {
    rust: PathBuf,
    go: PathBuf,
    certs: crate::peers::Certificates,
}

/// Entry point of `--http3`.
pub(crate) fn run(quick: bool) -> Result<()> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-bench-h3-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> bench --http3: logs in {}", logs.display());
    let (rust, go) = build_http3(&logs)?;
    let certs = crate::peers::make_certificates(&logs, &work.join("certs"))?;
    let paths = Paths { rust, go, certs };
    let build_time = started.elapsed();
    let cpus = super::server::allowed_cpus(
        &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
    );
    let pinning = (cpus.len() >= 2).then(|| (cpus[1], cpus[0]));
    let (runs, seconds, warmup) = if quick { (1, 1, 0) } else { (3, 5, 1) };
    let ticks_per_second = clock_ticks()?;

    let mut table = Vec::new();
    for workload in &WORKLOADS {
        for http2 in [false, true] {
            let mut figures = [Figure::default(); 2];
            for (slot, peer) in [Peer::Switchboard, Peer::ConnectGo].into_iter().enumerate() {
                let label = format!(
                    "{} {} {}",
                    peer.name(),
                    workload.name,
                    if http2 { "HTTP/2" } else { "HTTP/3" }
                );
                eprintln!("==> {label}");
                figures[slot] = measure(
                    &logs,
                    &paths,
                    peer,
                    workload,
                    http2,
                    pinning,
                    (runs, seconds, warmup),
                    ticks_per_second,
                )
                .with_context(|| label.clone())?;
            }
            table.push((workload.name, http2, figures));
        }
    }

    let mut text = String::new();
    writeln!(
        text,
        "# HTTP/3: switchboard beside connect-go over quic-go\n\n\
         Written by `cargo xtask bench --http3{}`; do not edit by hand. The load generator is \
         connect-go's client for every cell (`benches/go/cmd/connect-h3 load`: {CONCURRENCY} calls \
         in flight over one connection, 64-byte payloads); HTTP/2 is over TLS, with the same \
         client and servers, for comparison. Each server is started fresh per cell{}; {runs} \
         run(s) of {seconds} s after {warmup} s of warm-up. Server CPU is utime + stime from \
         /proc per call. connect-go is v1.21.1 on quic-go v0.64.1 (HTTP/3) and net/http \
         (HTTP/2); switchboard is `switchboard-echo-h3` (quinn 0.11, h3 0.0.8).\n",
        if quick { " --quick" } else { "" },
        match pinning {
            Some((server, load)) => format!(", pinned to CPU {server}, the load to CPU {load}"),
            None => " (unpinned: fewer than two CPUs allowed)".to_owned(),
        },
    )?;
    writeln!(
        text,
        "| workload | HTTP | switchboard calls/s | connect-go calls/s | ratio | switchboard CPU µs/call | connect-go CPU µs/call |"
    )?;
    writeln!(text, "| --- | --- | ---: | ---: | ---: | ---: | ---: |")?;
    for (name, http2, [ours, theirs]) in &table {
        writeln!(
            text,
            "| {name} | {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} |",
            if *http2 { "2 (TLS)" } else { "3" },
            ours.rate,
            theirs.rate,
            ours.rate / theirs.rate,
            ours.cpu_us,
            theirs.cpu_us,
        )?;
    }
    super::write_side_report("http3", &text, quick)?;
    eprintln!(
        "bench --http3 took {:.1}s (build {:.1}s)",
        started.elapsed().as_secs_f64(),
        build_time.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// One cell: a fresh server, a warm-up, then `runs` loads of `seconds`.
#[allow(clippy::too_many_arguments)]
fn measure(
    logs: &Path,
    paths: &Paths,
    peer: Peer,
    workload: &Workload,
    http2: bool,
    pinning: Option<(u32, u32)>,
    (runs, seconds, warmup): (u32, u64, u64),
    ticks_per_second: f64,
) -> Result<Figure> {
    let server_cpu = pinning.map(|(server, _)| server);
    let load_cpu = pinning.map(|(_, load)| load);
    let mut command = match peer {
        Peer::Switchboard => {
            let mut command = super::pinned(
                server_cpu,
                &paths.rust.join("switchboard-echo-h3"),
                &["--addr".to_owned(), "127.0.0.1:0".to_owned()],
            );
            command
                .env("SWITCHBOARD_ECHO_TLS_CERT", &paths.certs.server_cert)
                .env("SWITCHBOARD_ECHO_TLS_KEY", &paths.certs.server_key);
            command
        }
        Peer::ConnectGo => super::pinned(
            server_cpu,
            &paths.go.join("connect-h3"),
            &[
                "serve".to_owned(),
                "--addr".to_owned(),
                "127.0.0.1:0".to_owned(),
                "--cert".to_owned(),
                path_arg(&paths.certs.server_cert),
                "--key".to_owned(),
                path_arg(&paths.certs.server_key),
            ],
        ),
    };
    let (server, addr) = Process::start(
        logs,
        peer.name(),
        &mut command,
        Banner::Stdout,
        Duration::from_secs(30),
        |line| Some(line.strip_prefix("listening on ")?.trim().to_owned()),
    )?;
    let load = |duration: u64| -> Result<(f64, f64)> {
        let mut args = vec![
            "load".to_owned(),
            "--url".to_owned(),
            format!("https://{addr}"),
            "--ca".to_owned(),
            path_arg(&paths.certs.ca),
            "--protocol".to_owned(),
            workload.protocol.to_owned(),
            "--shape".to_owned(),
            workload.shape.to_owned(),
            "--concurrency".to_owned(),
            CONCURRENCY.to_string(),
            "--duration".to_owned(),
            format!("{duration}s"),
        ];
        if http2 {
            args.push("--http2".to_owned());
        }
        let before = server_ticks(&server)?;
        let step = run_step(
            logs,
            "connect-h3 load",
            &mut super::pinned(load_cpu, &paths.go.join("connect-h3"), &args),
            Duration::from_secs(duration + 60),
        )?
        .check()?;
        let cpu = (server_ticks(&server)? - before) as f64 / ticks_per_second;
        let report: serde_json::Value = serde_json::from_str(step.stdout.trim())
            .with_context(|| format!("the load's report {:?}", step.stdout))?;
        let errors = report["errors"].as_i64().unwrap_or(-1);
        if errors != 0 {
            bail!(
                "{errors} call(s) failed under load: {}",
                report["first_error"].as_str().unwrap_or("(none given)")
            );
        }
        let calls = report["calls"].as_f64().context("no call count")?;
        let elapsed = report["seconds"].as_f64().context("no duration")?;
        Ok((calls / elapsed, cpu * 1e6 / calls))
    };
    if warmup > 0 {
        load(warmup)?;
    }
    let mut sum = Figure::default();
    for _ in 0..runs {
        let (rate, cpu_us) = load(seconds)?;
        sum.rate += rate;
        sum.cpu_us += cpu_us;
    }
    drop(server);
    Ok(Figure {
        rate: sum.rate / f64::from(runs),
        cpu_us: sum.cpu_us / f64::from(runs),
    })
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The server process's CPU time so far, in clock ticks.
fn server_ticks(server: &Process) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid()))
        .context("reading the server's /proc stat")?;
    cpu_ticks(&stat)
}

/// Clock ticks per second (`getconf CLK_TCK`).
fn clock_ticks() -> Result<f64> {
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("getconf CLK_TCK")
}
