//! What goes wrong at the connection level reaches the operator through `tracing`: a TLS
//! handshake that fails is logged (at info) with the peer's address.

use std::sync::{Arc, Mutex};

use switchboard::server::tls::server_config;
use switchboard::server::{Router, Server};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, TestServer, pki};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut *self.0.lock().unwrap(), buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the server's tasks run where the test installed its subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_tls_handshake_is_logged() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let pki = pki();
    let tls = server_config(pki.server.0.as_bytes(), pki.server.1.as_bytes(), None).unwrap();
    let router = Router::new().add_service(TestServiceServer::new(TestServer));
    let running = Running::serve(Server::new(router).with_tls(tls)).await;

    // Plain HTTP to the TLS port: not a TLS ClientHello.
    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut rest),
    )
    .await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert!(log.contains("127.0.0.1"), "the peer's address: {log}");
    running.stop().await;
}
