//! `cargo xtask interop`: gRPC's standard interop test cases between switchboard and grpc-go,
//! both ways, and between switchboard's own client and server over every protocol.
//!
//! Installs grpc-go's interop client and server at a pinned release with `go install` into the
//! tools cache outside the repository (`$SWITCHBOARD_TOOLS`, else
//! `~/.cache/switchboard/tools`), builds `interop-server` and `interop-client` (the
//! `interop/` crate, release mode, in `$CARGO_TARGET_DIR` or the workspace's `target/`), then
//! runs every case, one client process per case, in seven directions:
//!
//! - grpc-go's client against switchboard's server, over h2c and over TLS;
//! - switchboard's client against grpc-go's server, over h2c and over TLS;
//! - switchboard's client against switchboard's server with Connect, gRPC and gRPC-Web (h2c).
//!
//! TLS uses grpc's test certificates from the grpc-go module (`testdata/ca.pem`, and
//! `server1.pem` for `*.test.google.fr`), with `--server_host_override=foo.test.google.fr`, as
//! grpc's own interop harness does.
//!
//! The four compression cases do not run with grpc-go on either side: its interop client does
//! not implement them and its server implements neither CompressedRequest nor
//! CompressedResponse (it has no gzip codec registered at all), which is why grpc's own
//! `run_interop_tests.py` skips them for Go. They run between switchboard's client and server,
//! where the server checks how each request message really arrived and the client checks the
//! compressed flag of each response message on the wire.
//!
//! Every process has a time limit and logs to files in a temporary directory (kept, and the
//! logs of what failed printed, when something fails); servers are killed however the run
//! ends. The run ends with a table of case × direction and a non-zero exit on any failure.
//!
//! `cargo xtask interop [FILTER...]`: each filter names a direction (`go-sb-h2c`, `go-sb-tls`,
//! `sb-go-h2c`, `sb-go-tls`, `sb-sb-connect`, `sb-sb-grpc`, `sb-sb-grpc-web`) or a case.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::go_tools::{go_tool, pinned_version};
use crate::process::{Banner, Process};
use crate::steps::{print_logs, run_step};
use crate::workspace_root;
use crate::{target_dir, tools_dir};

/// grpc-go's module: its interop client and server are pinned in `xtask/go-tools`, and
/// `interop/build.rs` takes the descriptors from the same release (a test keeps them in step).
const GRPC_GO_MODULE: &str = "google.golang.org/grpc";

/// The grpc-go release `xtask/go-tools` pins.
fn grpc_go_version() -> String {
    pinned_version(GRPC_GO_MODULE).unwrap_or_else(|| "(unpinned)".to_owned())
}

/// The name grpc's test server certificate is issued for (`*.test.google.fr`).
const TLS_SERVER_NAME: &str = "foo.test.google.fr";

/// Every case, in the order they run.
const CASES: [&str; 18] = [
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
];

/// Cases grpc-go's interop binaries do not support, client or server.
const NOT_IN_GRPC_GO: [&str; 4] = [
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
];

const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);
const SHORT_TIMEOUT: Duration = Duration::from_secs(120);
/// One client process (one case); the cases themselves wait at most 60 seconds.
const CASE_TIMEOUT: Duration = Duration::from_secs(90);
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Implementation {
    GrpcGo,
    Switchboard,
}

/// One direction: who calls whom, how.
struct Direction {
    key: &'static str,
    title: &'static str,
    client: Implementation,
    server: Implementation,
    tls: bool,
    /// `--protocol` of switchboard's client.
    protocol: &'static str,
}

const DIRECTIONS: [Direction; 7] = [
    Direction {
        key: "go-sb-h2c",
        title: "go→sb h2c",
        client: Implementation::GrpcGo,
        server: Implementation::Switchboard,
        tls: false,
        protocol: "grpc",
    },
    Direction {
        key: "go-sb-tls",
        title: "go→sb TLS",
        client: Implementation::GrpcGo,
        server: Implementation::Switchboard,
        tls: true,
        protocol: "grpc",
    },
    Direction {
        key: "sb-go-h2c",
        title: "sb→go h2c",
        client: Implementation::Switchboard,
        server: Implementation::GrpcGo,
        tls: false,
        protocol: "grpc",
    },
    Direction {
        key: "sb-go-tls",
        title: "sb→go TLS",
        client: Implementation::Switchboard,
        server: Implementation::GrpcGo,
        tls: true,
        protocol: "grpc",
    },
    Direction {
        key: "sb-sb-connect",
        title: "sb→sb Connect",
        client: Implementation::Switchboard,
        server: Implementation::Switchboard,
        tls: false,
        protocol: "connect",
    },
    Direction {
        key: "sb-sb-grpc",
        title: "sb→sb gRPC",
        client: Implementation::Switchboard,
        server: Implementation::Switchboard,
        tls: false,
        protocol: "grpc",
    },
    Direction {
        key: "sb-sb-grpc-web",
        title: "sb→sb gRPC-Web",
        client: Implementation::Switchboard,
        server: Implementation::Switchboard,
        tls: false,
        protocol: "grpcweb",
    },
];

