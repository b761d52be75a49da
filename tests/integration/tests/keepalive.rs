//! A peer that vanishes without closing its connection (a replica whose host lost power, a
//! network cut) is noticed by HTTP/2 keepalive pings: the call in flight fails `unavailable`
//! instead of waiting forever on a silent socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchboard::client::{Client, HttpTransport};
use switchboard::server::ServerConfig;
use switchboard::{Code, Request};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Copies `from` to `to` until `cut` is set; then holds both open and silent.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: Arc<AtomicBool>,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut.load(Ordering::SeqCst) {
            break;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Vanished: never close, never answer.
    std::future::pending::<()>().await;
    drop((from, to));
}

/// A TCP relay to `target` whose traffic stops, without a close, once `cut` is set.
async fn relay(target: std::net::SocketAddr, cut: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(target).await.unwrap();
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pipe(client_read, server_write, cut.clone()));
            tokio::spawn(pipe(server_read, client_write, cut.clone()));
        }
    });
    addr
}

#[tokio::test]
async fn keepalive_pings_fail_a_call_whose_peer_vanished() {
    let server = start(ServerConfig::default()).await;
    let cut = Arc::new(AtomicBool::new(false));
    let addr = relay(server.addr, cut.clone()).await;
    let transport = HttpTransport::h2c()
        .http2_keepalive(Duration::from_millis(200), Duration::from_millis(300));
    let client = TestServiceClient::new(Client::new(&format!("http://{addr}"), transport).unwrap());
    // The connection works...
    client
        .echo(EchoRequest::default())
        .await
        .expect("a first call");
    // ...then a slow call is under way when the peer goes silent.
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let result = client
            .echo(Request::new(EchoRequest {
                sleep_ms: 60_000,
                ..Default::default()
            }))
            .await;
        (result, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cut.store(true, Ordering::SeqCst);
    let (result, took) = tokio::time::timeout(Duration::from_secs(20), slow)
        .await
        .expect("the call ended: keepalive noticed the silent peer")
        .unwrap();
    let error = result.expect_err("the peer vanished");
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}
