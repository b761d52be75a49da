//! Peers that connect and then say nothing are closed in time: a silent TCP connection, half
//! an HTTP/2 preface, and a TLS handshake followed by silence. Before, each held its socket
//! (and a file descriptor) forever. Ordinary clients are unaffected.

use std::sync::Arc;
use std::time::Duration;

use switchboard::client::Client;
use switchboard::server::tls::server_config;
use switchboard::server::{Router, Server};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, TestServer, pki};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const FIRST_BYTES_TIMEOUT: Duration = Duration::from_millis(300);

fn server() -> Server {
    let router = Router::new().add_service(TestServiceServer::new(TestServer));
    Server::new(router).first_bytes_timeout(FIRST_BYTES_TIMEOUT)
}

/// Reads until the server closes the connection; fails if that takes more than 10 s.
async fn closed_by_the_server(mut stream: impl tokio::io::AsyncRead + Unpin) {
    let mut buf = [0u8; 1024];
    let started = std::time::Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {:?}", started.elapsed()),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            // What the server sends first (its HTTP/2 SETTINGS) is read and ignored.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn silent_and_half_started_connections_are_closed() {
    let running = Running::serve(server()).await;

    let silent = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    closed_by_the_server(silent).await;

    let mut half = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    closed_by_the_server(half).await;

    // An ordinary client, over both HTTP versions, is not affected.
    for client in [Client::h2c(&running.url()), Client::http1(&running.url())] {
        let client = TestServiceClient::new(client.unwrap());
        let reply = client
            .echo(EchoRequest {
                text: "hi".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(reply.message().text, "hi");
    }
    running.stop().await;
}

#[tokio::test]
async fn a_tls_handshake_followed_by_silence_is_closed() {
    let pki = pki();
    let tls = server_config(pki.server.0.as_bytes(), pki.server.1.as_bytes(), None).unwrap();
    let running = Running::serve(server().with_tls(tls)).await;
    let roots = switchboard::client::tls::client_config(Some(pki.ca.as_bytes()), None).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&roots));
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls_stream = connector
        .connect(name, tcp)
        .await
        .expect("the handshake completes");
    closed_by_the_server(tls_stream).await;
    running.stop().await;
}

/// A body trickled a byte at a time is cut once its grace is spent; a stream whose messages
/// come far apart is not (the rate applies within a message, not between messages).
#[tokio::test]
async fn a_trickled_body_is_cut_and_a_slow_stream_is_not() {
    let config = switchboard::server::ServerConfig::default()
        .min_request_rate(Duration::from_millis(300), 1024);
    let router = Router::new()
        .with_config(config)
        .add_service(TestServiceServer::new(TestServer));
    let running = Running::serve(Server::new(router)).await;

    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let head = "POST /switchboard.test.v1.TestService/Echo HTTP/1.1\r\nhost: x\r\n\
                content-type: application/json\r\ncontent-length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        // A byte every 100 ms: 100 bytes would take 10 s.
        for _ in 0..100 {
            if write.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = std::time::Instant::now();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&response).contains("deadline_exceeded") {
        let n = tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf))
            .await
            .expect("an answer before the body is done")
            .unwrap();
        assert!(
            n > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 504"), "{response}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    trickle.abort();

    // Messages a second apart, each arriving whole: the stream is slow, not its messages.
    let client = TestServiceClient::new(Client::h2c(&running.url()).unwrap());
    let spaced = futures_util::stream::unfold(0, |i| async move {
        if i == 3 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some((
            EchoRequest {
                text: i.to_string(),
                ..Default::default()
            },
            i + 1,
        ))
    });
    let reply = client
        .client_stream(switchboard::Request::new(spaced))
        .await
        .unwrap();
    assert_eq!(reply.message().text, "012");
    running.stop().await;
}
