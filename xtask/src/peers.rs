//! `cargo xtask peers`: the Eliza demo against real third-party clients.
//!
//! Installs pinned peers into the tools cache outside the repository (`$SWITCHBOARD_TOOLS`,
//! else `~/.cache/switchboard/tools`), reusing what is already there:
//!
//! - `grpcurl` with `go install` (GOBIN in the cache);
//! - `grpc-health-probe` built with `go build` in a scratch module under the cache (`go install
//!   module@version` fails there: the module proxy refuses its version list, which `go install`
//!   reads for deprecations), then run against the health service, with SIGUSR1 to the demo
//!   flipping it to NOT_SERVING and back;
//! - connect-node (connect-es v2) with `npm install --prefix <cache>/node-peers` from
//!   `interop/peers/package.json`, code generated with buf and protoc-gen-es from that install;
//! - grpcio in a virtualenv (`<cache>/pyenv`) from `interop/peers/requirements.txt`, stubs
//!   generated with `python -m grpc_tools.protoc`.
//! - server reflection (the `reflection` group): grpcurl `list`, `describe` and calls, and
//!   `buf curl --reflect` (from the connect-node install) over Connect, gRPC and gRPC-Web, with
//!   no schema but what the demo describes.
//!
//! Then builds the demo, generates a throwaway CA and server certificate (for `localhost` and
//! `127.0.0.1`) with rcgen, starts one cleartext (HTTP/1.1 + h2c) and one TLS instance on free
//! loopback ports, runs every peer against both and asserts on the actual responses. Every
//! subprocess writes to a log file in a temporary directory and has a time limit; the logs of
//! whatever failed are printed, the servers are killed however the run ends, and the run ends
//! with a table of checks and a non-zero exit on any failure.

mod buffa;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::go_tools::go_tool;
use crate::process::{Banner, Process};
use crate::steps::{Outcome, Step, print_logs, run_step};
use crate::workspace_root;
use crate::{target_dir, tools_dir};

/// The peers this task knows, in the order they run.
const PEERS: &[&str] = &[
    "grpcurl",
    "connect-node",
    "grpcio",
    "grpc-health-probe",
    "reflection",
    "connect-go-h3",
];

const SERVICE: &str = "connectrpc.eliza.v1.ElizaService";
/// The schema, relative to [`PROTO_ROOT`].
const PROTO_FILE: &str = "connectrpc/eliza/v1/eliza.proto";
const PROTO_ROOT: &str = "examples/eliza/proto";

const SAY: (&str, &str) = ("I feel happy.", "When do you usually feel happy?");
const NAME: &str = "Ada";
const INTRODUCTION: [&str; 4] = [
    "Hi Ada. I'm Eliza.",
    "Before we begin, let me tell you something about myself.",
    "I was created by Joseph Weizenbaum at MIT in the 1960s.",
    "I listen, and I ask questions. How are you feeling today?",
];
const CONVERSATION: [(&str, &str); 3] = [
    ("Hello", "Hi there... how are you today?"),
    ("I feel happy.", "When do you usually feel happy?"),
    ("Goodbye", "Goodbye. It was nice talking to you."),
];

const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);
const SHORT_TIMEOUT: Duration = Duration::from_secs(60);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Subprocesses: every one logs to files and has a time limit.

// ---------------------------------------------------------------------------------------------
// Results.

struct Row {
    check: String,
    passed: bool,
    detail: String,
    logs: Vec<PathBuf>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn pass(&mut self, check: impl Into<String>) {
        self.rows.push(Row {
            check: check.into(),
            passed: true,
            detail: String::new(),
            logs: Vec::new(),
        });
    }

    fn fail(&mut self, check: impl Into<String>, detail: impl Into<String>, logs: &[PathBuf]) {
        self.rows.push(Row {
            check: check.into(),
            passed: false,
            detail: detail.into(),
            logs: logs.to_vec(),
        });
    }

    fn record(&mut self, check: impl Into<String>, outcome: Result<(), String>, logs: &[PathBuf]) {
        match outcome {
            Ok(()) => self.pass(check),
            Err(detail) => self.fail(check, detail, logs),
        }
    }

    /// Adds the `PASS <check>` / `FAIL <check>: <why>` lines a peer script printed; the script
    /// itself fails if it exited badly or reported nothing.
    fn script(&mut self, peer: &str, step: &Step) {
        let before = self.rows.len();
        for line in step.stdout.lines() {
            if let Some(check) = line.strip_prefix("PASS ") {
                self.pass(check.trim());
            } else if let Some(rest) = line.strip_prefix("FAIL ") {
                let (check, why) = rest.split_once(": ").unwrap_or((rest, "failed"));
                self.fail(check.trim(), why.trim(), &step.logs);
            }
        }
        let reported = self.rows.len() - before;
        let failed = self.rows[before..].iter().any(|row| !row.passed);
        if reported == 0 {
            self.fail(
                format!("{peer} script"),
                format!("reported no check ({})", step.failure()),
                &step.logs,
            );
        } else if !step.success() && !failed {
            self.fail(format!("{peer} script"), step.failure(), &step.logs);
        }
    }

    fn failures(&self) -> usize {
        self.rows.iter().filter(|row| !row.passed).count()
    }

