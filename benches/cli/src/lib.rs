//! What every Rust echo server in `benches/` does the same way, whatever its RPC library: the
//! `--addr HOST:PORT` argument the harness passes, and stopping on SIGTERM or SIGINT.
#![deny(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;

/// The address from `--addr HOST:PORT` (default 127.0.0.1:8080), the only argument; `--help`
/// prints `usage` and exits.
pub fn parse_addr(usage: &str) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    parse_addr_from(std::env::args().skip(1), usage)
}

fn parse_addr_from(
    mut args: impl Iterator<Item = String>,
    usage: &str,
) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let mut addr: SocketAddr = "127.0.0.1:8080".parse()?;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().ok_or("--addr needs HOST:PORT")?;
                addr = value
                    .parse()
                    .map_err(|e| format!("invalid --addr {value:?}: {e}"))?;
            }
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{usage}").into()),
        }
    }
    Ok(addr)
}

/// Completes on the first SIGTERM or SIGINT. The handlers are installed before it returns,
/// so a signal sent right after the `listening on` line is never missed.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn reads_the_address_or_defaults() {
        let addr = parse_addr_from(args(&["--addr", "127.0.0.1:9"]), "usage").unwrap();
        assert_eq!(addr, "127.0.0.1:9".parse().unwrap());
        let default = parse_addr_from(args(&[]), "usage").unwrap();
        assert_eq!(default, "127.0.0.1:8080".parse().unwrap());
        assert!(parse_addr_from(args(&["--addr"]), "usage").is_err());
        assert!(parse_addr_from(args(&["--addr", "nope"]), "usage").is_err());
        assert!(parse_addr_from(args(&["--port", "1"]), "usage").is_err());
    }
}
