//! Any HTTP request to a router serving health (unary and server streaming) and reflection
//! (bidi): method, path, content type, protocol headers (timeouts, compression, versions),
//! a Connect GET query, and a body arriving in arbitrary chunks. Covers protocol
//! classification and negotiation, the envelope reader, decompression, gRPC-Web text, the
//! Connect GET path, timeout parsing and the codecs, end to end without sockets.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::{Input, chunked_body, drain, router, runtime};

const PATHS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.health.v1.Health/List",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/no.such.Service/Method",
];

const CONTENT_TYPES: &[&str] = &[
    "application/grpc",
    "application/grpc+proto",
    "application/grpc+json",
    "application/grpc-web",
    "application/grpc-web+json",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
    "application/json",
    "application/json; charset=utf-8",
    "application/proto",
    "application/connect+proto",
    "application/connect+json",
    "text/plain",
    "",
];

const HEADERS: &[&str] = &[
    "grpc-timeout",
    "connect-timeout-ms",
    "grpc-encoding",
    "grpc-accept-encoding",
    "connect-content-encoding",
    "connect-accept-encoding",
    "content-encoding",
    "accept-encoding",
    "connect-protocol-version",
    "te",
    "if-none-match",
    "x-user-bin",
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let method = input.pick(&["POST", "GET", "PUT"]);
    let path = input.pick(PATHS);
    let content_type = input.pick(CONTENT_TYPES);
    let version = input.pick(&[http::Version::HTTP_2, http::Version::HTTP_11]);
    let query = if method == "GET" {
        format!("?{}", input.text(255))
    } else {
        String::new()
    };
    let Ok(uri) = format!("http://localhost{path}{query}").parse::<http::Uri>() else {
        return;
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .version(version);
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    for _ in 0..input.byte() % 5 {
        let name = input.pick(HEADERS);
        if let Ok(value) = http::HeaderValue::from_str(&input.text(40)) {
            request = request.header(name, value);
        }
    }
    let stride = input.byte();
    let Ok(request) = request.body(chunked_body(input.rest(), stride, None)) else {
        return;
    };
    runtime().block_on(async {
        let response = router().handle(request).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), drain(response.into_body())).await;
    });
});
