//! `cargo xtask otel`: switchboard's spans exported over OTLP reach a real OpenTelemetry
//! Collector, client and server linked in one trace.
//!
//! The collector is built with the collector project's own builder (`ocb`, pinned below) from
//! its OTLP receiver and the contrib file exporter, into the tools cache; it listens for OTLP
//! over HTTP on a free loopback port and writes what it receives as JSON lines.
//! `examples/eliza/examples/otel_export.rs` then makes one traced call, client to server, and
//! exports both spans with `opentelemetry-otlp`. The suite reads the collector's file and
//! checks there is one client span and one server span for the call, in one trace, the
//! server's parent being the client's span.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process::{Banner, Process, free_port};
use crate::steps::{print_logs, run_step};
use crate::{target_dir, tools_dir, workspace_root};

/// The collector release: the builder and every component at one version (the collector's
/// modules move together).
const COLLECTOR_VERSION: &str = "v0.161.0";
const BUILDER: &str = "go.opentelemetry.io/collector/cmd/builder";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(1800);
const METHOD: &str = "connectrpc.eliza.v1.ElizaService/Say";

/// The builder's manifest: an OTLP receiver and the file exporter, nothing else.
fn manifest(output: &Path) -> String {
    format!(
        "dist:
  name: otelcol-switchboard
  description: OTLP in, JSON lines out (switchboard's OpenTelemetry check)
  output_path: {}
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver {COLLECTOR_VERSION}
exporters:
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter {COLLECTOR_VERSION}
",
        output.display()
    )
}

/// Installs the builder and builds the collector, unless this release is cached.
fn collector(logs: &Path) -> Result<PathBuf> {
    let dir = tools_dir().join(format!("otelcol-{COLLECTOR_VERSION}"));
    let binary = dir.join("build").join("otelcol-switchboard");
    if binary.exists() {
        eprintln!(
            "==> OpenTelemetry Collector {COLLECTOR_VERSION}: cached in {}",
            dir.display()
        );
        return Ok(binary);
    }
    std::fs::create_dir_all(&dir)?;
    run_step(
        logs,
        &format!("go install builder@{COLLECTOR_VERSION}"),
        Command::new("go")
            .args(["install", &format!("{BUILDER}@{COLLECTOR_VERSION}")])
            .env("GOBIN", &dir)
            .env("GOWORK", "off"),
        INSTALL_TIMEOUT,
    )?
    .check()?;
    let config = dir.join("builder.yaml");
    std::fs::write(&config, manifest(&dir.join("build")))?;
    run_step(
        logs,
        "build the OpenTelemetry Collector (ocb)",
        Command::new(dir.join("builder"))
            .arg("--config")
            .arg(&config)
            .env("GOWORK", "off"),
        INSTALL_TIMEOUT,
    )?
    .check()?;
    if !binary.exists() {
        bail!("the builder made no {}", binary.display());
    }
    Ok(binary)
}

fn collector_config(port: u16, out: &Path) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  file:
    path: {}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
",
        out.display()
    )
}

/// A span as the collector wrote it (OTLP's JSON mapping).
#[derive(Debug)]
struct Span {
    name: String,
    kind: i64,
    trace: String,
    id: String,
    parent: String,
    system: String,
}

/// Every span in the collector's JSON lines.
fn spans(text: &str) -> Result<Vec<Span>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let request: serde_json::Value = serde_json::from_str(line).context("a JSON line")?;
        let resources = request["resourceSpans"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for resource in resources {
            for scope in resource["scopeSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                for span in scope["spans"].as_array().cloned().unwrap_or_default() {
                    let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                    let system = span["attributes"]
                        .as_array()
                        .and_then(|attributes| {
                            attributes
                                .iter()
                                .find(|a| a["key"] == "rpc.system.name")
                                .and_then(|a| a["value"]["stringValue"].as_str())
                        })
                        .unwrap_or_default()
                        .to_owned();
                    out.push(Span {
                        name: text("name"),
                        kind: span["kind"].as_i64().unwrap_or_default(),
                        trace: text("traceId"),
                        id: text("spanId"),
                        parent: text("parentSpanId"),
                        system,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// OTLP's span kinds.
const SERVER: i64 = 2;
const CLIENT: i64 = 3;

/// Entry point.
pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let work = target_dir().join("otel");
    let _ = std::fs::remove_dir_all(&work);
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> otel: logs in {}", logs.display());
    let collector = collector(&logs)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_step(
        &logs,
        "cargo build -p eliza --example otel_export",
        Command::new(cargo)
            .args(["build", "-p", "eliza", "--example", "otel_export"])
            .arg("--target-dir")
            .arg(target_dir())
            .current_dir(workspace_root()),
        INSTALL_TIMEOUT,
    )?
    .check()?;
    let example = target_dir()
        .join("debug")
        .join("examples")
        .join("otel_export");

    let port = free_port()?;
    let out = work.join("traces.jsonl");
    let config = work.join("collector.yaml");
    std::fs::write(&config, collector_config(port, &out))?;
    let (_collector, ()) = Process::start(
        &logs,
        "otelcol",
        Command::new(&collector).arg("--config").arg(&config),
        Banner::Stderr,
        Duration::from_secs(60),
        |line| line.contains("Everything is ready").then_some(()),
    )?;
    let step = run_step(
        &logs,
        "otel_export (a traced call, exported over OTLP/HTTP)",
        Command::new(&example).args(["--otlp", &format!("http://127.0.0.1:{port}")]),
        Duration::from_secs(60),
    )?;
    if !step.success() || !step.stdout.contains("exported") {
        print_logs(&step.logs);
        bail!("otel_export: {}", step.failure());
    }
    // The file exporter writes within its flush interval.
    let deadline = Instant::now() + Duration::from_secs(15);
    let found = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let found = spans(&text)?;
        let calls = found.iter().filter(|s| s.name == METHOD).count();
        if calls >= 2 || Instant::now() >= deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let of = |kind: i64| {
        found
            .iter()
            .filter(|s| s.name == METHOD && s.kind == kind)
            .collect::<Vec<_>>()
    };
    let (clients, servers) = (of(CLIENT), of(SERVER));
    if clients.len() != 1 || servers.len() != 1 {
        bail!(
            "the collector received {} client and {} server spans for {METHOD} (want 1 and 1): {found:#?}",
            clients.len(),
            servers.len()
        );
    }
    let (client, server) = (clients[0], servers[0]);
    println!("trace {} as the collector received it:", client.trace);
    println!(
        "  {} CLIENT {} (rpc.system.name {})",
        client.id, client.name, client.system
    );
    println!(
        "    {} SERVER {} (rpc.system.name {}), parent {}",
        server.id, server.name, server.system, server.parent
    );
    if server.trace != client.trace || server.parent != client.id {
        bail!("the server span is not the client span's child: {client:?} / {server:?}");
    }
    if client.system != "connectrpc" || server.system != "connectrpc" {
        bail!("rpc.system.name should be connectrpc: {client:?} / {server:?}");
    }
    eprintln!("otel took {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_read_from_otlp_json_lines() {
        let line = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"t","spanId":"c","parentSpanId":"","name":"x.S/M","kind":3,"attributes":[{"key":"rpc.system.name","value":{"stringValue":"grpc"}}]},{"traceId":"t","spanId":"s","parentSpanId":"c","name":"x.S/M","kind":2}]}]}]}"#;
        let spans = spans(line).unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].kind, spans[0].system.as_str()), (CLIENT, "grpc"));
        assert_eq!((spans[1].kind, spans[1].parent.as_str()), (SERVER, "c"));
    }
}
