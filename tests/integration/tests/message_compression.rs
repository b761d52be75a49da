//! Per-message compression: handlers see whether each request message arrived compressed
//! (`Request::request_compressed`, `Streaming::last_compressed`) and choose, message by
//! message, whether responses are compressed (`Request::message_compression`); clients choose
//! the same for request messages.

use bytes::{Buf as _, Bytes};
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use prost::Message as _;
use switchboard::client::{Client, ClientConfig};
use switchboard::server::Router;
use switchboard::{Error, Protocol, Request, Response, ResponseStream, Streaming};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start_router;

/// Reports how requests arrived, and compresses replies as the request text says:
/// `compress`, `plain`, or anything else for the policy (1 KiB by default).
struct Probe;

fn choose(text: &str) -> Option<bool> {
    match text {
        "compress" => Some(true),
        "plain" => Some(false),
        _ => None,
    }
}

fn flag(compressed: Option<bool>) -> &'static str {
    match compressed {
        Some(true) => "compressed",
        Some(false) => "plain",
        None => "unknown",
    }
}

impl TestService for Probe {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let message = request.message();
        request.message_compression().set(choose(&message.text));
        Ok(Response::new(EchoResponse {
            text: flag(request.request_compressed()).to_owned(),
            payload: vec![0; message.response_size as usize],
            ..Default::default()
        }))
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        // Every other response compressed, set just before each is yielded.
        let switch = request.message_compression().clone();
        let message = request.into_message();
        let stream = futures_util::stream::iter(0..message.repeat).map(move |i| {
            switch.set(Some(i % 2 == 0));
            Ok(EchoResponse {
                count: i,
                payload: vec![0; message.response_size as usize],
                ..Default::default()
            })
        });
        Ok(Response::new(
            Box::pin(stream) as ResponseStream<EchoResponse>
        ))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Error> {
        let mut seen = Vec::new();
        let mut messages = request.into_message();
        while messages.message().await?.is_some() {
            seen.push(flag(messages.last_compressed()));
        }
        Ok(Response::new(EchoResponse {
            text: seen.join(","),
            ..Default::default()
        }))
    }
}

fn router() -> Router {
    Router::new().add_service(TestServiceServer::new(Probe))
}

#[tokio::test]
async fn clients_choose_per_message_and_handlers_see_it() {
    let server = start_router(router()).await;
    for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
        let client = TestServiceClient::new(
            Client::h2c(&server.url()).unwrap().with_config(
                ClientConfig::default()
                    .protocol(protocol)
                    .send_compression("gzip"),
            ),
        );
        // (switch, payload size, how the handler should see the message)
        let cases = [
            (Some(true), 10, "compressed"),
            (Some(false), 4096, "plain"),
            (None, 10, "plain"),
            (None, 4096, "compressed"),
        ];
        for (switch, size, want) in cases {
            let request = Request::new(EchoRequest {
                payload: vec![1; size],
                ..Default::default()
            });
            request.message_compression().set(switch);
            let response = client.echo(request).await.unwrap();
            assert_eq!(
                response.message().text,
                want,
                "{protocol:?} unary, switch {switch:?}, {size} bytes"
            );
        }

        let request = Request::new(());
        let switch = request.message_compression().clone();
        let messages = futures_util::stream::iter([(true, 10), (false, 4096), (true, 4096)]).map(
            move |(compress, size)| {
                switch.set(Some(compress));
                EchoRequest {
                    payload: vec![1; size],
                    ..Default::default()
                }
            },
        );
        let response = client
            .client_stream(request.map(|()| messages))
            .await
            .unwrap();
        assert_eq!(
            response.message().text,
            "compressed,plain,compressed",
            "{protocol:?} client stream"
        );

        // Without a compression for the call, nothing is compressed whatever the switch says.
        let plain_client = TestServiceClient::new(
            Client::h2c(&server.url())
                .unwrap()
                .with_config(ClientConfig::default().protocol(protocol)),
        );
        let request = Request::new(EchoRequest::default());
        request.message_compression().set(Some(true));
        let response = plain_client.echo(request).await.unwrap();
        assert_eq!(
            response.message().text,
            "plain",
            "{protocol:?} no algorithm"
        );
    }
    server.stop().await;
}

/// Calls the router in process with a hand-framed gRPC request accepting gzip, and returns
/// the response headers and the compressed flag of each response message.
async fn grpc_call(procedure: &str, message: EchoRequest) -> (http::HeaderMap, Vec<bool>) {
    let payload = message.encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    body.extend_from_slice(&payload);
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://test{procedure}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-accept-encoding", "gzip")
        .body(switchboard::Body::full(body))
        .unwrap();
    let response = router().handle(request).await;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    assert_eq!(trailers.get("grpc-status").unwrap(), "0", "{trailers:?}");
    let mut bytes: Bytes = collected.to_bytes();
    let mut flags = Vec::new();
    while bytes.remaining() >= 5 {
        let flag = bytes.get_u8();
        let len = bytes.get_u32() as usize;
        flags.push(flag & 1 == 1);
        bytes.advance(len);
    }
    (parts.headers, flags)
}

#[tokio::test]
async fn handlers_choose_response_compression_per_message() {
    let unary = |text: &str, size: u32| EchoRequest {
        text: text.into(),
        response_size: size,
        ..Default::default()
    };
    let echo = "/switchboard.test.v1.TestService/Echo";
    assert_eq!(grpc_call(echo, unary("compress", 10)).await.1, [true]);
    assert_eq!(grpc_call(echo, unary("plain", 4096)).await.1, [false]);
    assert_eq!(grpc_call(echo, unary("policy", 10)).await.1, [false]);
    assert_eq!(grpc_call(echo, unary("policy", 4096)).await.1, [true]);

    let (headers, flags) = grpc_call(
        "/switchboard.test.v1.TestService/ServerStream",
        EchoRequest {
            repeat: 4,
            response_size: 4096,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(headers.get("grpc-encoding").unwrap(), "gzip");
    assert_eq!(flags, [true, false, true, false]);
}

#[tokio::test]
async fn connect_unary_responses_follow_the_handler() {
    for (text, size, compressed) in [("compress", 10, true), ("plain", 4096, false)] {
        let payload = EchoRequest {
            text: text.into(),
            response_size: size,
            ..Default::default()
        }
        .encode_to_vec();
        let request = http::Request::builder()
            .method("POST")
            .uri("http://test/switchboard.test.v1.TestService/Echo")
            .header("content-type", "application/proto")
            .header("accept-encoding", "gzip")
            .body(switchboard::Body::full(payload))
            .unwrap();
        let response = router().handle(request).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("content-encoding").is_some(),
            compressed,
            "{text}: {:?}",
            response.headers()
        );
    }
}
