//! What is measured: the servers, the protocols, the calls and the workloads built from them.

use std::path::{Path, PathBuf};

/// One benchmark server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Server {
    Switchboard,
    /// switchboard with the buffa message backend: requests decoded as zero-copy views.
    SwitchboardBuffa,
    Connectrpc,
    ConnectGo,
    Tonic,
    GrpcGo,
    Hyper,
}

impl Server {
    pub(crate) const ALL: [Server; 7] = [
        Server::Switchboard,
        Server::SwitchboardBuffa,
        Server::Connectrpc,
        Server::ConnectGo,
        Server::Tonic,
        Server::GrpcGo,
        Server::Hyper,
    ];

    /// The name `--only` takes and the report shows.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Server::Switchboard => "switchboard",
            Server::SwitchboardBuffa => "switchboard-buffa",
            Server::Connectrpc => "connectrpc",
            Server::ConnectGo => "connect-go",
            Server::Tonic => "tonic",
            Server::GrpcGo => "grpc-go",
            Server::Hyper => "hyper",
        }
    }

    /// The binary's file name.
    pub(crate) fn binary_name(self) -> &'static str {
        match self {
            Server::Switchboard => "switchboard-echo",
            Server::SwitchboardBuffa => "switchboard-echo-buffa",
            Server::Connectrpc => "connectrpc-echo",
            Server::ConnectGo => "connect-echo",
            Server::Tonic => "tonic-echo",
            Server::GrpcGo => "grpc-echo",
            Server::Hyper => "hyper-echo",
        }
    }

    /// Whether the binary comes from `benches/go` (else from the benches cargo workspace).
    pub(crate) fn is_go(self) -> bool {
        matches!(self, Server::ConnectGo | Server::GrpcGo)
    }

    /// The binary, given the Rust and Go output directories.
    pub(crate) fn binary(self, rust_bins: &Path, go_bins: &Path) -> PathBuf {
        let dir = if self.is_go() { go_bins } else { rust_bins };
        dir.join(self.binary_name())
    }

    /// The protocols to try: a library's full set, or what the ceiling server frames.
    pub(crate) fn protocols(self) -> &'static [Protocol] {
        const ALL: &[Protocol] = &[
            Protocol::Connect,
            Protocol::ConnectH1,
            Protocol::Grpc,
            Protocol::GrpcWeb,
        ];
        match self {
            Server::Switchboard
            | Server::SwitchboardBuffa
            | Server::Connectrpc
            | Server::ConnectGo => ALL,
            Server::Tonic => &[Protocol::Grpc, Protocol::GrpcWeb],
            Server::GrpcGo => &[Protocol::Grpc],
            Server::Hyper => &[Protocol::Connect, Protocol::ConnectH1, Protocol::Grpc],
        }
    }

    /// The calls it serves: hyper-echo only echoes unary bodies.
    pub(crate) fn serves(self, call: Call) -> bool {
        self != Server::Hyper || matches!(call, Call::Echo64 | Call::Echo16k)
    }

    /// Whether a protocol that fails verification counts as "not supported" rather than as a
    /// failure: the peers whose protocol support we probe instead of knowing it.
    pub(crate) fn probed(self) -> bool {
        matches!(self, Server::Connectrpc | Server::Tonic)
    }

    /// Whether the server echoes bytes without parsing them (verification compares bodies).
    pub(crate) fn echoes_bytes(self) -> bool {
        self == Server::Hyper
    }

    /// Parses `--only` names.
    pub(crate) fn parse(name: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|s| s.key() == name)
    }
}

/// A protocol, with the HTTP version it runs over.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Protocol {
    /// Connect over h2c.
    Connect,
    /// Connect unary over HTTP/1.1.
    ConnectH1,
    Grpc,
    GrpcWeb,
}