impl Direction {
    fn runs(&self, case: &str) -> bool {
        let go_involved =
            self.client == Implementation::GrpcGo || self.server == Implementation::GrpcGo;
        !(go_involved && NOT_IN_GRPC_GO.contains(&case))
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and tools.

/// grpc-go's interop binaries.
struct GrpcGo {
    client: PathBuf,
    server: PathBuf,
}

/// grpc-go's interop client and server, as `xtask/go-tools` pins them.
fn install_grpc_go() -> Result<GrpcGo> {
    Ok(GrpcGo {
        client: go_tool("client")?,
        server: go_tool("server")?,
    })
}

/// grpc's test certificates, from the grpc-go module in the Go module cache.
struct Certificates {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

fn certificates(logs: &Path) -> Result<Certificates> {
    let mut command = Command::new("go");
    command
        .args(["mod", "download", "-json"])
        .arg(format!("{GRPC_GO_MODULE}@{}", grpc_go_version()))
        .env("GOFLAGS", "-mod=mod")
        .current_dir(tools_dir());
    let step = run_step(logs, "go mod download grpc-go", &mut command, SHORT_TIMEOUT)?.check()?;
    let download: serde_json::Value =
        serde_json::from_str(&step.stdout).context("`go mod download -json` printed no JSON")?;
    let dir = download["Dir"]
        .as_str()
        .context("`go mod download -json` printed no Dir")?;
    let testdata = PathBuf::from(dir).join("testdata");
    let certs = Certificates {
        ca: testdata.join("ca.pem"),
        server_cert: testdata.join("server1.pem"),
        server_key: testdata.join("server1.key"),
    };
    for path in [&certs.ca, &certs.server_cert, &certs.server_key] {
        if !path.exists() {
            bail!("{} is missing from the grpc-go module", path.display());
        }
    }
    Ok(certs)
}

/// Our binaries.
struct Switchboard {
    client: PathBuf,
    server: PathBuf,
}

/// Lints the `interop/` crate (it is outside the workspace) and builds its binaries in
/// release mode.
fn build_switchboard(logs: &Path) -> Result<Switchboard> {
    let target = target_dir();
    let manifest = workspace_root().join("interop").join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let steps: [(&str, &[&str]); 3] = [
        ("cargo fmt --check (interop)", &["fmt", "--check"]),
        (
            "cargo clippy (interop)",
            &["clippy", "--all-targets", "--", "-D", "warnings"],
        ),
        (
            "cargo build --release (interop)",
            &["build", "--release", "--bins"],
        ),
    ];
    for (name, args) in steps {
        let mut command = Command::new(&cargo);
        command.arg(args[0]).arg("--manifest-path").arg(&manifest);
        if args[0] != "fmt" {
            command.arg("--target-dir").arg(&target);
        }
        command.args(&args[1..]).current_dir(workspace_root());
        run_step(logs, name, &mut command, BUILD_TIMEOUT)?.check()?;
    }
    let bins = target.join("release");
    Ok(Switchboard {
        client: bins.join("interop-client"),
        server: bins.join("interop-server"),
    })
}

// ---------------------------------------------------------------------------------------------
// Subprocesses: every one logs to files and has a time limit.

// ---------------------------------------------------------------------------------------------
// Servers.

/// A running interop server, killed when dropped, whichever way the run ends.
struct Server {
    process: Process,
    port: u16,
}

impl Server {
    /// Starts a server on a free port (`--port=0`) and waits for the line announcing it:
    /// `interop-server listening on ADDR` on the stdout of ours, grpc-go's `interop server
    /// listening on ADDR` log line on its stderr.
    fn start(
        logs: &Path,
        direction: &Direction,
        grpc_go: &GrpcGo,
        ours: &Switchboard,
        certs: &Certificates,
    ) -> Result<Server> {
        let name = format!("{} server", direction.key);
        let (mut command, banner, announcement) = match direction.server {
            Implementation::Switchboard => (
                Command::new(&ours.server),
                Banner::Stdout,
                "interop-server listening on ",
            ),
            Implementation::GrpcGo => {
                let mut command = Command::new(&grpc_go.server);
                // grpc-go logs its listening address at INFO.
                command.env("GRPC_GO_LOG_SEVERITY_LEVEL", "info");
                (command, Banner::Stderr, "interop server listening on ")
            }
        };
        command.arg("--port=0");
        if direction.tls {
            command
                .arg("--use_tls=true")
                .arg(format!("--tls_cert_file={}", certs.server_cert.display()))
                .arg(format!("--tls_key_file={}", certs.server_key.display()));
        }
        let (process, port) = Process::start(
            logs,
            &name,
            &mut command,
            banner,
            SERVER_START_TIMEOUT,
            |line| {
                let (_, addr) = line.split_once(announcement)?;
                addr.trim().rsplit(':').next()?.parse::<u16>().ok()
            },
        )?;
        eprintln!("    {name} on port {port}");
        Ok(Server { process, port })
    }

    /// `None` while the server runs; why it stopped otherwise.
    fn stopped(&mut self) -> Option<String> {
        self.process.alive().err()
    }
}

// ---------------------------------------------------------------------------------------------
// Running the cases.

enum Cell {
    Pass,
    Fail {
        why: String,
        logs: Vec<PathBuf>,
    },
    /// grpc-go does not implement the case.
    NotApplicable,
    /// Left out by the command-line filters.
    Skipped,
}

/// The command line of one case: the client of `direction` against a server on `port`.
fn client_command(
    direction: &Direction,
    case: &str,
    port: u16,
    grpc_go: &GrpcGo,
    ours: &Switchboard,
    certs: &Certificates,
) -> Command {
    let mut command = match direction.client {
        Implementation::GrpcGo => Command::new(&grpc_go.client),
        Implementation::Switchboard => {
            let mut command = Command::new(&ours.client);
            command.arg(format!("--protocol={}", direction.protocol));
            command
        }
    };
    command
        .arg("--server_host=127.0.0.1")
        .arg(format!("--server_port={port}"))
        .arg(format!("--test_case={case}"));
    if direction.tls {
        command
            .arg("--use_tls=true")
            .arg("--use_test_ca=true")
            .arg(format!("--ca_file={}", certs.ca.display()))
            .arg(format!("--server_host_override={TLS_SERVER_NAME}"));
    }
    command
}

/// The last non-empty line of a log, for the failure summary.
fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .to_owned()
}

fn run_direction(
    logs: &Path,
    direction: &Direction,
    cases: &[&str],
    tools: (&GrpcGo, &Switchboard, &Certificates),
) -> Result<Vec<Cell>> {
    let (grpc_go, ours, certs) = tools;
    let mut server = Server::start(logs, direction, grpc_go, ours, certs)?;
    let mut cells = Vec::new();
    for case in CASES {
        if !cases.contains(&case) {
            cells.push(Cell::Skipped);
            continue;
        }
        if !direction.runs(case) {
            cells.push(Cell::NotApplicable);
            continue;
        }
        let name = format!("{} {case}", direction.key);
        let mut command = client_command(direction, case, server.port, grpc_go, ours, certs);
        let step = run_step(logs, &name, &mut command, CASE_TIMEOUT)?;
        let server_stopped = server.stopped();
        let stop = server_stopped.is_some();
        let cell = if step.success() && server_stopped.is_none() {
            Cell::Pass
        } else {
            let mut logs = step.logs.clone();
            logs.extend(server.process.logs.iter().cloned());
            let why = match server_stopped {
                Some(why) => why,
                None => {
                    let detail = step
                        .logs
                        .iter()
                        .map(|path| last_line(path))
                        .filter(|line| !line.is_empty())
                        .collect::<Vec<_>>()
                        .join(" / ");
                    format!("{}: {detail}", step.failure())
                }
            };
            Cell::Fail { why, logs }
        };
        eprintln!(
            "    {name}: {}",
            match &cell {
                Cell::Pass => "pass",
                _ => "FAIL",
            }
        );
        cells.push(cell);
        if stop {
            // Nothing more can run in this direction.
            while cells.len() < CASES.len() {
                cells.push(Cell::Fail {
                    why: format!("{} server stopped earlier", direction.key),
                    logs: server.process.logs.clone(),
                });
            }
            break;
        }
    }
    Ok(cells)
}

/// The table: a row per case, a column per direction.
fn print_table(directions: &[&Direction], cells: &[Vec<Cell>]) -> usize {
    let case_width = CASES.iter().map(|c| c.len()).max().unwrap_or(4);
    let mut failures = Vec::new();
    println!();
    print!("{:case_width$}", "case");
    for direction in directions {
        print!("  {:>w$}", direction.title, w = column_width(direction));
    }
    println!();
    print!("{:-<case_width$}", "");
    for direction in directions {
        print!("  {:->w$}", "", w = column_width(direction));
    }
    println!();
    for (row, case) in CASES.iter().enumerate() {
        if cells
            .iter()
            .all(|column| matches!(column[row], Cell::Skipped))
        {
            continue;
        }
        print!("{case:case_width$}");
        for (direction, column) in directions.iter().zip(cells) {
            let text = match &column[row] {
                Cell::Pass => "pass",
                Cell::Fail { why, logs } => {
                    failures.push((format!("{case} ({})", direction.title), why, logs));
                    "FAIL"
                }
                Cell::NotApplicable => "n/a",
                Cell::Skipped => "-",
            };
            print!("  {text:>w$}", w = column_width(direction));
        }
        println!();
    }
    let count = |f: fn(&Cell) -> bool| cells.iter().flatten().filter(|c| f(c)).count();
    println!();
    println!(
        "go = grpc-go {} interop client/server, sb = switchboard interop-client/interop-server",
        grpc_go_version()
    );
    println!(
        "n/a: grpc-go's interop client and server do not implement the compression cases \
         (grpc's run_interop_tests.py skips them for Go)"
    );
    println!(
        "interop: {} passed, {} failed, {} not applicable",
        count(|c| matches!(c, Cell::Pass)),
        failures.len(),
        count(|c| matches!(c, Cell::NotApplicable)),
    );
    if !failures.is_empty() {
        println!();
        for (what, why, _) in &failures {
            let mut why: String = why.chars().take(300).collect();
            if why.len() >= 300 {
                why.push_str("...");
            }
            println!("FAIL {what}: {why}");
        }
    }
    failures.len()
}

fn column_width(direction: &Direction) -> usize {
    direction.title.chars().count().max(4)
}

/// Entry point: `[FILTER...]`, each a direction key or a case name.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut direction_filter = Vec::new();
    let mut case_filter = Vec::new();
    for arg in args {
        if DIRECTIONS.iter().any(|d| d.key == arg) {
            direction_filter.push(arg.as_str());
        } else if CASES.contains(&arg.as_str()) {
            case_filter.push(arg.as_str());
        } else {
            let keys: Vec<&str> = DIRECTIONS.iter().map(|d| d.key).collect();
            bail!(
                "unknown filter {arg:?}: use a direction ({}) or a case ({})",
                keys.join(", "),
                CASES.join(", ")
            );
        }
    }
    let directions: Vec<&Direction> = DIRECTIONS
        .iter()
        .filter(|d| direction_filter.is_empty() || direction_filter.contains(&d.key))
        .collect();
    let cases: Vec<&str> = if case_filter.is_empty() {
        CASES.to_vec()
    } else {
        case_filter
    };

    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-interop-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    std::fs::create_dir_all(tools_dir())?;
    eprintln!("==> logs in {}", logs.display());

    let phase = Instant::now();
    let grpc_go = install_grpc_go()?;
    let certs = certificates(&logs)?;
    let install_time = phase.elapsed();
    let phase = Instant::now();
    let ours = build_switchboard(&logs)?;
    let build_time = phase.elapsed();

    let phase = Instant::now();
    let mut columns = Vec::new();
    for direction in &directions {
        let cells = match run_direction(&logs, direction, &cases, (&grpc_go, &ours, &certs)) {
            Ok(cells) => cells,
            Err(error) => {
                // The server did not start: every case of the direction fails.
                let why = format!("{error:#}");
                CASES
                    .iter()
                    .map(|case| {
                        if !cases.contains(case) {
                            Cell::Skipped
                        } else if !direction.runs(case) {
                            Cell::NotApplicable
                        } else {
                            Cell::Fail {
                                why: why.clone(),
                                logs: Vec::new(),
                            }
                        }
                    })
                    .collect()
            }
        };
        columns.push(cells);
    }
    let run_time = phase.elapsed();

    // Logs of what failed, once each, before the table.
    let mut printed: Vec<&PathBuf> = Vec::new();
    for cell in columns.iter().flatten() {
        if let Cell::Fail { logs, .. } = cell {
            for log in logs {
                if !printed.contains(&log) {
                    printed.push(log);
                    print_logs(std::slice::from_ref(log));
                }
            }
        }
    }
    let failures = print_table(&directions, &columns);
    println!(
        "interop took {:.1}s (install {:.1}s, build {:.1}s, cases {:.1}s)",
        started.elapsed().as_secs_f64(),
        install_time.as_secs_f64(),
        build_time.as_secs_f64(),
        run_time.as_secs_f64()
    );
    if failures > 0 {
        bail!(
            "{failures} interop case(s) failed; logs kept in {}",
            logs.display()
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_cases_only_run_between_switchboard_peers() {
        for direction in &DIRECTIONS {
            let go = direction.client == Implementation::GrpcGo
                || direction.server == Implementation::GrpcGo;
            assert_eq!(
                direction.runs("client_compressed_unary"),
                !go,
                "{}",
                direction.key
            );
            assert!(direction.runs("large_unary"));
        }
    }
}
