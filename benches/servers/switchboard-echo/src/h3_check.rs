//! `h3-check URL CA_PEM`: switchboard's HTTP/3 client calls a `bench.v1.EchoService` server
//! (connect-go over quic-go, in `cargo xtask peers connect-go-h3`) with the Connect, gRPC-Web
//! and gRPC protocols, each with unary, server-stream, client-stream and full-duplex bidi
//! calls. Prints `PASS <check>` or `FAIL <check>: <why>` per check; exits 1 if any failed.
#![deny(unsafe_code)]

use std::time::Duration;

use futures_util::StreamExt as _;
use switchboard::client::{Client, ClientConfig, Http3Transport};
use switchboard::{Error, Protocol, Request};

#[allow(missing_docs)]
mod proto {
    switchboard::include_proto!("bench.v1");
}

use proto::*;

type Echo = EchoServiceClient<Http3Transport>;

/// Names the direction of the checks in the lines printed.
const LABEL: &str = "switchboard → connect-go, HTTP/3,";

fn payload(text: &str) -> EchoRequest {
    EchoRequest {
        payload: text.as_bytes().to_vec().into(),
    }
}

async fn unary(client: &Echo) -> Result<(), String> {
    let reply = client
        .echo(payload("hello"))
        .await
        .map_err(|e| e.to_string())?;
    match &reply.message().payload[..] {
        b"hello" => Ok(()),
        other => Err(format!("echoed {other:?}")),
    }
}

async fn server_stream(client: &Echo) -> Result<(), String> {
    let request = StreamRequest {
        count: 3,
        payload: b"s".to_vec().into(),
    };
    let mut stream = client
        .server_stream(request)
        .await
        .map_err(|e| e.to_string())?
        .into_message();
    let mut received = 0;
    while let Some(message) = stream.message().await.map_err(|e| e.to_string())? {
        if &message.payload[..] != b"s" {
            return Err(format!("message {received} is {:?}", message.payload));
        }
        received += 1;
    }
    if received != 3 {
        return Err(format!("{received} messages, want 3"));
    }
    Ok(())
}

async fn client_stream(client: &Echo) -> Result<(), String> {
    let messages = futures_util::stream::iter(["a", "bb", "ccc"].map(payload));
    let summary = client
        .client_stream(Request::new(messages))
        .await
        .map_err(|e| e.to_string())?
        .into_message();
    if (summary.messages, summary.bytes) != (3, 6) {
        return Err(format!("summary {summary:?}, want 3 messages of 6 bytes"));
    }
    Ok(())
}

/// Full duplex: each reply arrives before the next request is sent.
async fn bidi(client: &Echo) -> Result<(), String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<EchoRequest>(1);
    let requests = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut replies = client
        .bidi(Request::new(requests))
        .await
        .map_err(|e| e.to_string())?
        .into_message();
    for text in ["ping 1", "ping 2", "ping 3"] {
        tx.send(payload(text)).await.map_err(|e| e.to_string())?;
        let reply = replies
            .message()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the replies ended early")?;
        if &reply.payload[..] != text.as_bytes() {
            return Err(format!("echoed {:?}, want {text:?}", reply.payload));
        }
    }
    drop(tx);
    match replies.next().await {
        None => Ok(()),
        Some(other) => Err(format!("after the last reply: {other:?}, want the end")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(ca)) = (args.next(), args.next()) else {
        return Err("usage: h3-check URL CA_PEM".into());
    };
    let roots = switchboard::client::tls::client_config(Some(&std::fs::read(&ca)?), None)?;
    let mut failed = 0;
    for (name, protocol) in [
        ("connect", Protocol::Connect),
        ("grpc-web", Protocol::GrpcWeb),
        ("grpc", Protocol::Grpc),
    ] {
        let transport = Http3Transport::new(roots.clone())?;
        let client = EchoServiceClient::new(
            Client::new(&url, transport)?.with_config(
                ClientConfig::default()
                    .protocol(protocol)
                    .timeout(Duration::from_secs(10)),
            ),
        );
        for (shape, outcome) in [
            ("unary", unary(&client).await),
            ("server-stream", server_stream(&client).await),
            ("client-stream", client_stream(&client).await),
            ("bidi", bidi(&client).await),
        ] {
            match outcome {
                Ok(()) => println!("PASS {LABEL} {name} {shape}"),
                Err(error) => {
                    failed += 1;
                    println!("FAIL {LABEL} {name} {shape}: {error}");
                }
            }
        }
    }
    if failed > 0 {
        return Err(Error::internal(format!("{failed} check(s) failed")).into());
    }
    Ok(())
}
