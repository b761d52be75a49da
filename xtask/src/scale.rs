//! `cargo xtask scale`: three Eliza replicas behind real proxies and behind switchboard's own
//! client-side balancing, with replicas stopped and killed under a bounded load.
//!
//! The replicas run behind **nginx** (Debian's package: `grpc_pass` over h2c for gRPC,
//! `proxy_pass` over HTTP/1.1 for Connect and gRPC-Web, passive health checks) and **HAProxy**
//! (HTTP/2 to the replicas, active health checks: a Connect call to `grpc.health.v1.Health/
//! Check` that must answer `SERVING`). For each way in (a proxy and a protocol, or the client
//! balancing over the three replicas itself), `examples/eliza/examples/scale.rs` sends `Say`
//! calls from 8 tasks for 3 seconds with retries on; meanwhile one replica is stopped with
//! SIGTERM (it drains) and another killed with SIGKILL and started again. The table gives
//! calls sent, succeeded, failed, retried and hedged; any failed call fails the suite.
//! `--record` also writes the table to `benches/SCALE.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::peers::build_eliza;
use crate::process::{Banner, Process, free_port};
use crate::steps::{ensure_apt, first_line, print_logs};
use crate::{target_dir, workspace_root};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const REPLICAS: usize = 3;
/// How long each way in is loaded.
const SECONDS: u64 = 3;

/// The replicas, each on a fixed port so that one killed can come back at the same address.
struct Replicas {
    eliza: PathBuf,
    ports: Vec<u16>,
    running: Vec<Option<Process>>,
    starts: usize,
}

impl Replicas {
    fn start_one(&mut self, logs: &Path, index: usize) -> Result<()> {
        self.starts += 1;
        let port = self.ports[index];
        let name = format!("replica-{}-start-{}", index + 1, self.starts);
        let mut command = Command::new(&self.eliza);
        command.args(["--addr", &format!("127.0.0.1:{port}")]);
        let (process, ()) = Process::start(
            logs,
            &name,
            &mut command,
            Banner::Stdout,
            START_TIMEOUT,
            |line| line.contains("listening on").then_some(()),
        )?;
        self.running[index] = Some(process);
        Ok(())
    }

    /// Starts every replica that is not running.
    fn ensure_all(&mut self, logs: &Path) -> Result<()> {
        for index in 0..REPLICAS {
            let alive = self.running[index]
                .as_mut()
                .is_some_and(|process| process.alive().is_ok());
            if !alive {
                self.running[index] = None;
                self.start_one(logs, index)?;
            }
        }
        Ok(())
    }

    fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect()
    }
}

fn nginx_config(dir: &Path, ports: &[u16], grpc_port: u16, http_port: u16) -> String {
    let servers: String = ports
        .iter()
        .map(|port| format!("        server 127.0.0.1:{port} max_fails=1 fail_timeout=1s;\n"))
        .collect();
    let d = dir.display();
    format!(
        "worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/client-body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream eliza_grpc {{
{servers}        keepalive 16;
    }}
    upstream eliza_http {{
{servers}        keepalive 16;
    }}
    # gRPC: HTTP/2 without TLS (h2c) on both sides.
    server {{
        listen 127.0.0.1:{grpc_port} http2;
        location / {{
            grpc_pass grpc://eliza_grpc;
            grpc_next_upstream error timeout http_502 http_503 non_idempotent;
        }}
    }}
    # Connect and gRPC-Web: HTTP/1.1 on both sides, streamed both ways.
    server {{
        listen 127.0.0.1:{http_port};
        location / {{
            proxy_pass http://eliza_http;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        }}
    }}
}}
"
    )
}

fn haproxy_config(ports: &[u16], h2_port: u16, h1_port: u16) -> String {
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            format!(
                "    server r{} 127.0.0.1:{port} proto h2 check check-proto h1 inter 300ms fall 1 rise 1\n",
                i + 1
            )
        })
        .collect();
    format!(
        "defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
frontend grpc_h2c
    bind 127.0.0.1:{h2_port} proto h2
    default_backend eliza
frontend http1
    bind 127.0.0.1:{h1_port}
    default_backend eliza
backend eliza
    balance roundrobin
    # The demo's health service, called over the Connect protocol with JSON.
    option httpchk
    http-check send meth POST uri /grpc.health.v1.Health/Check ver HTTP/1.1 hdr content-type application/json body \"{{}}\"
    http-check expect string SERVING
{servers}"
    )
}