impl Protocol {
    pub(crate) fn title(self) -> &'static str {
        match self {
            Protocol::Connect => "Connect",
            Protocol::ConnectH1 => "Connect HTTP/1.1",
            Protocol::Grpc => "gRPC",
            Protocol::GrpcWeb => "gRPC-Web",
        }
    }

    pub(crate) fn is_connect(self) -> bool {
        matches!(self, Protocol::Connect | Protocol::ConnectH1)
    }

    pub(crate) fn is_http1(self) -> bool {
        self == Protocol::ConnectH1
    }

    /// The request headers (besides `:method`, `:path` and `content-length`).
    pub(crate) fn headers(self, call: Call) -> Vec<(&'static str, &'static str)> {
        match self {
            Protocol::Connect | Protocol::ConnectH1 if call.is_unary() => vec![
                ("content-type", "application/proto"),
                ("connect-protocol-version", "1"),
            ],
            Protocol::Connect | Protocol::ConnectH1 => vec![
                ("content-type", "application/connect+proto"),
                ("connect-protocol-version", "1"),
            ],
            Protocol::Grpc => vec![("content-type", "application/grpc"), ("te", "trailers")],
            Protocol::GrpcWeb => vec![
                ("content-type", "application/grpc-web+proto"),
                ("x-grpc-web", "1"),
            ],
        }
    }

    /// `--protocol` of `pingpong`.
    pub(crate) fn pingpong_name(self) -> &'static str {
        if self.is_connect() { "connect" } else { "grpc" }
    }
}

/// One RPC shape with its request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Call {
    Echo64,
    Echo16k,
    Ingest,
    ServerStream,
    ClientStream,
    Bidi,
}

impl Call {
    pub(crate) const ALL: [Call; 6] = [
        Call::Echo64,
        Call::Echo16k,
        Call::Ingest,
        Call::ServerStream,
        Call::ClientStream,
        Call::Bidi,
    ];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Call::Echo64 => "echo-64",
            Call::Echo16k => "echo-16k",
            Call::Ingest => "ingest",
            Call::ServerStream => "server-stream",
            Call::ClientStream => "client-stream",
            Call::Bidi => "bidi",
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Call::Echo64 => "unary Echo 64 B",
            Call::Echo16k => "unary Echo 16 KiB",
            Call::Ingest => "log ingest (50 records, ~20 KB)",
            Call::ServerStream => "server stream of 1,000 × 64 B",
            Call::ClientStream => "client stream of 1,000 × 64 B",
            Call::Bidi => "bidi ping-pong",
        }
    }

    pub(crate) fn path(self) -> &'static str {
        match self {
            Call::Echo64 | Call::Echo16k => "/bench.v1.EchoService/Echo",
            Call::Ingest => "/bench.v1.EchoService/Ingest",
            Call::ServerStream => "/bench.v1.EchoService/ServerStream",
            Call::ClientStream => "/bench.v1.EchoService/ClientStream",
            Call::Bidi => "/bench.v1.EchoService/Bidi",
        }
    }

    pub(crate) fn is_unary(self) -> bool {
        matches!(self, Call::Echo64 | Call::Echo16k | Call::Ingest)
    }

    /// The protocols a call is measured over (gRPC-Web only where it says something).
    pub(crate) fn protocols(self) -> &'static [Protocol] {
        match self {
            Call::Echo64 => &[
                Protocol::Connect,
                Protocol::Grpc,
                Protocol::GrpcWeb,
                Protocol::ConnectH1,
            ],
            Call::ServerStream => &[Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb],
            Call::Bidi => &[Protocol::Grpc, Protocol::Connect],
            Call::Echo16k | Call::Ingest | Call::ClientStream => {
                &[Protocol::Connect, Protocol::Grpc]
            }
        }
    }
}

/// The program producing the load.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Driver {
    H2load,
    Ghz,
    Pingpong,
}

impl Driver {
    pub(crate) fn title(self) -> &'static str {
        match self {
            Driver::H2load => "h2load",
            Driver::Ghz => "ghz",
            Driver::Pingpong => "pingpong",
        }
    }
}

/// One table of the report: a call at a concurrency, driven by one load generator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Workload {
    pub(crate) key: &'static str,
    pub(crate) call: Call,
    /// Calls in flight (streams for `pingpong`).
    pub(crate) concurrency: u32,
    pub(crate) driver: Driver,
    /// Restricts the call's protocols (ghz speaks gRPC only); empty means all of them.
    pub(crate) only: &'static [Protocol],
    /// Whether `--quick` measures it.
    pub(crate) quick: bool,
}

impl Workload {
    pub(crate) fn protocols(&self) -> Vec<Protocol> {
        self.call
            .protocols()
            .iter()
            .copied()
            .filter(|p| self.only.is_empty() || self.only.contains(p))
            .collect()
    }

