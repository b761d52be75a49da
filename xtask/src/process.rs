//! A program the suites start and wait for: the demo under the peers, the interop servers,
//! the benchmark servers, the browser page's static server.
//!
//! Every one of them runs with its output in log files, announces itself with a line (its
//! banner: `listening on ADDR` and the like) that says where it serves, is given up on if it
//! exits or stays silent, and is killed when dropped, whichever way the run ends.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::steps::{print_logs, slug};

/// A loopback port nobody listens on right now, for a program told where to listen.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Which of the program's outputs carries its banner.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Banner {
    Stdout,
    Stderr,
}

/// A started program, killed when dropped.
pub(crate) struct Process {
    name: String,
    child: Child,
    /// Its stdout and stderr logs, in that order.
    pub(crate) logs: Vec<PathBuf>,
}

impl Process {
    /// Starts `command` with its output in `<logs>/<name>.stdout.log` and `.stderr.log`.
    fn spawn(logs: &Path, name: &str, command: &mut Command) -> Result<Process> {
        eprintln!("==> start {name}");
        let base = logs.join(slug(name));
        let out_path = base.with_extension("stdout.log");
        let err_path = base.with_extension("stderr.log");
        let child = command
            .stdin(Stdio::null())
            .stdout(File::create(&out_path)?)
            .stderr(File::create(&err_path)?)
            .spawn()
            .with_context(|| format!("could not start {:?}", command.get_program()))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            logs: vec![out_path, err_path],
        })
    }

    /// Starts `command` with its output in `<logs>/<name>.stdout.log` and `.stderr.log`, and
    /// waits until a whole line of the `banner` output gives a value to `announces` (what
    /// the line says: an address, a port). Fails, printing the logs, if the program exits
    /// first or `timeout` passes.
    pub(crate) fn start<T>(
        logs: &Path,
        name: &str,
        command: &mut Command,
        banner: Banner,
        timeout: Duration,
        announces: impl Fn(&str) -> Option<T>,
    ) -> Result<(Process, T)> {
        let mut process = Process::spawn(logs, name, command)?;
        let watched = match banner {
            Banner::Stdout => process.logs[0].clone(),
            Banner::Stderr => process.logs[1].clone(),
        };
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&watched).unwrap_or_default();
            let announced = text
                .split_inclusive('\n')
                .filter(|line| line.ends_with('\n'))
                .find_map(|line| announces(line.trim_end()));
            if let Some(value) = announced {
                return Ok((process, value));
            }
            if let Some(status) = process.child.try_wait()? {
                print_logs(&process.logs);
                bail!("{name} exited with {status} before it announced itself");
            }
            if Instant::now() >= deadline {
                print_logs(&process.logs);
                bail!(
                    "{name} did not announce itself within {}s",
                    timeout.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `command` (output in logs, as [`Process::start`]) and waits until `port` on the
    /// loopback interface accepts connections: for programs that announce nothing (nginx,
    /// HAProxy).
    pub(crate) fn start_listening(
        logs: &Path,
        name: &str,
        command: &mut Command,
        port: u16,
        timeout: Duration,
    ) -> Result<Process> {
        let mut process = Process::spawn(logs, name, command)?;
        let deadline = Instant::now() + timeout;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = process.child.try_wait()? {
                print_logs(&process.logs);
                bail!("{name} exited with {status} before listening on port {port}");
            }
            if Instant::now() >= deadline {
                print_logs(&process.logs);
                bail!(
                    "{name} did not listen on port {port} within {}s",
                    timeout.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(process)
    }

    /// Sends `signal` (`TERM`, `KILL`, ...) with `kill(1)`.
    pub(crate) fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {} ({}) failed", self.pid(), self.name);
        }
        Ok(())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Ok` while the program runs; why it stopped otherwise.
    pub(crate) fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited with {status}", self.name)),
            Err(error) => Err(format!("{}: {error}", self.name)),
        }
    }

    /// Waits up to `timeout` for the program to exit; its status if it did.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_ready_once_its_banner_line_is_whole() {
        let logs = std::env::temp_dir().join(format!("xtask-process-{}", std::process::id()));
        std::fs::create_dir_all(&logs).unwrap();
        let (mut process, port) = Process::start(
            &logs,
            "printer",
            Command::new("sh").args([
                "-c",
                "echo starting; echo 'listening on 127.0.0.1:4242'; sleep 30",
            ]),
            Banner::Stdout,
            Duration::from_secs(10),
            |line| {
                line.strip_prefix("listening on 127.0.0.1:")?
                    .parse::<u16>()
                    .ok()
            },
        )
        .unwrap();
        assert_eq!(port, 4242);
        assert!(process.alive().is_ok());
        drop(process);

        let quitter = Process::start(
            &logs,
            "quitter",
            Command::new("sh").args(["-c", "echo nothing to see >&2; exit 3"]),
            Banner::Stderr,
            Duration::from_secs(10),
            |line| line.strip_prefix("listening on ").map(str::to_owned),
        );
        let error = quitter.err().expect("a program that exits is not ready");
        assert!(error.to_string().contains("exited"), "{error}");
        let _ = std::fs::remove_dir_all(&logs);
    }
}