/// One way in: a name and the driver's arguments.
struct Way {
    name: &'static str,
    args: Vec<String>,
    /// A control run with retries off: its failures show what the retries absorb, and do
    /// not fail the suite.
    control: bool,
}

/// What the driver reported.
struct Outcome {
    name: &'static str,
    control: bool,
    report: serde_json::Value,
}

fn drive(logs: &Path, driver: &Path, replicas: &mut Replicas, way: &Way) -> Result<Outcome> {
    replicas.ensure_all(logs)?;
    // Proxies' health checks see every replica back before the load starts.
    std::thread::sleep(Duration::from_millis(1200));
    let mut command = Command::new(driver);
    command.args(&way.args);
    command.args(["--seconds", &SECONDS.to_string(), "--tasks", "8"]);
    let (mut load, ()) = Process::start(
        logs,
        &format!("load {}", way.name),
        &mut command,
        Banner::Stdout,
        START_TIMEOUT,
        |line| (line == "started").then_some(()),
    )?;
    // Under load: replica 1 stopped gracefully, replica 2 killed, then both back.
    std::thread::sleep(Duration::from_millis(700));
    if let Some(replica) = &replicas.running[0] {
        replica.signal("TERM")?;
    }
    std::thread::sleep(Duration::from_millis(500));
    if let Some(replica) = &replicas.running[1] {
        replica.signal("KILL")?;
    }
    std::thread::sleep(Duration::from_millis(600));
    replicas.running[1] = None;
    replicas.start_one(logs, 1)?;
    if let Some(mut stopped) = replicas.running[0].take()
        && stopped.wait_exit(Duration::from_secs(10)).is_none()
    {
        bail!("replica 1 still running 10 s after SIGTERM");
    }
    replicas.start_one(logs, 0)?;
    let status = load.wait_exit(Duration::from_secs(SECONDS + 30));
    let stdout = std::fs::read_to_string(&load.logs[0]).unwrap_or_default();
    let Some(line) = stdout.lines().rev().find(|line| line.starts_with('{')) else {
        print_logs(&load.logs);
        bail!("{}: the load printed no report ({status:?})", way.name);
    };
    let report: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("{}: report {line:?}", way.name))?;
    Ok(Outcome {
        name: way.name,
        control: way.control,
        report,
    })
}

fn table(outcomes: &[Outcome]) -> String {
    let mut text = String::from(
        "| way in | calls | succeeded | failed | retried | transparent retries | hedged | throttled |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for outcome in outcomes {
        let r = &outcome.report;
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            outcome.name,
            r["sent"],
            r["succeeded"],
            r["failed"],
            r["retried"],
            r["transparent_retries"],
            r["hedged"],
            r["throttled"],
        ));
    }
    text
}

