//! Command-line flags, parsed by hand: a dozen flags do not justify an argument-parsing
//! dependency in a load driver.

use std::net::SocketAddr;
use std::time::Duration;

/// Printed for `--help` and after a flag error.
pub const USAGE: &str = "\
usage: pingpong --addr HOST:PORT [options]

Drives bench.v1.EchoService/Bidi over h2c: each stream sends one message, waits for its
echo, and repeats --round-trips times before half-closing; then a new stream (RPC) starts.

  --addr HOST:PORT       server address (required)
  --protocol P           grpc or connect (default grpc)
  --connections N        HTTP/2 connections (default 1)
  --streams S            concurrent streams in total, spread over the connections (default 16)
  --round-trips M        round trips per stream, i.e. per RPC (default 100)
  --payload BYTES        payload size of every message (default 64)
  --warmup SECS          round trips in this first period are not counted (default 1)
  --duration SECS        measure for this long (default 5)
  --total K              instead of --duration: measure exactly K round trips
  --stall-timeout SECS   give up when no round trip completes for this long (default 30)
  --json                 print one JSON object instead of text
  --hold                 instead of a load: open --connections, then --streams bidi calls
                         one after another (0 allowed), each with one round trip and left
                         open; print 'holding S streams on C connections' and keep everything
                         open until killed. For measuring a server's memory per idle
                         connection and per open stream.

Servers built on the h2 crate (0.4.20+) hang up on a connection that leaves about a hundred
small DATA frames unread at once, which a burst from more than ~100 streams on one
connection can do: keep --streams / --connections at or below about 100.
";

/// Which RPC protocol to speak on the HTTP/2 stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC: `application/grpc+proto`, status in the HTTP trailers.
    Grpc,
    /// Connect streaming: `application/connect+proto`, status in an end-of-stream envelope.
    Connect,
}

/// When measurement stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Start no round trip once this long has passed since the end of the warm-up.
    Duration(Duration),
    /// Measure exactly this many round trips (the harness uses it for instruction counts).
    Total(u64),
}

/// Everything the flags configure.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// Server address.
    pub addr: SocketAddr,
    /// gRPC or Connect.
    pub protocol: Protocol,
    /// Number of HTTP/2 connections.
    pub connections: usize,
    /// Concurrent streams in total; stream `i` uses connection `i % connections`.
    pub streams: usize,
    /// Round trips per RPC before the client half-closes.
    pub round_trips: u64,
    /// Payload bytes per message.
    pub payload: usize,
    /// Uncounted period at the start.
    pub warmup: Duration,
    /// When to stop.
    pub limit: Limit,
    /// How long without any completed round trip before the run is abandoned.
    pub stall_timeout: Duration,
    /// Print JSON instead of text.
    pub json: bool,
    /// Hold connections and idle streams open instead of driving a load (see `--hold`).
    pub hold: bool,
}

/// What parsing decided.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these arguments.
    Run(Args),
    /// `--help` was given.
    Help,
}

/// Parses the flags (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut addr = None;
    let mut protocol = Protocol::Grpc;
    let mut connections = 1usize;
    let mut streams = 16usize;
    let mut round_trips = 100u64;
    let mut payload = 64usize;
    let mut warmup = Duration::from_secs(1);
    let mut duration = None;
    let mut total = None;
    let mut stall_timeout = Duration::from_secs(30);
    let mut json = false;
    let mut hold = false;

    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (flag.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--json" => json = true,
            "--hold" => hold = true,
            "--addr" => {
                let v = value()?;
                addr = Some(
                    v.parse()
                        .map_err(|e| format!("invalid --addr {v:?}: {e}"))?,
                );
            }
            "--protocol" => {
                protocol = match value()?.as_str() {
                    "grpc" => Protocol::Grpc,
                    "connect" => Protocol::Connect,
                    other => {
                        return Err(format!("--protocol must be grpc or connect, not {other:?}"));
                    }
                }
            }
            "--connections" => connections = positive(&name, &value()?)?,
            "--streams" => streams = number(&name, &value()?)?,
            "--round-trips" => round_trips = positive(&name, &value()?)?,
            "--payload" => payload = number(&name, &value()?)?,
            "--warmup" => warmup = seconds(&name, &value()?, true)?,
            "--duration" => duration = Some(seconds(&name, &value()?, false)?),
            "--total" => total = Some(positive(&name, &value()?)?),
            "--stall-timeout" => stall_timeout = seconds(&name, &value()?, false)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    let addr = addr.ok_or("--addr is required")?;
    if streams == 0 && !hold {
        return Err("--streams must be at least 1".into());
    }
    if streams < connections && !hold {
        return Err(format!(
            "--streams ({streams}) must be at least --connections ({connections})"
        ));
    }
    if payload > u32::MAX as usize / 2 {
        return Err("--payload is too large".into());
    }
    let limit = match (duration, total) {
        (Some(_), Some(_)) => return Err("give --duration or --total, not both".into()),
        (_, Some(total)) => Limit::Total(total),
        (Some(duration), None) => Limit::Duration(duration),
        (None, None) => Limit::Duration(Duration::from_secs(5)),
    };
    Ok(Parsed::Run(Args {
        addr,
        protocol,
        connections,
        streams,
        round_trips,
        payload,
        warmup,
        limit,
        stall_timeout,
        json,
        hold,
    }))
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name} needs a non-negative integer, not {value:?}"))
}