    fn print(&self) {
        let width = self
            .rows
            .iter()
            .map(|row| row.check.len())
            .max()
            .unwrap_or(5)
            .max("check".len());
        let mut printed_logs: Vec<&PathBuf> = Vec::new();
        for row in self.rows.iter().filter(|row| !row.passed) {
            for log in &row.logs {
                if !printed_logs.contains(&log) {
                    printed_logs.push(log);
                    print_logs(std::slice::from_ref(log));
                }
            }
        }
        println!();
        println!("{:width$}  result", "check");
        println!("{:-<width$}  ------", "");
        for row in &self.rows {
            if row.passed {
                println!("{:width$}  pass", row.check);
            } else {
                // The whole story is in the logs printed above; keep the table readable.
                let mut detail: String = row.detail.chars().take(150).collect();
                if detail.len() < row.detail.len() {
                    detail.push_str("...");
                }
                println!("{:width$}  FAIL  {detail}", row.check);
            }
        }
        println!();
        println!(
            "peers: {} passed, {} failed",
            self.rows.len() - self.failures(),
            self.failures()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Servers.

/// A running demo, killed when dropped, whichever way the run ends.
pub(crate) struct Server {
    name: &'static str,
    process: Process,
    pub(crate) addr: String,
}

impl Server {
    /// Starts `eliza` on a free loopback port and waits for its banner
    /// (`... listening on http://ADDR` or `https://ADDR`).
    pub(crate) fn start(
        logs: &Path,
        name: &'static str,
        binary: &Path,
        tls: Option<&Certificates>,
    ) -> Result<Server> {
        let mut command = Command::new(binary);
        command.args(["--addr", "127.0.0.1:0"]);
        if let Some(certs) = tls {
            command
                .arg("--tls-cert")
                .arg(&certs.server_cert)
                .arg("--tls-key")
                .arg(&certs.server_key);
        }
        let scheme = if tls.is_some() { "https://" } else { "http://" };
        let (process, addr) = Process::start(
            logs,
            name,
            &mut command,
            Banner::Stdout,
            SERVER_START_TIMEOUT,
            |line| {
                let addr = line.split(scheme).nth(1)?.split_whitespace().next()?;
                eprintln!("    {line}");
                Some(addr.to_owned())
            },
        )?;
        Ok(Server {
            name,
            process,
            addr,
        })
    }

    fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap_or_default()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its stdout and stderr logs.
    pub(crate) fn logs(&self) -> &[PathBuf] {
        &self.process.logs
    }

    /// Whether the server is still serving (it must survive every peer).
    fn check_alive(&mut self, report: &mut Report) {
        let check = format!("{} still running after the peers", self.name);
        match self.process.alive() {
            Ok(()) => report.pass(check),
            Err(why) => report.fail(check, why, &self.process.logs),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates.

pub(crate) struct Certificates {
    pub(crate) ca: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
}

/// A throwaway CA and a server certificate it signed, for `localhost` and `127.0.0.1`
/// (ECDSA P-256, made in process with rcgen), written as PEM files into `dir`.
pub(crate) fn make_certificates(_logs: &Path, dir: &Path) -> Result<Certificates> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "switchboard peers test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate()?;
    let mut server_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server = server_params.signed_by(&server_key, &issuer)?;
    let certificates = Certificates {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    };
    std::fs::write(&certificates.ca, ca.pem())?;
    std::fs::write(&certificates.server_cert, server.pem())?;
    std::fs::write(&certificates.server_key, server_key.serialize_pem())?;
    Ok(certificates)
}

// ---------------------------------------------------------------------------------------------
// Installing the peers.

/// Whether `stamp` records exactly `content` (the install it guards is current).
fn stamp_matches(stamp: &Path, content: &str) -> bool {
    std::fs::read_to_string(stamp).is_ok_and(|s| s == content)
}

/// `npm install` of `interop/peers/package.json` into `<tools>/node-peers`.
pub(crate) fn install_node(logs: &Path) -> Result<PathBuf> {
    npm_install(
        logs,
        &peers_dir().join("package.json"),
        "node-peers",
        "connect-node peers",
    )
}

/// `npm install` of the manifest at `manifest_path` into `<tools>/<name>`, skipped while the
/// installed manifest (recorded in a stamp) is the same; returns the install's directory.
pub(crate) fn npm_install(
    logs: &Path,
    manifest_path: &Path,
    name: &str,
    label: &str,
) -> Result<PathBuf> {
    let dir = tools_dir().join(name);
    let manifest = std::fs::read_to_string(manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let stamp = dir.join("node_modules").join(".switchboard-stamp");
    if stamp_matches(&stamp, &manifest) {
        eprintln!("==> {label} packages: cached in {}", dir.display());
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), &manifest)?;
    run_step(
        logs,
        &format!("npm install {label}"),
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir),
        INSTALL_TIMEOUT,
    )?
    .check()?;
    std::fs::write(&stamp, &manifest)?;
    Ok(dir)
}

/// Generates the demo's connect-es code (buf + protoc-gen-es from the npm install in
/// `node_dir`, `target=js`) into `<node_dir>/gen`, replacing what was there.
pub(crate) fn generate_connect_es(logs: &Path, node_dir: &Path) -> Result<crate::steps::Step> {
    let generated = node_dir.join("gen");
    if generated.exists() {
        std::fs::remove_dir_all(&generated)?;
    }
    let bin = node_dir.join("node_modules").join(".bin");
    let template = format!(
        r#"{{"version":"v2","plugins":[{{"local":{:?},"out":{:?},"opt":["target=js"]}}]}}"#,
        bin.join("protoc-gen-es")
            .to_str()
            .context("path is not UTF-8")?,
        generated.to_str().context("path is not UTF-8")?,
    );
    run_step(
        logs,
        "buf generate (protoc-gen-es)",
        Command::new(bin.join("buf"))
            .args(["generate", PROTO_ROOT, "--template", &template])
            .env("BUF_CACHE_DIR", tools_dir().join("buf-cache"))
            .current_dir(workspace_root()),
        SHORT_TIMEOUT,
    )
}

/// A virtualenv at `<tools>/pyenv` with `interop/peers/requirements.txt`; returns its python.
fn install_python(logs: &Path) -> Result<PathBuf> {
    virtualenv(
        logs,
        "pyenv",
        &peers_dir().join("requirements.txt"),
        "import grpc, grpc_tools",
        "grpcio",
    )
}

/// A virtualenv at `<tools>/<name>` with the pinned packages of `requirements` (reinstalled
/// when the file changes or `probe` no longer imports); returns its python.
pub(crate) fn virtualenv(
    logs: &Path,
    name: &str,
    requirements_path: &Path,
    probe: &str,
    label: &str,
) -> Result<PathBuf> {
    let dir = tools_dir().join(name);
    let python = dir.join("bin").join("python");
    let requirements = std::fs::read_to_string(requirements_path)
        .with_context(|| format!("reading {}", requirements_path.display()))?;
    let stamp = dir.join(".switchboard-stamp");
    let python_works = || {
        Command::new(&python)
            .args(["-c", probe])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if stamp_matches(&stamp, &requirements) && python_works() {
        eprintln!("==> {label} virtualenv: cached in {}", dir.display());
        return Ok(python);
    }
    if !python.exists() {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        run_step(
            logs,
            &format!("python3 -m venv ({label})"),
            Command::new("python3").args(["-m", "venv"]).arg(&dir),
            SHORT_TIMEOUT,
        )?
        .check()?;
    }
    run_step(
        logs,
        &format!("pip install {label}"),
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(requirements_path),
        INSTALL_TIMEOUT,
    )?
    .check()?;
    std::fs::write(&stamp, &requirements)?;
    Ok(python)
}

fn peers_dir() -> PathBuf {
    workspace_root().join("interop").join("peers")
}

/// Builds the demo (debug, sharing `target/` with the test suite) with its `auth`, `soak` and
/// `scale` examples, and the `buffa-ingest` example, and returns the demo's binary.
pub(crate) fn build_eliza(logs: &Path) -> Result<PathBuf> {
    let target = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_step(
        logs,
        "cargo build -p eliza",
        Command::new(cargo)
            .args([
                "build",
                "-p",
                "eliza",
                "--bin",
                "eliza",
                "--example",
                "auth",
                "--example",
                "soak",
                "--example",
                "scale",
                "-p",
                "buffa-ingest",
                "--bin",
                "buffa-ingest",
            ])
            .arg("--target-dir")
            .arg(&target)
            .current_dir(workspace_root()),
        BUILD_TIMEOUT,
    )?
    .check()?;
    Ok(target.join("debug").join("eliza"))
}

/// The `buffa-ingest` example (a service on the buffa message backend), built with the demo.
fn buffa_example() -> PathBuf {
    target_dir().join("debug").join("buffa-ingest")
}

/// The `auth` example (Eliza behind bearer-token and audit interceptors), built with the demo.
fn auth_example() -> PathBuf {
    target_dir().join("debug").join("examples").join("auth")
}

/// grpcurl and curl against the `auth` example: reflection stays open, Say without the token
/// is `unauthenticated` in gRPC's form (trailers-only) and Connect's (JSON), and with the
/// token it answers.
fn auth_checks(report: &mut Report, logs: &Path, grpcurl: &Path, auth: &Server) -> Result<()> {
    let say = format!("{SERVICE}/Say");
    let data = format!("{{\"sentence\":{:?}}}", SAY.0);
    let token = "authorization: Bearer demo-token";
    let step = run_step(
        logs,
        "auth: grpcurl list",
        Command::new(grpcurl).args(["-plaintext", &auth.addr, "list"]),
        CALL_TIMEOUT,
    )?;
    let outcome = if step.success() && step.stdout.contains(SERVICE) {
        Ok(())
    } else {
        Err(format!("{} / {:?}", step.failure(), step.stdout))
    };
    report.record(
        "auth: grpcurl lists services (reflection open)",
        outcome,
        &step.logs,
    );

    let step = run_step(
        logs,
        "auth: grpcurl Say without a token",
        Command::new(grpcurl).args(["-plaintext", "-d", &data, &auth.addr, &say]),
        CALL_TIMEOUT,
    )?;
    report.record(
        "auth: grpcurl Say without a token is Unauthenticated",
        expect_grpcurl_status(&step, "Unauthenticated"),
        &step.logs,
    );

    let step = run_step(
        logs,
        "auth: grpcurl Say with the token",
        Command::new(grpcurl).args(["-plaintext", "-H", token, "-d", &data, &auth.addr, &say]),
        CALL_TIMEOUT,
    )?;
    report.record(
        "auth: grpcurl Say with the token",
        expect_sentences(&step, &[SAY.1]),
        &step.logs,
    );

    // The interceptors' response header (Authenticate) and whole-stream trailer (Audit, from
    // its end hook) on a server stream, as grpcurl received them.
    let introduce = format!("{{\"name\":{NAME:?}}}");
    let step = run_step(
        logs,
        "auth: grpcurl -v Introduce with the token",
        Command::new(grpcurl).args([
            "-plaintext",
            "-v",
            "-H",
            token,
            "-d",
            &introduce,
            &auth.addr,
            &format!("{SERVICE}/Introduce"),
        ]),
        CALL_TIMEOUT,
    )?;
    let sent = format!("x-messages-sent: {}", INTRODUCTION.len());
    let outcome = expect_sentences(&step, &INTRODUCTION)
        .and_then(|()| {
            expect_grpcurl_metadata(&step.stdout, Metadata::Headers, "x-caller: demo-user")
        })
        .and_then(|()| expect_grpcurl_metadata(&step.stdout, Metadata::Trailers, &sent));
    report.record(
        "auth: grpcurl sees the interceptors' header and end-of-stream trailer",
        outcome,
        &step.logs,
    );

    let url = format!("http://{}/{say}", auth.addr);
    let step = run_step(
        logs,
        "auth: curl Say without a token",
        Command::new("curl").args([
            "--silent",
            "--header",
            "content-type: application/json",
            "--data",
            &data,
            &url,
        ]),
        CALL_TIMEOUT,
    )?;
    let outcome = if step.success() && step.stdout.contains(r#""code":"unauthenticated""#) {
        Ok(())
    } else {
        Err(format!("{} / {:?}", step.failure(), step.stdout))
    };
    report.record(
        "auth: curl Say without a token is unauthenticated",
        outcome,
        &step.logs,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// The `"sentence"` values in grpcurl's JSON output, in order.
fn sentences(json: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = json;
    while let Some(at) = rest.find("\"sentence\"") {
        rest = &rest[at + "\"sentence\"".len()..];
        let Some(value) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let Some(value) = value.trim_start().strip_prefix('"') else {
            continue;
        };
        let mut text = String::new();
        let mut chars = value.char_indices();
        let mut end = value.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = i + 1;
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                        if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            text.push(c);
                        }
                    }
                    Some(other) => text.push(other),
                    None => {}
                },
                c => text.push(c),
            }
        }
        found.push(text);
        rest = &value[end..];
    }
    found
}

fn expect_sentences(step: &Step, want: &[&str]) -> Result<(), String> {
    if !step.success() {
        return Err(step.failure());
    }
    let got = sentences(&step.stdout);
    if got != want {
        return Err(format!("got {got:?}, want {want:?}"));
    }
    Ok(())
}

/// The `x-sentences` trailer Introduce computes from its stream, as `grpcurl -v` prints the
/// trailers it received.
fn expect_late_trailer(stdout: &str, sentences: usize) -> Result<(), String> {
    expect_grpcurl_metadata(
        stdout,
        Metadata::Trailers,
        &format!("x-sentences: {sentences}"),
    )
}

/// Which metadata `grpcurl -v` printed.
#[derive(Clone, Copy, Debug)]
enum Metadata {
    Headers,
    Trailers,
}

/// `line` (`name: value`) among the response headers or trailers `grpcurl -v` printed.
fn expect_grpcurl_metadata(stdout: &str, which: Metadata, line: &str) -> Result<(), String> {
    let (_, after_headers) = stdout
        .split_once("Response headers received:")
        .ok_or("grpcurl printed no headers")?;
    let (headers, trailers) = after_headers
        .split_once("Response trailers received:")
        .ok_or("grpcurl printed no trailers")?;
    let section = match which {
        Metadata::Headers => headers,
        Metadata::Trailers => trailers,
    };
    if section.lines().any(|l| l.trim() == line) {
        Ok(())
    } else {
        Err(format!("{which:?} {section:?} lack {line:?}"))
    }
}

fn grpcurl_checks(
    report: &mut Report,
    logs: &Path,
    grpcurl: &Path,
    h2c: &Server,
    tls: &Server,
    certs: &Certificates,
) -> Result<()> {
    let root = workspace_root();
    let proto = ["-import-path", PROTO_ROOT, "-proto", PROTO_FILE];
    let say = format!("{{\"sentence\":{:?}}}", SAY.0);
    let introduce = format!("{{\"name\":{NAME:?}}}");
    let converse = CONVERSATION
        .iter()
        .map(|(sentence, _)| format!("{{\"sentence\":{sentence:?}}}"))
        .collect::<Vec<_>>()
        .join(" ");
    let replies: Vec<&str> = CONVERSATION.iter().map(|(_, reply)| *reply).collect();
    let ca = certs.ca.to_str().context("path is not UTF-8")?;
    let cases: [(&str, &Server, &str, &str, &[&str]); 5] = [
        ("h2c Say", h2c, "Say", &say, &[SAY.1]),
        ("h2c Introduce", h2c, "Introduce", &introduce, &INTRODUCTION),
        ("h2c Converse", h2c, "Converse", &converse, &replies),
        ("TLS Say", tls, "Say", &say, &[SAY.1]),
        ("TLS Introduce", tls, "Introduce", &introduce, &INTRODUCTION),
    ];
    for (label, server, method, data, want) in cases {
        let mut command = Command::new(grpcurl);
        command.current_dir(&root).args(proto);
        if std::ptr::eq(server, tls) {
            command.args(["-cacert", ca]);
        } else {
            command.arg("-plaintext");
        }
        // Verbose: grpcurl then prints the trailers it received, which Introduce sets after
        // its last message.
        let introduce = method == "Introduce";
        if introduce {
            command.arg("-v");
        }
        command
            .args(["-max-time", "20", "-d", data])
            .arg(&server.addr)
            .arg(format!("{SERVICE}/{method}"));
        let check = format!("grpcurl {label}");
        let step = run_step(logs, &check, &mut command, CALL_TIMEOUT)?;
        let mut outcome = expect_sentences(&step, want);
        if introduce && outcome.is_ok() {
            outcome = expect_late_trailer(&step.stdout, want.len());
        }
        report.record(check, outcome, &step.logs);
    }
    Ok(())
}

/// Generates the connect-es code with buf + protoc-gen-es and runs the connect-node script.
fn connect_node_checks(
    report: &mut Report,
    logs: &Path,
    node_dir: &Path,
    h2c: &Server,
    tls: &Server,
    certs: &Certificates,
) -> Result<()> {
    let step = generate_connect_es(logs, node_dir)?;
    if !step.success() {
        report.fail("connect-node codegen", step.failure(), &step.logs);
        return Ok(());
    }
    // The script imports its packages, so it runs from the install, not from the repo.
    let script = node_dir.join("connect-node.mjs");
    std::fs::copy(peers_dir().join("connect-node.mjs"), &script)?;
    let step = run_step(
        logs,
        "connect-node checks",
        Command::new("node")
            .arg(&script)
            .arg("--h2c")
            .arg(format!("http://{}", h2c.addr))
            .arg("--tls")
            .arg(format!("https://localhost:{}", tls.port()))
            .arg("--ca")
            .arg(&certs.ca)
            .current_dir(node_dir),
        SCRIPT_TIMEOUT,
    )?;
    report.script("connect-node", &step);
    Ok(())
}

/// Generates the grpcio stubs with grpc_tools.protoc and runs the grpcio script.
fn grpcio_checks(
    report: &mut Report,
    logs: &Path,
    python: &Path,
    h2c: &Server,
    tls: &Server,
    certs: &Certificates,
) -> Result<()> {
    let stubs = tools_dir().join("grpcio-stubs");
    if stubs.exists() {
        std::fs::remove_dir_all(&stubs)?;
    }
    std::fs::create_dir_all(&stubs)?;
    let step = run_step(
        logs,
        "grpc_tools.protoc",
        Command::new(python)
            .args(["-m", "grpc_tools.protoc", "-I", PROTO_ROOT])
            .arg(format!("--python_out={}", stubs.display()))
            .arg(format!("--grpc_python_out={}", stubs.display()))
            .arg(PROTO_FILE)
            .current_dir(workspace_root()),
        SHORT_TIMEOUT,
    )?;
    if !step.success() {
        report.fail("grpcio codegen", step.failure(), &step.logs);
        return Ok(());
    }
    let step = run_step(
        logs,
        "grpcio checks",
        Command::new(python)
            .arg(peers_dir().join("grpcio_eliza.py"))
            .arg("--stubs")
            .arg(&stubs)
            .args(["--h2c", &h2c.addr])
            .arg("--tls")
            .arg(format!("localhost:{}", tls.port()))
            .arg("--ca")
            .arg(&certs.ca)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        SCRIPT_TIMEOUT,
    )?;
    report.script("grpcio", &step);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// grpc-health-probe: the health service, flipped with SIGUSR1.

/// Everything a step wrote, stdout and stderr (grpc-health-probe logs to stderr).
fn step_output(step: &Step) -> String {
    step.logs
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A grpcurl call that must fail with the gRPC status `code`, as grpcurl prints it
/// (`Code: Unauthenticated`).
fn expect_grpcurl_status(step: &Step, code: &str) -> Result<(), String> {
    let output = step_output(step);
    if !step.success() && output.contains(&format!("Code: {code}")) {
        Ok(())
    } else {
        Err(format!("want Code: {code}, got {output:?}"))
    }
}

/// What a probe should end with: its exit status and a piece of its output.
struct Expect {
    status: i32,
    output: &'static str,
}

const SERVING: Expect = Expect {
    status: 0,
    output: "status: SERVING",
};
const NOT_SERVING: Expect = Expect {
    status: 4,
    output: "NOT_SERVING",
};
const NOT_FOUND: Expect = Expect {
    status: 3,
    output: "NotFound",
};

/// Runs grpc-health-probe against `server` (over TLS with the test CA when `certs` is given),
/// about `service` (`None`: the server as a whole), and records whether it ended as `want`.
fn probe_health(
    report: &mut Report,
    logs: &Path,
    probe: &Path,
    (server, certs): (&Server, Option<&Certificates>),
    service: Option<&str>,
    check: String,
    want: Expect,
) -> Result<()> {
    let mut command = Command::new(probe);
    command
        .arg(format!("-addr={}", server.addr))
        .args(["-connect-timeout=10s", "-rpc-timeout=10s"]);
    if let Some(certs) = certs {
        command.arg("-tls").arg("-tls-ca-cert").arg(&certs.ca);
    }
    if let Some(service) = service {
        command.arg(format!("-service={service}"));
    }
    let step = run_step(logs, &check, &mut command, CALL_TIMEOUT)?;
    let outcome = match step.outcome {
        Outcome::Exited(status) if status.code() == Some(want.status) => {
            if step_output(&step).contains(want.output) {
                Ok(())
            } else {
                Err(format!(
                    "exited with {} but printed no {:?}",
                    want.status, want.output
                ))
            }
        }
        _ => Err(format!(
            "{}, want exit status {} and {:?}",
            step.failure(),
            want.status,
            want.output
        )),
    };
    report.record(check, outcome, &step.logs);
    Ok(())
}

/// Sends SIGUSR1 to `server` and waits for it to print that its health is now `status`.
fn toggle_health(logs: &Path, server: &Server, status: &str) -> Result<(), String> {
    let line = format!("health: {status} ");
    let printed = || {
        std::fs::read_to_string(&server.logs()[0])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&line))
            .count()
    };
    let before = printed();
    let step = run_step(
        logs,
        &format!("kill -USR1 {}", server.name),
        Command::new("kill")
            .arg("-USR1")
            .arg(server.pid().to_string()),
        SHORT_TIMEOUT,
    )
    .map_err(|error| format!("{error:#}"))?;
    if !step.success() {
        return Err(step.failure());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while printed() == before {
        if Instant::now() >= deadline {
            return Err(format!("{} printed no {line:?} within 10s", server.name));
        }
        thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}

/// grpc-health-probe against both instances: SERVING, NOT_SERVING after SIGUSR1 (exit status
/// 4), SERVING again after a second SIGUSR1; NOT_FOUND (exit status 3) for an unknown service.
fn health_probe_checks(
    report: &mut Report,
    logs: &Path,
    probe: &Path,
    h2c: &Server,
    tls: &Server,
    certs: &Certificates,
) -> Result<()> {
    for (label, target) in [("h2c", (h2c, None)), ("TLS", (tls, Some(certs)))] {
        let server = target.0;
        let check = |what: &str| format!("grpc-health-probe {label} {what}");
        probe_health(report, logs, probe, target, None, check("SERVING"), SERVING)?;
        let eliza = Some(SERVICE);
        probe_health(
            report,
            logs,
            probe,
            target,
            eliza,
            check("Eliza SERVING"),
            SERVING,
        )?;
        let unknown = Some("no.such.v1.Service");
        probe_health(
            report,
            logs,
            probe,
            target,
            unknown,
            check("unknown service"),
            NOT_FOUND,
        )?;

        let toggled = toggle_health(logs, server, "NOT_SERVING");
        let failed = toggled.is_err();
        report.record(check("SIGUSR1 to NOT_SERVING"), toggled, server.logs());
        if failed {
            continue;
        }
        let what = check("NOT_SERVING after SIGUSR1");
        probe_health(report, logs, probe, target, None, what, NOT_SERVING)?;
        let what = check("Eliza NOT_SERVING after SIGUSR1");
        probe_health(report, logs, probe, target, eliza, what, NOT_SERVING)?;

        // Back to SERVING, as the other peers found it.
        let toggled = toggle_health(logs, server, "SERVING");
        let failed = toggled.is_err();
        report.record(check("SIGUSR1 back to SERVING"), toggled, server.logs());
        if !failed {
            let what = check("SERVING after second SIGUSR1");
            probe_health(report, logs, probe, target, None, what, SERVING)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Server reflection: grpcurl and buf curl with no schema but what the server describes.

/// The services `grpcurl list` must show (the demo may serve more, e.g. health).
const REFLECTED_SERVICES: [&str; 3] = [
    SERVICE,
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Fails unless `step` succeeded and printed every piece of `want`.
fn expect_output(step: &Step, want: &[&str]) -> Result<(), String> {
    if !step.success() {
        return Err(step.failure());
    }
    let missing: Vec<&str> = want
        .iter()
        .copied()
        .filter(|piece| !step.stdout.contains(piece))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("output lacks {missing:?}"))
    }
}

/// grpcurl (`list`, `describe`, calls) and `buf curl` (Connect, gRPC and gRPC-Web, both
/// reflection versions, HTTP/2 and HTTP/1.1) against both instances with nothing but server
/// reflection: no `-proto`, no `--schema`. Uses the grpcurl and buf the other peers install.
fn reflection_checks(
    report: &mut Report,
    logs: &Path,
    h2c: &Server,
    tls: &Server,
    certs: &Certificates,
) -> Result<()> {
    let say = format!("{{\"sentence\":{:?}}}", SAY.0);
    let introduce = format!("{{\"name\":{NAME:?}}}");
    let ca = certs.ca.to_str().context("path is not UTF-8")?;
    match go_tool("grpcurl") {
        Ok(grpcurl) => {
            let plaintext = ["-plaintext"];
            let with_ca = ["-cacert", ca];
            let targets: [(&str, &Server, &[&str]); 2] =
                [("h2c", h2c, &plaintext), ("TLS", tls, &with_ca)];
            for (label, server, security) in targets {
                let run = |check: &str, flags: &[&str], verb: &[&str]| {
                    let mut command = Command::new(&grpcurl);
                    command
                        .args(security)
                        .args(["-max-time", "20"])
                        .args(flags)
                        .arg(&server.addr)
                        .args(verb);
                    run_step(logs, check, &mut command, CALL_TIMEOUT)
                };
                let check = format!("reflection: grpcurl {label} list");
                let step = run(&check, &[], &["list"])?;
                report.record(check, expect_output(&step, &REFLECTED_SERVICES), &step.logs);

                let check = format!("reflection: grpcurl {label} describe ElizaService");
                let step = run(&check, &[], &["describe", SERVICE])?;
                let methods = ["rpc Say", "rpc Converse", "rpc Introduce"];
                report.record(check, expect_output(&step, &methods), &step.logs);

                let check = format!("reflection: grpcurl {label} Say");
                let step = run(&check, &["-d", &say], &[&format!("{SERVICE}/Say")])?;
                report.record(check, expect_sentences(&step, &[SAY.1]), &step.logs);

                let check = format!("reflection: grpcurl {label} Introduce");
                let method = format!("{SERVICE}/Introduce");
                let step = run(&check, &["-d", &introduce], &[&method])?;
                report.record(check, expect_sentences(&step, &INTRODUCTION), &step.logs);
            }
        }
        Err(error) => report.fail("reflection: grpcurl install", format!("{error:#}"), &[]),
    }
    match install_node(logs) {
        Ok(node_dir) => {
            let buf = node_dir.join("node_modules").join(".bin").join("buf");
            let plain = format!("http://{}/{SERVICE}/Say", h2c.addr);
            let secure = format!("https://localhost:{}/{SERVICE}/Say", tls.port());
            let h2 = "--http2-prior-knowledge";
            // (check, URL, protocol, reflection protocol, extra flags)
            let cases: [(&str, &str, &str, &str, &[&str]); 6] = [
                ("h2c Connect", &plain, "connect", "grpc-v1", &[h2]),
                ("h2c gRPC", &plain, "grpc", "grpc-v1", &[h2]),
                ("h2c gRPC-Web", &plain, "grpcweb", "grpc-v1", &[h2]),
                ("h2c gRPC v1alpha", &plain, "grpc", "grpc-v1alpha", &[h2]),
                ("HTTP/1.1 Connect", &plain, "connect", "grpc-v1", &[]),
                ("TLS gRPC", &secure, "grpc", "grpc-v1", &["--cacert", ca]),
            ];
            for (label, url, protocol, reflect_protocol, flags) in cases {
                let check = format!("reflection: buf curl {label} Say");
                let step = run_step(
                    logs,
                    &check,
                    Command::new(&buf)
                        .args(["curl", "--reflect", "--reflect-protocol", reflect_protocol])
                        .args(["--protocol", protocol])
                        .args(flags)
                        .args(["--timeout", "20s", "--data", &say])
                        .arg(url)
                        .env("BUF_CACHE_DIR", tools_dir().join("buf-cache")),
                    CALL_TIMEOUT,
                )?;
                report.record(check, expect_sentences(&step, &[SAY.1]), &step.logs);
            }
        }
        Err(error) => report.fail("reflection: buf install", format!("{error:#}"), &[]),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Entry point.

/// What each selected peer needs, installed (or why it could not be).
struct Installed {
    grpcurl: Option<Result<PathBuf>>,
    node: Option<Result<PathBuf>>,
    python: Option<Result<PathBuf>>,
    health_probe: Option<Result<PathBuf>>,
}

/// `cargo xtask peers [grpcurl] [connect-node] [grpcio]`: all peers by default.
pub(crate) fn run(args: &[String]) -> Result<()> {
    for arg in args {
        if !PEERS.contains(&arg.as_str()) {
            bail!("unknown peer {arg:?}: use any of {}", PEERS.join(", "));
        }
    }
    let wanted = |peer: &str| args.is_empty() || args.iter().any(|a| a == peer);
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-peers-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> logs in {}", logs.display());

    let report = checks(&logs, &work, &wanted)?;
    report.print();
    eprintln!("peers took {:.1}s", started.elapsed().as_secs_f64());
    if report.failures() > 0 {
        bail!(
            "{} peer check(s) failed; logs kept in {}",
            report.failures(),
            logs.display()
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn checks(logs: &Path, work: &Path, wanted: &dyn Fn(&str) -> bool) -> Result<Report> {
    let certs = make_certificates(logs, &work.join("certs"))?;

    // The installs are independent: run them side by side.
    let installed = thread::scope(|scope| {
        let grpcurl = wanted("grpcurl").then(|| scope.spawn(|| go_tool("grpcurl")));
        let node = wanted("connect-node").then(|| scope.spawn(|| install_node(logs)));
        let python = wanted("grpcio").then(|| scope.spawn(|| install_python(logs)));
        let health_probe =
            wanted("grpc-health-probe").then(|| scope.spawn(|| go_tool("grpc-health-probe")));
        let join = |handle: thread::ScopedJoinHandle<'_, Result<PathBuf>>| {
            handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("install thread panicked")))
        };
        Installed {
            grpcurl: grpcurl.map(join),
            node: node.map(join),
            python: python.map(join),
            health_probe: health_probe.map(join),
        }
    });

    let eliza = build_eliza(logs)?;
    let mut h2c = Server::start(logs, "eliza-h2c", &eliza, None)?;
    let mut tls = Server::start(logs, "eliza-tls", &eliza, Some(&certs))?;

    let mut report = Report::default();
    let install_failed = |report: &mut Report, peer: &str, error: anyhow::Error| {
        report.fail(format!("{peer} install"), format!("{error:#}"), &[]);
    };
    match installed.grpcurl {
        Some(Ok(grpcurl)) => {
            grpcurl_checks(&mut report, logs, &grpcurl, &h2c, &tls, &certs)?;
            let mut auth = Server::start(logs, "eliza-auth", &auth_example(), None)?;
            auth_checks(&mut report, logs, &grpcurl, &auth)?;
            auth.check_alive(&mut report);
            let mut ingest = Server::start(logs, "buffa-ingest", &buffa_example(), None)?;
            buffa::checks(&mut report, logs, &grpcurl, &ingest)?;
            ingest.check_alive(&mut report);
        }
        Some(Err(error)) => install_failed(&mut report, "grpcurl", error),
        None => {}
    }
    match installed.node {
        Some(Ok(dir)) => connect_node_checks(&mut report, logs, &dir, &h2c, &tls, &certs)?,
        Some(Err(error)) => install_failed(&mut report, "connect-node", error),
        None => {}
    }
    match installed.python {
        Some(Ok(python)) => grpcio_checks(&mut report, logs, &python, &h2c, &tls, &certs)?,
        Some(Err(error)) => install_failed(&mut report, "grpcio", error),
        None => {}
    }
    match installed.health_probe {
        Some(Ok(probe)) => health_probe_checks(&mut report, logs, &probe, &h2c, &tls, &certs)?,
        Some(Err(error)) => install_failed(&mut report, "grpc-health-probe", error),
        None => {}
    }
    if wanted("reflection") {
        reflection_checks(&mut report, logs, &h2c, &tls, &certs)?;
    }
    if wanted("connect-go-h3") {
        match crate::bench::binaries::build_http3(logs) {
            Ok((rust, go)) => connect_go_h3_checks(&mut report, logs, &rust, &go, &certs)?,
            Err(error) => install_failed(&mut report, "connect-go-h3", error),
        }
    }
    h2c.check_alive(&mut report);
    tls.check_alive(&mut report);
    Ok(report)
}

/// HTTP/3 with a peer no one here wrote: connect-go over quic-go's HTTP/3
/// (`benches/go/cmd/connect-h3`) calls `switchboard-echo-h3` with every protocol and stream
/// shape, and switchboard's HTTP/3 client (`h3-check`) calls connect-go's server the same
/// way. Both sides verify the other's certificate against the test CA.
fn connect_go_h3_checks(
    report: &mut Report,
    logs: &Path,
    rust: &Path,
    go: &Path,
    certs: &Certificates,
) -> Result<()> {
    let started = Instant::now();
    let banner = |line: &str| {
        let addr = line.strip_prefix("listening on ")?.trim();
        eprintln!("    {line}");
        Some(addr.to_owned())
    };
    // connect-go → switchboard.
    let mut command = Command::new(rust.join("switchboard-echo-h3"));
    command
        .args(["--addr", "127.0.0.1:0"])
        .env("SWITCHBOARD_ECHO_TLS_CERT", &certs.server_cert)
        .env("SWITCHBOARD_ECHO_TLS_KEY", &certs.server_key);
    let (mut server, addr) = Process::start(
        logs,
        "switchboard-echo-h3",
        &mut command,
        Banner::Stdout,
        SERVER_START_TIMEOUT,
        banner,
    )?;
    let step = run_step(
        logs,
        "connect-go-h3 check",
        Command::new(go.join("connect-h3"))
            .args(["check", "--url", &format!("https://{addr}"), "--ca"])
            .arg(&certs.ca),
        SCRIPT_TIMEOUT,
    )?;
    report.script("connect-go-h3 check", &step);
    match server.alive() {
        Ok(()) => report.pass("switchboard-echo-h3 still running after connect-go"),
        Err(why) => report.fail(
            "switchboard-echo-h3 still running after connect-go",
            why,
            &server.logs,
        ),
    }
    drop(server);
    // switchboard → connect-go.
    let mut command = Command::new(go.join("connect-h3"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--cert"])
        .arg(&certs.server_cert)
        .arg("--key")
        .arg(&certs.server_key);
    let (server, addr) = Process::start(
        logs,
        "connect-h3 serve",
        &mut command,
        Banner::Stdout,
        SERVER_START_TIMEOUT,
        banner,
    )?;
    let step = run_step(
        logs,
        "h3-check",
        Command::new(rust.join("h3-check"))
            .arg(format!("https://{addr}"))
            .arg(&certs.ca),
        SCRIPT_TIMEOUT,
    )?;
    report.script("h3-check", &step);
    drop(server);
    eprintln!(
        "    connect-go-h3 checks took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_time_out_and_report_programs_that_do_not_start() {
        let logs = std::env::temp_dir().join(format!("peers-test-{}", std::process::id()));
        std::fs::create_dir_all(&logs).unwrap();
        let slow = run_step(
            &logs,
            "slow",
            Command::new("sh").args(["-c", "echo started; sleep 10"]),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(!slow.success());
        assert_eq!(slow.failure(), "timed out after 0s");
        assert_eq!(slow.stdout, "started\n");
        let missing = run_step(
            &logs,
            "missing",
            &mut Command::new("no-such-program-here"),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(matches!(missing.outcome, Outcome::NotStarted(_)));
        assert!(missing.check().is_err());
        std::fs::remove_dir_all(&logs).unwrap();
    }

    #[test]
    fn sentences_reads_grpcurl_output() {
        let out = "{\n  \"sentence\": \"Hi Ada. I'm Eliza.\"\n}\n{\n  \"sentence\": \"a \\\"b\\\" \\u00e9\"\n}\n";
        assert_eq!(sentences(out), ["Hi Ada. I'm Eliza.", "a \"b\" é"]);
        assert!(sentences("{}").is_empty());
    }
}
