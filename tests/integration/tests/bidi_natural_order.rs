//! A bidi call can be awaited before its request stream is fed: it returns without waiting
//! for the response headers, which servers such as grpc-go send only with their first
//! response — here a handler that reads the first request before it answers at all.

use std::time::Duration;

use futures_util::StreamExt as _;
use http::HeaderValue;
use switchboard::client::{Client, ClientConfig};
use switchboard::server::Router;
use switchboard::{Code, Error, Protocol, Request, Response, ResponseStream, Streaming};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start_router;

/// Answers nothing — not even headers — until the first request arrives, then echoes.
struct FirstRequestFirst;

impl TestService for FirstRequestFirst {
    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let mut messages = request.into_message();
        let first = messages
            .message()
            .await?
            .ok_or_else(|| Error::invalid_argument("no first request"))?;
        let first = futures_util::stream::once(std::future::ready(Ok(first)));
        let rest = first.chain(messages).map(|message| {
            message.map(|message| EchoResponse {
                text: message.text,
                ..Default::default()
            })
        });
        let mut response = Response::new(Box::pin(rest) as ResponseStream<EchoResponse>);
        response.headers_mut().insert(
            "x-answered",
            HeaderValue::from_static("after-first-request"),
        );
        Ok(response)
    }
}

fn text(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_bidi_call_is_awaited_before_its_first_request_is_sent() {
    let router = Router::new().add_service(TestServiceServer::new(FirstRequestFirst));
    let server = start_router(router).await;
    for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
        let what = format!("{protocol:?}");
        let client = TestServiceClient::new(
            Client::h2c(&server.url())
                .unwrap()
                .with_config(ClientConfig::default().protocol(protocol)),
        );
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let requests =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
            );
        // The natural order: the call first, then the first request.
        let response =
            tokio::time::timeout(Duration::from_secs(10), client.bidi(Request::new(requests)))
                .await
                .unwrap_or_else(|_| {
                    panic!("{what}: the call waited for headers that need a request")
                })
                .expect(&what);
        let mut replies = response.into_message();
        tx.send(text("ping")).unwrap();
        let headers = replies.headers().await.expect(&what);
        assert_eq!(headers["x-answered"], "after-first-request", "{what}");
        assert_eq!(
            replies.message().await.unwrap().unwrap().text,
            "ping",
            "{what}"
        );
        tx.send(text("pong")).unwrap();
        assert_eq!(
            replies.message().await.unwrap().unwrap().text,
            "pong",
            "{what}"
        );
        drop(tx);
        assert!(replies.message().await.unwrap().is_none(), "{what}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_bidi_call_to_nowhere_fails_with_its_first_message() {
    // A port with no server: the failure to connect surfaces when reading.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = TestServiceClient::new(Client::h2c(&url).unwrap());
    let requests = futures_util::stream::iter(vec![text("lost")]);
    let mut replies = client
        .bidi(Request::new(requests))
        .await
        .unwrap()
        .into_message();
    let error = replies.headers().await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    let error = replies.message().await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert!(replies.message().await.unwrap().is_none());
}