    pub(crate) fn title(&self) -> String {
        let what = match self.driver {
            Driver::Pingpong => format!(
                "{}, {} streams × {} round trips of 64 B",
                self.call.title(),
                self.concurrency,
                PINGPONG_ROUND_TRIPS
            ),
            _ => format!("{}, {} in flight", self.call.title(), self.concurrency),
        };
        format!("{what} ({})", self.driver.title())
    }

    /// h2load's `-c` and `-m` for `protocol`: HTTP/1.1 has no multiplexing (and `-m` above 1
    /// would pipeline), so there every call in flight has its own connection; over h2 the
    /// calls spread as √c connections × √c streams (16 = 4 × 4, 64 = 8 × 8, 256 = 16 × 16).
    pub(crate) fn h2load_clients(&self, protocol: Protocol) -> (u32, u32) {
        if protocol.is_http1() {
            return (self.concurrency, 1);
        }
        let connections = (f64::from(self.concurrency).sqrt().round() as u32).max(1);
        (connections, self.concurrency / connections)
    }
}

/// Round trips per bidi stream before `pingpong` opens the next one.
pub(crate) const PINGPONG_ROUND_TRIPS: u32 = 100;
/// Connections ghz spreads its calls over.
pub(crate) const GHZ_CONNECTIONS: u32 = 4;

/// Every workload, in report order.
pub(crate) const WORKLOADS: [Workload; 9] = [
    Workload {
        key: "unary-64-c16",
        call: Call::Echo64,
        concurrency: 16,
        driver: Driver::H2load,
        only: &[],
        quick: true,
    },
    Workload {
        key: "unary-64-c64",
        call: Call::Echo64,
        concurrency: 64,
        driver: Driver::H2load,
        only: &[],
        quick: false,
    },
    Workload {
        key: "unary-64-c256",
        call: Call::Echo64,
        concurrency: 256,
        driver: Driver::H2load,
        only: &[],
        quick: false,
    },
    Workload {
        key: "unary-64-c64-ghz",
        call: Call::Echo64,
        concurrency: 64,
        driver: Driver::Ghz,
        only: &[Protocol::Grpc],
        quick: true,
    },
    Workload {
        key: "unary-16k-c16",
        call: Call::Echo16k,
        concurrency: 16,
        driver: Driver::H2load,
        only: &[],
        quick: false,
    },
    Workload {
        key: "ingest-c16",
        call: Call::Ingest,
        concurrency: 16,
        driver: Driver::H2load,
        only: &[],
        quick: false,
    },
    Workload {
        key: "server-stream-c16",
        call: Call::ServerStream,
        concurrency: 16,
        driver: Driver::H2load,
        only: &[],
        quick: true,
    },
    Workload {
        key: "client-stream-c16",
        call: Call::ClientStream,
        concurrency: 16,
        driver: Driver::H2load,
        only: &[],
        quick: false,
    },
    Workload {
        key: "bidi-s16",
        call: Call::Bidi,
        concurrency: 16,
        driver: Driver::Pingpong,
        only: &[],
        quick: true,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_maps_to_connections_and_streams() {
        let at = |c| Workload {
            concurrency: c,
            ..WORKLOADS[0]
        };
        assert_eq!(at(16).h2load_clients(Protocol::Grpc), (4, 4));
        assert_eq!(at(64).h2load_clients(Protocol::Connect), (8, 8));
        assert_eq!(at(256).h2load_clients(Protocol::GrpcWeb), (16, 16));
        assert_eq!(at(64).h2load_clients(Protocol::ConnectH1), (64, 1));
    }

    #[test]
    fn names_round_trip() {
        for server in Server::ALL {
            assert_eq!(Server::parse(server.key()), Some(server));
        }
        assert_eq!(Server::parse("nope"), None);
        assert!(!Server::Hyper.serves(Call::Ingest));
        assert!(Server::Hyper.serves(Call::Echo16k));
    }

    #[test]
    fn only_http1_for_connect_unary() {
        for workload in WORKLOADS {
            for protocol in workload.protocols() {
                if protocol.is_http1() {
                    assert_eq!(workload.call, Call::Echo64);
                }
            }
        }
        assert_eq!(WORKLOADS[3].protocols(), [Protocol::Grpc]);
    }
}
