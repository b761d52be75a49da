//! `cargo xtask browser`: a web page on one origin calls the Eliza demo on another, in real
//! headless Chromium.
//!
//! The page (`browser/app`) is bundled with esbuild from connect-web (Connect JSON, binary and
//! GET; gRPC-Web), Google's grpc-web client in its default text mode, and messages generated
//! with buf + protoc-gen-es. It is served from `http://localhost:PORT` by a static file server
//! while the demo listens on `http://127.0.0.1:OTHER`, so every call is cross-origin and needs
//! the demo's CORS answers. puppeteer-core drives Debian's `chromium-headless-shell` (installed
//! with apt when missing, on CI), reads the page's verdicts, and saves a screenshot to
//! `target/browser/eliza-cross-origin.png`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::peers::{Server, build_eliza, generate_connect_es, npm_install};
use crate::process::{Banner, Process};
use crate::steps::{print_logs, run_step};
use crate::{target_dir, workspace_root};

/// Where Debian's package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium-headless-shell";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

/// Entry point.
pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-browser-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> browser: logs in {}", logs.display());
    let chromium = chromium(&logs)?;
    let app = install_packages(&logs)?;
    let site = bundle(&logs, &app, &work)?;
    let eliza = build_eliza(&logs)?;
    let demo = Server::start(&logs, "eliza-browser", &eliza, None)?;
    let page_server = StaticServer::start(&site, &logs)?;
    let screenshots = target_dir().join("browser");
    std::fs::create_dir_all(&screenshots)?;
    let screenshot = screenshots.join("eliza-cross-origin.png");
    let url = format!(
        "http://localhost:{}/index.html?api=http://{}",
        page_server.port, demo.addr
    );
    let step = run_step(
        &logs,
        "headless Chromium",
        Command::new("node")
            .arg(app.join("drive.mjs"))
            .arg(&chromium)
            .arg(&url)
            .arg(&screenshot)
            .current_dir(&app),
        STEP_TIMEOUT,
    )?;
    eprint!("{}", step.stdout);
    drop(page_server);
    let passed = step.success();
    if !passed {
        print_logs(&step.logs);
        print_logs(demo.logs());
    }
    drop(demo);
    eprintln!("    screenshot: {}", screenshot.display());
    eprintln!("browser took {:.1}s", started.elapsed().as_secs_f64());
    if !passed {
        bail!("the cross-origin browser check failed: {}", step.failure());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The headless browser: `$SWITCHBOARD_CHROMIUM`, else Debian's package, installed with apt
/// when missing and this process may (root, as on CI).
fn chromium(logs: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("SWITCHBOARD_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let path = PathBuf::from(CHROMIUM);
    if path.exists() {
        eprintln!("==> chromium-headless-shell: installed at {CHROMIUM}");
        return Ok(path);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        bail!(
            "{CHROMIUM} is missing: install Debian's chromium-headless-shell \
             (apt-get install chromium-headless-shell) or set SWITCHBOARD_CHROMIUM"
        );
    }
    crate::steps::apt_install(logs, &["chromium-headless-shell"], INSTALL_TIMEOUT)?;
    Ok(path)
}

/// `npm install` of `browser/package.json` into `<tools>/browser-app`, reinstalled when the
/// manifest changes; the page's sources and the driver are copied next to the packages.
fn install_packages(logs: &Path) -> Result<PathBuf> {
    let source = workspace_root().join("browser");
    let dir = npm_install(logs, &source.join("package.json"), "browser-app", "browser")?;
    for (from, to) in [
        ("app/main.js", "main.js"),
        ("app/index.html", "index.html"),
        ("drive.mjs", "drive.mjs"),
    ] {
        std::fs::copy(source.join(from), dir.join(to))
            .with_context(|| format!("copying browser/{from}"))?;
    }
    Ok(dir)
}

/// Generates the messages, bundles the page, and returns the directory to serve.
fn bundle(logs: &Path, app: &Path, work: &Path) -> Result<PathBuf> {
    let bin = app.join("node_modules").join(".bin");
    generate_connect_es(logs, app)?.check()?;
    let site = work.join("site");
    std::fs::create_dir_all(&site)?;
    run_step(
        logs,
        "esbuild (the page)",
        Command::new(bin.join("esbuild"))
            .args([
                "main.js",
                "--bundle",
                "--format=esm",
                "--target=es2022",
                "--log-level=warning",
            ])
            .arg(format!("--outfile={}", site.join("main.js").display()))
            .current_dir(app),
        STEP_TIMEOUT,
    )?
    .check()?;
    std::fs::copy(app.join("index.html"), site.join("index.html"))?;
    Ok(site)
}

/// Python's static file server on a free loopback port, serving the page's origin.
struct StaticServer {
    _process: Process,
    port: u16,
}

impl StaticServer {
    /// Starts it on port 0 and reads the port it took from its banner (`Serving HTTP on
    /// 127.0.0.1 port N ...`; `-u` so the banner is not held in a buffer).
    fn start(root: &Path, logs: &Path) -> Result<StaticServer> {
        let mut command = Command::new("python3");
        command
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .arg("--directory")
            .arg(root);
        let (process, port) = Process::start(
            logs,
            "page-server",
            &mut command,
            Banner::Stdout,
            Duration::from_secs(20),
            |line| {
                let rest = line.split(" port ").nth(1)?;
                rest.split_whitespace().next()?.parse::<u16>().ok()
            },
        )?;
        Ok(StaticServer {
            _process: process,
            port,
        })
    }
}