fn positive<T: std::str::FromStr + PartialEq + Default>(
    name: &str,
    value: &str,
) -> Result<T, String> {
    let n: T = number(name, value)?;
    if n == T::default() {
        return Err(format!("{name} must be at least 1"));
    }
    Ok(n)
}

/// Seconds as a decimal (`0.5` is allowed); zero only where `zero_ok`.
fn seconds(name: &str, value: &str, zero_ok: bool) -> Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("{name} needs a number of seconds, not {value:?}"))?;
    if !secs.is_finite() || secs < 0.0 || (secs == 0.0 && !zero_ok) || secs > 1e9 {
        return Err(format!("{name} out of range: {value:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Parsed::Run(args) => Ok(args),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults() {
        let args = run(&["--addr", "127.0.0.1:9000"]).unwrap();
        assert_eq!(args.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(args.protocol, Protocol::Grpc);
        assert_eq!(args.connections, 1);
        assert_eq!(args.streams, 16);
        assert_eq!(args.round_trips, 100);
        assert_eq!(args.payload, 64);
        assert_eq!(args.warmup, Duration::from_secs(1));
        assert_eq!(args.limit, Limit::Duration(Duration::from_secs(5)));
        assert!(!args.json);
    }

    #[test]
    fn every_flag() {
        let args = run(&[
            "--addr=127.0.0.1:1",
            "--protocol",
            "connect",
            "--connections",
            "2",
            "--streams=4",
            "--round-trips",
            "3",
            "--payload",
            "0",
            "--warmup",
            "0",
            "--total",
            "1000",
            "--stall-timeout",
            "2.5",
            "--json",
        ])
        .unwrap();
        assert_eq!(args.protocol, Protocol::Connect);
        assert_eq!(
            (args.connections, args.streams, args.round_trips),
            (2, 4, 3)
        );
        assert_eq!(args.payload, 0);
        assert_eq!(args.warmup, Duration::ZERO);
        assert_eq!(args.limit, Limit::Total(1000));
        assert_eq!(args.stall_timeout, Duration::from_millis(2500));
        assert!(args.json);
        assert_eq!(
            run(&["--addr", "127.0.0.1:1", "--duration", "0.5"])
                .unwrap()
                .limit,
            Limit::Duration(Duration::from_millis(500))
        );
    }

    #[test]
    fn hold_takes_idle_connections() {
        let args = run(&[
            "--addr",
            "127.0.0.1:1",
            "--hold",
            "--connections",
            "3",
            "--streams",
            "0",
        ])
        .unwrap();
        assert!(args.hold);
        assert_eq!((args.connections, args.streams), (3, 0));
        assert!(!run(&["--addr", "127.0.0.1:1"]).unwrap().hold);
    }

    #[test]
    fn errors() {
        assert!(run(&[]).is_err());
        assert!(run(&["--addr", "nope"]).is_err());
        assert!(run(&["--addr", "127.0.0.1:1", "--protocol", "rest"]).is_err());
        assert!(run(&["--addr", "127.0.0.1:1", "--streams", "0"]).is_err());
        assert!(
            run(&[
                "--addr",
                "127.0.0.1:1",
                "--connections",
                "3",
                "--streams",
                "2"
            ])
            .is_err()
        );
        assert!(run(&["--addr", "127.0.0.1:1", "--duration", "1", "--total", "5"]).is_err());
        assert!(run(&["--addr", "127.0.0.1:1", "--duration", "0"]).is_err());
        assert!(run(&["--addr", "127.0.0.1:1", "--warmup", "-1"]).is_err());
        assert!(run(&["--addr", "127.0.0.1:1", "--bogus"]).is_err());
        assert!(run(&["--addr"]).is_err());
        assert_eq!(run(&["--help"]).unwrap_err(), "help");
    }
}
