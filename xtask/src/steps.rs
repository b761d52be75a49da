//! Logged, time-limited subprocesses shared by the tasks that drive external tools
//! (peers, interop): every step writes its output to log files that are printed on failure.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// How a logged step ended.
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) outcome: Outcome,
    pub(crate) stdout: String,
    pub(crate) logs: Vec<PathBuf>,
}

pub(crate) enum Outcome {
    Exited(ExitStatus),
    /// Ran out of time (this many seconds) and was killed.
    TimedOut(u64),
    /// Could not be started at all.
    NotStarted(String),
}

impl Step {
    pub(crate) fn success(&self) -> bool {
        matches!(self.outcome, Outcome::Exited(status) if status.success())
    }

    /// Why the step failed, for the table.
    pub(crate) fn failure(&self) -> String {
        match &self.outcome {
            Outcome::Exited(status) => format!("exited with {status}"),
            Outcome::TimedOut(seconds) => format!("timed out after {seconds}s"),
            Outcome::NotStarted(why) => why.clone(),
        }
    }

    /// Fails unless the step succeeded, printing its logs.
    pub(crate) fn check(self) -> Result<Step> {
        if self.success() {
            return Ok(self);
        }
        print_logs(&self.logs);
        bail!("{} {}", self.name, self.failure())
    }
}

/// A file name from a step name.
pub(crate) fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Runs `command` with its stdout and stderr in `<logs>/<name>.{stdout,stderr}.log`, killed
/// after `timeout`.
pub(crate) fn run_step(
    logs: &Path,
    name: &str,
    command: &mut Command,
    timeout: Duration,
) -> Result<Step> {
    eprintln!("==> {name}");
    let base = logs.join(slug(name));
    let out_path = base.with_extension("stdout.log");
    let err_path = base.with_extension("stderr.log");
    let started = Instant::now();
    let spawned = command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            let why = format!("could not start {:?}: {error}", command.get_program());
            std::fs::write(&err_path, format!("{why}\n"))?;
            return Ok(Step {
                name: name.to_owned(),
                outcome: Outcome::NotStarted(why),
                stdout: String::new(),
                logs: vec![err_path],
            });
        }
    };
    let outcome = match wait_with_timeout(&mut child, timeout)? {
        Some(status) => Outcome::Exited(status),
        None => Outcome::TimedOut(timeout.as_secs()),
    };
    if started.elapsed() > Duration::from_secs(2) {
        eprintln!("    {name}: {:.1}s", started.elapsed().as_secs_f64());
    }
    Ok(Step {
        name: name.to_owned(),
        outcome,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        logs: vec![out_path, err_path],
    })
}

/// Waits for `child`, killing it after `timeout` (then `None`).
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Prints log files that have something in them.
pub(crate) fn print_logs(logs: &[PathBuf]) {
    for path in logs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.trim().is_empty() {
            continue;
        }
        eprintln!("----- {} -----", path.display());
        eprintln!("{}", text.trim_end());
        eprintln!("----- end of {} -----", path.display());
    }
}

/// Installs Debian packages (`apt-get update`, then `apt-get install -y`), as the tasks that
/// need a system tool do when it is missing.
/// Installs the Debian packages providing the programs (`(program, package)`) that are not on
/// the PATH.
pub(crate) fn ensure_apt(logs: &Path, wanted: &[(&str, &str)], timeout: Duration) -> Result<()> {
    let on_path = |program: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(logs, &missing, timeout)
}

pub(crate) fn apt_install(logs: &Path, packages: &[&str], timeout: Duration) -> Result<()> {
    run_step(
        logs,
        "apt-get update",
        Command::new("apt-get").arg("update"),
        timeout,
    )?
    .check()?;
    run_step(
        logs,
        &format!("apt-get install {}", packages.join(" ")),
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages),
        timeout,
    )?
    .check()?;
    Ok(())
}

/// The first line `program args` prints (stdout, else stderr): a tool's version for a report.
pub(crate) fn first_line(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    let Ok(out) = Command::new(program).args(args).output() else {
        return "not available".to_owned();
    };
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or("unknown")
        .trim()
        .to_owned()
}
