//! `buffa-ingest`: the log-ingest service of this crate's library, served and called.
//!
//! * `buffa-ingest` serves on a free port, calls itself over Connect (JSON and binary),
//!   gRPC and gRPC-Web, checks every answer and exits (non-zero on a wrong answer);
//! * `buffa-ingest --addr HOST:PORT` only serves, with server reflection, until stopped,
//!   and prints `listening on http://ADDR` (for grpcurl and curl).

use std::net::SocketAddr;

use buffa_ingest::proto::{IngestRequest, LogRecord, LogServiceClient};
use buffa_ingest::router;
use switchboard::client::{Client, ClientConfig};
use switchboard::codec::Codec;
use switchboard::server::Server;
use switchboard::{Code, Protocol, Request};

fn record(service: &str, message: &str) -> LogRecord {
    LogRecord {
        time_unix_nanos: 1_764_460_800_000_000_000,
        service: service.to_owned(),
        message: message.to_owned(),
        attributes: [("region".to_owned(), "eu-west-1".to_owned())]
            .into_iter()
            .collect(),
        trace_id: vec![0xab; 16],
        ..Default::default()
    }
}

fn batch(records: Vec<LogRecord>) -> IngestRequest {
    IngestRequest {
        records,
        ..Default::default()
    }
}

/// Calls the server at `url` in every protocol and codec and checks each answer.
async fn check(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let configs = [
        ("Connect JSON", ClientConfig::default().codec(Codec::Json)),
        ("Connect binary", ClientConfig::default()),
        ("gRPC", ClientConfig::default().protocol(Protocol::Grpc)),
        (
            "gRPC-Web",
            ClientConfig::default().protocol(Protocol::GrpcWeb),
        ),
    ];
    for (name, config) in configs {
        let client = LogServiceClient::new(Client::h2c(url)?.with_config(config));

        // Unary: the response is a view too.
        let response = client
            .ingest(batch(vec![
                record("checkout", "order 1 paid"),
                record("search", "query took 12 ms"),
                record("checkout", "order 2 paid — 3 items"),
            ]))
            .await?;
        let ack = response.message().view();
        let services: Vec<&str> = ack.services.iter().copied().collect();
        if ack.accepted != 3 || ack.message_bytes != 52 || services != ["checkout", "search"] {
            return Err(format!(
                "{name}: Ingest answered {:?}",
                response.message().to_owned_message()
            )
            .into());
        }

        // A client stream of two batches.
        let batches = futures_util::stream::iter([
            batch(vec![record("a", "one")]),
            batch(vec![record("b", "two"), record("a", "three")]),
        ]);
        let response = client.ingest_stream(Request::new(batches)).await?;
        let ack = response.message().to_owned_message();
        if ack.accepted != 3 || ack.message_bytes != 11 || ack.services != ["a", "b"] {
            return Err(format!("{name}: IngestStream answered {ack:?}").into());
        }

        // The handler's error reaches the client with its code.
        let error = client
            .ingest(batch(vec![record("", "no service")]))
            .await
            .err()
            .ok_or_else(|| format!("{name}: a record without a service was accepted"))?;
        if error.code() != Code::InvalidArgument {
            return Err(format!("{name}: want invalid_argument, got {error}").into());
        }
        println!("{name:<15} ok");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let serve_only = match (args.next().as_deref(), args.next()) {
        (None, _) => None,
        (Some("--addr"), Some(addr)) => Some(addr.parse::<SocketAddr>()?),
        _ => return Err("usage: buffa-ingest [--addr HOST:PORT]".into()),
    };
    let addr = serve_only.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let (listener, local) = switchboard::server::bind(addr).await?;
    let server = Server::new(router());
    if serve_only.is_some() {
        println!("listening on http://{local}");
        server
            .serve_with_shutdown(listener, std::future::pending())
            .await?;
        return Ok(());
    }
    tokio::spawn(server.serve_with_shutdown(listener, std::future::pending()));
    check(&format!("http://{local}")).await?;
    println!("buffa-ingest: every protocol and codec answered as expected");
    Ok(())
}
