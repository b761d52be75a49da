//! The demo binary, started for a test on a free port.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

/// The running demo; killed when dropped, if still running.
pub struct Demo(pub Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the demo on a free port; the running demo and its address.
#[allow(dead_code)] // Not every test file uses both starters.
pub fn start_demo() -> (Demo, String) {
    start_demo_with(&[])
}

/// Starts the demo on a free port with more arguments; the running demo and its address.
pub fn start_demo_with(args: &[&str]) -> (Demo, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eliza"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().unwrap();
    let demo = Demo(child);
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    // Keep reading: what the demo prints later (on shutdown) must not hit a closed pipe.
    std::thread::spawn(move || {
        let mut rest = String::new();
        while lines.read_line(&mut rest).is_ok_and(|n| n > 0) {
            eprint!("demo: {rest}");
            rest.clear();
        }
    });
    let addr = line
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .to_owned();
    (demo, addr)
}
