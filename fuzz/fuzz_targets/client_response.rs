//! Any HTTP response to our client's unary and server-streaming calls, on each protocol and
//! codec: status, content type, headers, a body in arbitrary chunks and HTTP trailers.
//! Covers the client's parsing of Connect error bodies and end-of-stream messages, gRPC
//! trailers and trailers-only responses, the gRPC-Web trailer block, gRPC-Web text,
//! decompression and the codecs, without sockets.
#![no_main]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard::Protocol;
use switchboard::client::{Client, ClientConfig};
use switchboard::codec::Codec;
use switchboard_fuzz::{Input, chunked_body, runtime};
use switchboard_health::{HealthCheckRequest, HealthClient};

const CONTENT_TYPES: &[&str] = &[
    "application/grpc",
    "application/grpc+json",
    "application/grpc-web",
    "application/grpc-web+json",
    "application/grpc-web-text",
    "application/json",
    "application/proto",
    "application/connect+proto",
    "application/connect+json",
    "text/html",
];

const HEADERS: &[&str] = &[
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
    "connect-content-encoding",
    "content-encoding",
    "connect-accept-encoding",
    "x-meta",
    "x-meta-bin",
];

/// A response the fuzzer wrote, built anew for each request.
struct Canned {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    trailers: Vec<(&'static str, String)>,
    with_trailers: bool,
    stride: u8,
    body: Vec<u8>,
}

impl Canned {
    fn response(&self) -> http::Response<switchboard::Body> {
        let mut trailers = http::HeaderMap::new();
        for (name, value) in &self.trailers {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                trailers.append(*name, value);
            }
        }
        let body = chunked_body(
            &self.body,
            self.stride,
            self.with_trailers.then_some(trailers),
        );
        let mut response = http::Response::new(body);
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::OK);
        let headers = response.headers_mut();
        if let Ok(value) = http::HeaderValue::from_str(self.content_type) {
            headers.insert("content-type", value);
        }
        for (name, value) in &self.headers {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                headers.append(*name, value);
            }
        }
        response
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let protocol = input.pick(&[Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb]);
    let codec = input.pick(&[Codec::Proto, Codec::Json]);
    let text = input.byte() % 4 == 0;
    let mut headers = Vec::new();
    let mut trailers = Vec::new();
    let canned = {
        let status = input.pick(&[200, 200, 200, 400, 404, 408, 429, 500, 503]);
        let content_type = input.pick(CONTENT_TYPES);
        for _ in 0..input.byte() % 4 {
            headers.push((input.pick(HEADERS), input.text(40)));
        }
        let with_trailers = input.byte() % 2 == 0;
        for _ in 0..input.byte() % 4 {
            trailers.push((input.pick(HEADERS), input.text(40)));
        }
        let stride = input.byte();
        Arc::new(Canned {
            status,
            content_type,
            headers,
            trailers,
            with_trailers,
            stride,
            body: input.rest().to_vec(),
        })
    };
    let transport = tower::service_fn(move |_request: http::Request<switchboard::Body>| {
        let response = canned.response();
        async move { Ok::<_, Infallible>(response) }
    });
    let config = ClientConfig::default()
        .protocol(protocol)
        .codec(codec)
        .grpc_web_text(text);
    let Ok(client) = Client::new("http://localhost", transport) else {
        return;
    };
    let health = HealthClient::new(client.with_config(config));
    runtime().block_on(async {
        let request = || HealthCheckRequest {
            service: String::new(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), health.check(request())).await;
        let watch = async {
            if let Ok(response) = health.watch(request()).await {
                let mut stream = response.into_message();
                for _ in 0..16 {
                    match stream.message().await {
                        Ok(Some(_)) => continue,
                        _ => break,
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), watch).await;
    });
});