/// Entry point: `[--record]`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let record = args.iter().any(|a| a == "--record");
    let started = Instant::now();
    let work = target_dir().join("scale");
    let _ = std::fs::remove_dir_all(&work);
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> scale: logs in {}", logs.display());
    ensure_apt(
        &logs,
        &[("nginx", "nginx-light"), ("haproxy", "haproxy")],
        Duration::from_secs(600),
    )?;
    let eliza = build_eliza(&logs)?;
    let driver = eliza.with_file_name("examples").join("scale");

    let mut replicas = Replicas {
        eliza,
        ports: (0..REPLICAS).map(|_| free_port()).collect::<Result<_>>()?,
        running: (0..REPLICAS).map(|_| None).collect(),
        starts: 0,
    };
    replicas.ensure_all(&logs)?;

    let (nginx_grpc, nginx_http) = (free_port()?, free_port()?);
    let nginx_conf = work.join("nginx.conf");
    std::fs::write(
        &nginx_conf,
        nginx_config(&work, &replicas.ports, nginx_grpc, nginx_http),
    )?;
    let _nginx = Process::start_listening(
        &logs,
        "nginx",
        Command::new("nginx")
            .arg("-p")
            .arg(&work)
            .arg("-c")
            .arg(&nginx_conf),
        nginx_http,
        START_TIMEOUT,
    )?;
    let (haproxy_h2, haproxy_h1) = (free_port()?, free_port()?);
    let haproxy_cfg = work.join("haproxy.cfg");
    std::fs::write(
        &haproxy_cfg,
        haproxy_config(&replicas.ports, haproxy_h2, haproxy_h1),
    )?;
    let _haproxy = Process::start_listening(
        &logs,
        "haproxy",
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&haproxy_cfg),
        haproxy_h1,
        START_TIMEOUT,
    )?;

    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let balance = replicas.urls().join(",");
    let way = |name, list: &[&str]| Way {
        name,
        args: args(list),
        control: false,
    };
    let ways = [
        Way {
            name: "control: client-side balancing, Connect, retries off",
            args: args(&["--protocol", "connect", "--balance", &balance, "--no-retry"]),
            control: true,
        },
        way(
            "client-side balancing, Connect",
            &["--protocol", "connect", "--balance", &balance],
        ),
        way(
            "client-side balancing, gRPC, hedged",
            &["--protocol", "grpc", "--balance", &balance, "--hedge"],
        ),
        way(
            "nginx, gRPC (h2c)",
            &["--protocol", "grpc", "--url", &url(nginx_grpc)],
        ),
        way(
            "nginx, Connect (HTTP/1.1)",
            &[
                "--protocol",
                "connect",
                "--http1",
                "--url",
                &url(nginx_http),
            ],
        ),
        way(
            "nginx, gRPC-Web (HTTP/1.1)",
            &[
                "--protocol",
                "grpc-web",
                "--http1",
                "--url",
                &url(nginx_http),
            ],
        ),
        way(
            "HAProxy, gRPC (h2c)",
            &["--protocol", "grpc", "--url", &url(haproxy_h2)],
        ),
        way(
            "HAProxy, Connect (HTTP/1.1)",
            &[
                "--protocol",
                "connect",
                "--http1",
                "--url",
                &url(haproxy_h1),
            ],
        ),
        way(
            "HAProxy, gRPC-Web (HTTP/1.1)",
            &[
                "--protocol",
                "grpc-web",
                "--http1",
                "--url",
                &url(haproxy_h1),
            ],
        ),
    ];
    let mut outcomes = Vec::new();
    for way in &ways {
        let outcome = drive(&logs, &driver, &mut replicas, way)?;
        eprintln!("    {}: {}", way.name, outcome.report);
        outcomes.push(outcome);
    }
    let table = table(&outcomes);
    println!("\n{table}");
    std::fs::write(work.join("SCALE.md"), &table)?;
    if record {
        let text = format!(
            "# Replicas behind proxies, under disruption\n\n\
             `cargo xtask scale --record`: three Eliza replicas; for each way in, `Say` calls \
             from 8 tasks for {SECONDS} s with retries on (5 attempts, 50 ms to 500 ms \
             backoff, unavailable and internal), while one replica is stopped with SIGTERM and another killed with \
             SIGKILL and started again. nginx {} and HAProxy {} from Debian's packages.\n\n{table}\n\
             The control row has retries off: what fails there is calls caught in flight on \
             the killed replica (none to a few per run, as the kill lands), which the retries \
             absorb in the other rows. Through the proxies the \
             client sees fewer failures still: nginx (`grpc_next_upstream`/`proxy_next_upstream` \
             with `non_idempotent`) and HAProxy (`retries`, `option redispatch`, active health \
             checks) retry on their own. The configurations are in \
             docs/guide/production.md.\n",
            first_line("nginx", &["-v"])
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            first_line("haproxy", &["-v"])
                .split_whitespace()
                .nth(2)
                .unwrap_or_default()
                .to_owned(),
        );
        std::fs::write(workspace_root().join("benches").join("SCALE.md"), text)?;
    }
    let failed: u64 = outcomes
        .iter()
        .filter(|o| !o.control)
        .map(|o| o.report["failed"].as_u64().unwrap_or(u64::MAX))
        .sum();
    eprintln!("scale took {:.1}s", started.elapsed().as_secs_f64());
    if failed > 0 {
        for outcome in outcomes.iter().filter(|o| !o.control) {
            if outcome.report["failed"].as_u64() != Some(0) {
                eprintln!(
                    "{}: failed {} (first errors: {})",
                    outcome.name, outcome.report["failed_by_code"], outcome.report["first_errors"]
                );
            }
        }
        bail!("scale: {failed} call(s) failed");
    }
    Ok(())
}
