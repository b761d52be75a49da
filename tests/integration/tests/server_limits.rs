//! The built-in server's global limits, over real sockets: calls in flight beyond
//! `max_calls_in_flight` are refused with `resource_exhausted` (and counted until their
//! response ends, streams included), and connections beyond `max_connections` wait in the
//! accept queue until one closes. Over HTTP/3 the same limits count QUIC and TCP together,
//! and a QUIC connection beyond the limit is refused (QUIC has no accept queue).

use std::time::Duration;

use switchboard::client::Client;
use switchboard::server::{Router, Server};
use switchboard::{Code, Request};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, TestServer};

fn router() -> Router {
    Router::new().add_service(TestServiceServer::new(TestServer))
}

fn echo(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

/// An open bidi call: it stays in flight until its sender is dropped and its replies read.
async fn open_bidi<T: switchboard::client::Transport>(
    client: &TestServiceClient<T>,
) -> (
    tokio::sync::mpsc::Sender<EchoRequest>,
    switchboard::Streaming<EchoResponse>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(echo("hold")).await.unwrap();
    let requests = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut replies = client
        .bidi(Request::new(requests))
        .await
        .unwrap()
        .into_message();
    // The first reply: the call has reached its handler.
    assert_eq!(replies.message().await.unwrap().unwrap().text, "hold");
    (tx, replies)
}

/// Echoes "after" as soon as the server admits the call (a place given back is seen a
/// moment after the response that gave it back has ended).
async fn echo_once_admitted<T: switchboard::client::Transport>(
    client: &TestServiceClient<T>,
) -> String {
    for _ in 0..100 {
        match client.echo(echo("after")).await {
            Ok(reply) => return reply.into_message().text,
            Err(error) if error.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("unexpected {error:?}"),
        }
    }
    panic!("the call was never admitted");
}

#[tokio::test]
async fn calls_beyond_the_limit_are_refused_until_one_ends() {
    let server = Running::serve(Server::new(router()).max_calls_in_flight(Some(2))).await;
    let client = TestServiceClient::new(Client::h2c(&server.url()).unwrap());
    let (first_tx, mut first) = open_bidi(&client).await;
    let (second_tx, mut second) = open_bidi(&client).await;

    let refused = client.echo(echo("third")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("2 calls in flight"),
        "{refused:?}"
    );
    // Over the Connect protocol and HTTP/1.1 too, in that protocol's form.
    let connect = TestServiceClient::new(Client::http1(&server.url()).unwrap());
    let refused = connect.echo(echo("third")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");

    // The first call ends: its place is given back once its response has ended.
    drop(first_tx);
    assert!(first.message().await.unwrap().is_none());
    assert_eq!(echo_once_admitted(&client).await, "after");
    drop(second_tx);
    assert!(second.message().await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let server = Running::serve(Server::new(router()).max_connections(Some(1))).await;
    let first = TestServiceClient::new(Client::h2c(&server.url()).unwrap());
    assert_eq!(first.echo(echo("one")).await.unwrap().message().text, "one");

    // A second connection is not served while the first is open.
    let second = TestServiceClient::new(Client::h2c(&server.url()).unwrap());
    let waited = second
        .echo(Request::new(echo("two")).with_timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(waited.code(), Code::DeadlineExceeded, "{waited:?}");
    drop(second);

    // Once the first connection closes, a new one is served.
    drop(first);
    let third = TestServiceClient::new(Client::h2c(&server.url()).unwrap());
    let answer = third
        .echo(Request::new(echo("three")).with_timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(answer.message().text, "three");
    drop(third);
    server.stop().await;
}

/// A TLS server for the test service that also serves HTTP/3, its URL, and a client
/// configuration that trusts it.
async fn start_http3(
    server: impl FnOnce(Server) -> Server,
) -> (
    Running,
    String,
    std::sync::Arc<switchboard::client::tls::ClientTlsConfig>,
) {
    let pki = switchboard_integration_tests::pki();
    let tls = switchboard::server::tls::server_config(
        pki.server.0.as_bytes(),
        pki.server.1.as_bytes(),
        None,
    )
    .unwrap();
    let running = Running::serve(server(Server::new(router())).with_tls(tls).http3()).await;
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let roots = switchboard::client::tls::client_config(Some(pki.ca.as_bytes()), None).unwrap();
    (running, url, roots)
}

/// A client of `url` over HTTP/3, with a connection of its own.
fn http3_client(
    url: &str,
    roots: &std::sync::Arc<switchboard::client::tls::ClientTlsConfig>,
) -> TestServiceClient<switchboard::client::Http3Transport> {
    let transport = switchboard::client::Http3Transport::new(roots.clone()).unwrap();
    TestServiceClient::new(Client::new(url, transport).unwrap())
}

#[tokio::test]
async fn calls_in_flight_over_http3_and_tcp_share_one_limit() {
    let (server, url, roots) = start_http3(|server| server.max_calls_in_flight(Some(2))).await;
    let quic = http3_client(&url, &roots);
    let tcp = TestServiceClient::new(
        Client::new(
            &url,
            switchboard::client::HttpTransport::tls_http2(roots.clone()),
        )
        .unwrap(),
    );
    let (quic_tx, mut quic_call) = open_bidi(&quic).await;
    let (tcp_tx, mut tcp_call) = open_bidi(&tcp).await;
    for (name, refused) in [
        ("HTTP/3", quic.echo(echo("third")).await.unwrap_err()),
        ("HTTP/2", tcp.echo(echo("third")).await.unwrap_err()),
    ] {
        assert_eq!(
            refused.code(),
            Code::ResourceExhausted,
            "{name}: {refused:?}"
        );
        assert!(
            refused.message().contains("2 calls in flight"),
            "{name}: {refused:?}"
        );
    }
    // The HTTP/3 call ends: its place is given back once its response has ended.
    drop(quic_tx);
    assert!(quic_call.message().await.unwrap().is_none());
    assert_eq!(echo_once_admitted(&quic).await, "after");
    drop(tcp_tx);
    assert!(tcp_call.message().await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_quic_connection_beyond_the_limit_is_refused() {
    let (server, url, roots) = start_http3(|server| server.max_connections(Some(1))).await;
    let first = http3_client(&url, &roots);
    // The first client's pooled connection holds the one place while its call is open.
    let (first_tx, mut first_call) = open_bidi(&first).await;
    let second = http3_client(&url, &roots);
    let refused = tokio::time::timeout(Duration::from_secs(20), second.echo(echo("second")))
        .await
        .expect("a refused connection fails at once")
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    drop(first_tx);
    assert!(first_call.message().await.unwrap().is_none());
    assert_eq!(
        first.echo(echo("again")).await.unwrap().into_message().text,
        "again",
        "the connection that holds the place goes on serving"
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_over_http3_lets_the_calls_in_flight_finish() {
    let (server, url, roots) = start_http3(|server| server).await;
    let client = http3_client(&url, &roots);
    let (tx, mut call) = open_bidi(&client).await;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The call in flight still goes both ways after GOAWAY.
    tx.send(echo("after goaway")).await.unwrap();
    assert_eq!(call.message().await.unwrap().unwrap().text, "after goaway");
    assert!(!stopping.is_finished(), "the server waits for the call");
    drop(tx);
    assert!(call.message().await.unwrap().is_none());
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the server stops once its call has ended")
        .unwrap();
    // Nothing answers on the port any more (QUIC learns it only by waiting: the call's
    // deadline ends it).
    let late = Request::new(echo("late")).with_timeout(Duration::from_millis(500));
    let after = http3_client(&url, &roots).echo(late).await.unwrap_err();
    assert!(
        matches!(after.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{after:?}"
    );
}
