//! The built-in server's global limits, over real sockets: calls in flight beyond
//! `max_calls_in_flight` are refused with `resource_exhausted` (and counted until their
//! response ends, streams included), and connections beyond `max_connections` wait in the
//! accept queue until one closes.

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
async fn open_bidi(
    client: &TestServiceClient,
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
    let mut answered = None;
    for _ in 0..100 {
        match client.echo(echo("after")).await {
            Ok(reply) => {
                answered = Some(reply.into_message().text);
                break;
            }
            Err(error) if error.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("unexpected {error:?}"),
        }
    }
    assert_eq!(answered.as_deref(), Some("after"));
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
