//! A benchmark server process: started (optionally pinned to a CPU, optionally under
//! valgrind) on a free loopback port, waited for until it prints `listening on`, watched
//! through `/proc` while it serves, and stopped with SIGTERM, which it must answer by exiting
//! with status 0.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::process::{Banner, Process, free_port};

/// How a server is wrapped.
pub(crate) struct Launch<'a> {
    pub(crate) binary: &'a Path,
    /// The CPU it is pinned to with `taskset`.
    pub(crate) cpu: Option<u32>,
    /// `valgrind --tool=callgrind` and the file it writes.
    pub(crate) callgrind: Option<(&'a Path, &'a Path)>,
    /// A library to `LD_PRELOAD` into the server (the frozen wall clock of callgrind runs).
    pub(crate) preload: Option<&'a Path>,
    /// How long it may take to print `listening on`.
    pub(crate) start_timeout: Duration,
}

/// A running server, killed when dropped, whichever way the run ends.
pub(crate) struct Running {
    name: String,
    process: Process,
    pub(crate) port: u16,
}

impl Running {
    /// Starts the server and waits for its banner.
    pub(crate) fn start(logs: &Path, name: &str, launch: &Launch<'_>) -> Result<Running> {
        let port = free_port()?;
        let mut args: Vec<String> = Vec::new();
        if let Some((valgrind, out_file)) = launch.callgrind {
            args.push(valgrind.display().to_string());
            args.push("--tool=callgrind".to_owned());
            args.push(format!("--callgrind-out-file={}", out_file.display()));
        }
        args.push(launch.binary.display().to_string());
        args.push("--addr".to_owned());
        args.push(format!("127.0.0.1:{port}"));
        let mut command = super::pinned(launch.cpu, Path::new(&args[0]), &args[1..]);
        if launch.callgrind.is_some() {
            // Go preempts goroutines with signals (SIGURG), which trips an assertion in
            // callgrind's signal handling; without them Go runs under callgrind. Rust servers
            // ignore the variable.
            command.env("GODEBUG", "asyncpreemptoff=1");
            // valgrind runs one thread at a time anyway; a second tokio worker would only
            // add cross-thread wake-ups (and instructions) whose number depends on how the
            // threads happened to be scheduled. Pinned to one CPU, tokio already starts one
            // worker; this makes it one when the server is not pinned too. Other servers
            // ignore the variable.
            command.env("TOKIO_WORKER_THREADS", "1");
        }
        if let Some(library) = launch.preload {
            // valgrind keeps the variable for its guest (after its own preloads); a Go
            // server, linked statically, ignores it.
            command.env("LD_PRELOAD", library);
        }
        let (process, ()) = Process::start(
            logs,
            name,
            &mut command,
            Banner::Stdout,
            launch.start_timeout,
            |line| line.contains("listening on").then_some(()),
        )?;
        Ok(Running {
            name: name.to_owned(),
            process,
            port,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its stdout and stderr logs.
    pub(crate) fn logs(&self) -> &[PathBuf] {
        &self.process.logs
    }

    /// `Err(why)` if the server is no longer running.
    pub(crate) fn alive(&mut self) -> Result<(), String> {
        self.process.alive()
    }

    /// User plus system CPU time so far, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        cpu_ticks(&stat)
    }

    /// The write system calls it has made so far (`syscw` of `/proc/<pid>/io`: `write`,
    /// `writev`, `sendmsg`...), which is how many times it handed the kernel bytes to send.
    pub(crate) fn write_calls(&self) -> Result<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid()))?;
        write_calls(&io)
    }

    /// The peak resident set size so far (`VmHWM`), in KiB.
    pub(crate) fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        peak_rss_kib(&status)
    }

    /// Sends SIGTERM and waits for a clean exit: status 0 within `timeout`.
    pub(crate) fn stop(mut self, timeout: Duration) -> Result<(), String> {
        self.alive()?;
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        if !sent.is_ok_and(|s| s.success()) {
            return Err(format!("could not send SIGTERM to {}", self.name));
        }
        match self.process.wait_exit(timeout) {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("{} exited with {status} on SIGTERM", self.name)),
            None => Err(format!(
                "{} still running {}s after SIGTERM",
                self.name,
                timeout.as_secs()
            )),
        }
    }
}

/// The number on the `KEY:` line of a `/proc` file of `KEY: value` lines (`status`, `io`),
/// without the `kB` unit `status` gives sizes in.
pub(crate) fn proc_number(text: &str, key: &str) -> Result<u64> {
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .with_context(|| format!("no {key} line"))?;
    Ok(value.trim().trim_end_matches("kB").trim().parse()?)
}

/// `syscw` from `/proc/<pid>/io`.
pub(crate) fn write_calls(io: &str) -> Result<u64> {
    proc_number(io, "syscw")
}

/// utime + stime from `/proc/<pid>/stat` (fields 14 and 15; the command name in field 2 may
/// hold spaces and parentheses, so counting starts after its closing parenthesis).
pub(crate) fn cpu_ticks(stat: &str) -> Result<u64> {
    let after_name = &stat[stat.rfind(')').context("no command name in stat")? + 1..];
    // After the name: field 3 (state) is the first, so utime (14) is at index 11.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| -> Result<u64> {
        Ok(fields
            .get(index)
            .context("stat is too short")?
            .parse::<u64>()?)
    };
    Ok(field(11)? + field(12)?)
}

/// `VmHWM:  12345 kB` from `/proc/<pid>/status`.
pub(crate) fn peak_rss_kib(status: &str) -> Result<u64> {
    proc_number(status, "VmHWM")
}

/// The CPUs this process may run on, from `Cpus_allowed_list:` in `/proc/self/status`
/// (`0-1`, `0,2-3`, ...), in order.
pub(crate) fn allowed_cpus(status: &str) -> Vec<u32> {
    let Some(list) = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
    else {
        return Vec::new();
    };
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(first), Ok(last)) = (first.trim().parse::<u32>(), last.trim().parse::<u32>()) {
            cpus.extend(first..=last);
        }
    }
    cpus
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when that fails).
pub(crate) fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_past_an_awkward_name() {
        let stat = "4242 (tokio (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 27 0 0 20 0 3 0 \
                    99 123456 789 18446744073709551615";
        assert_eq!(cpu_ticks(stat).unwrap(), 177);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        cpu_ticks(&own).unwrap();
    }

    #[test]
    fn reads_the_allowed_cpus() {
        assert_eq!(allowed_cpus("Name: x\nCpus_allowed_list:\t0-1\n"), [0, 1]);
        assert_eq!(
            allowed_cpus("Cpus_allowed_list:\t0,2-4,7\n"),
            [0, 2, 3, 4, 7]
        );
        assert_eq!(allowed_cpus("Cpus_allowed_list:\t3\n"), [3]);
        assert!(allowed_cpus("Name: x\n").is_empty());
    }

    #[test]
    fn reads_peak_rss() {
        let status = "Name:\tx\nVmPeak:\t  10000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(peak_rss_kib(status).unwrap(), 5120);
        assert!(peak_rss_kib("Name: x\n").is_err());
    }

    #[test]
    fn reads_write_calls() {
        let io = "rchar: 10\nwchar: 20\nsyscr: 3\nsyscw: 41\nread_bytes: 0\n";
        assert_eq!(write_calls(io).unwrap(), 41);
        assert!(write_calls("rchar: 1\n").is_err());
        let own = std::fs::read_to_string("/proc/self/io").unwrap();
        write_calls(&own).unwrap();
    }
}
