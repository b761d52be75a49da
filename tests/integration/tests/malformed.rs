//! Bad input gets a clear protocol error with the right code, never a panic or a large
//! allocation, and the server keeps serving afterwards. Also: a client given a truncated
//! stream reports `internal`.

use std::io::Write as _;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use switchboard::client::{Client, ClientConfig, HttpTransport};
use switchboard::server::ServerConfig;
use switchboard::{Body, Code, Request};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, start};
use tower_like::send;

/// Sends raw HTTP requests through the default transport.
mod tower_like {
    use super::*;
    use switchboard::client::Transport as _;

    pub async fn send(request: http::Request<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
        let response = HttpTransport::http1()
            .send(request)
            .await
            .expect("transport");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        (parts.status, parts.headers, bytes)
    }
}

fn post(server: &Running, path: &str, content_type: &str) -> http::request::Builder {
    http::Request::builder()
        .method(Method::POST)
        .uri(format!("{}{path}", server.url()))
        .header("content-type", content_type)
}

const ECHO: &str = "/switchboard.test.v1.TestService/Echo";
const CLIENT_STREAM: &str = "/switchboard.test.v1.TestService/ClientStream";

fn error_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not a JSON error: {:?}", String::from_utf8_lossy(body)));
    value["code"].as_str().expect("code").to_owned()
}

async fn still_serving(server: &Running) {
    let client = TestServiceClient::new(Client::http1(&server.url()).unwrap());
    let ok = client
        .echo(EchoRequest {
            text: "alive".into(),
            ..Default::default()
        })
        .await
        .expect("server still serves");
    assert_eq!(ok.message().text, "alive");
}

async fn unary_case(server: &Running, request: http::Request<Body>, status: u16, code: &str) {
    let (got_status, _, body) = send(request).await;
    assert_eq!(
        got_status.as_u16(),
        status,
        "body: {:?}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(error_code(&body), code);
    still_serving(server).await;
}

#[tokio::test]
async fn bad_unary_requests_get_protocol_errors() {
    let server = start(ServerConfig::default()).await;
    let json = |body: &'static str| {
        post(&server, ECHO, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    unary_case(
        &server,
        json(r#"{"text":"x","noSuchField":1}"#),
        400,
        "invalid_argument",
    )
    .await;
    unary_case(&server, json(r#"{"text":"#), 400, "invalid_argument").await;
    let garbage = post(&server, ECHO, "application/proto")
        .body(Body::from(Bytes::from_static(&[0x0a, 0xff, 0xff])))
        .unwrap();
    unary_case(&server, garbage, 400, "invalid_argument").await;
    let unknown_compression = post(&server, ECHO, "application/json")
        .header("content-encoding", "bogus")
        .body(Body::from("{}"))
        .unwrap();
    unary_case(&server, unknown_compression, 501, "unimplemented").await;
    let bad_base64 = http::Request::get(format!(
        "{}{ECHO}?encoding=proto&base64=1&message=%21%21not-base64%21",
        server.url()
    ))
    .body(Body::empty())
    .unwrap();
    unary_case(&server, bad_base64, 400, "invalid_argument").await;
    let bad_timeout = post(&server, ECHO, "application/json")
        .header("connect-timeout-ms", "soon")
        .body(Body::from("{}"))
        .unwrap();
    unary_case(&server, bad_timeout, 400, "invalid_argument").await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_methods_content_types_and_paths() {
    let server = start(ServerConfig::default()).await;
    let (status, headers, _) = send(
        post(&server, ECHO, "text/plain")
            .body(Body::from("hi"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        headers
            .get("accept-post")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("application/proto")
    );
    let (status, headers, _) = send(
        http::Request::put(format!("{}{ECHO}", server.url()))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers.get("allow").unwrap(), "GET, POST");
    let (status, headers, _) = send(
        http::Request::get(format!(
            "{}{CLIENT_STREAM}?encoding=json&message=%7B%7D",
            server.url()
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers.get("allow").unwrap(), "POST");
    let (status, _, body) = send(
        post(&server, "/no.Such/Method", "application/json")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "unimplemented");
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn huge_length_prefixes_and_bombs_are_refused_without_allocating() {
    let server = start(ServerConfig::default()).await;
    // An envelope announcing 4 GiB on a streaming method.
    let (status, _, body) = send(
        post(&server, CLIENT_STREAM, "application/connect+proto")
            .body(Body::from(Bytes::from_static(&[
                0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3,
            ])))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0], 2, "end-of-stream flag");
    let end: serde_json::Value = serde_json::from_slice(&body[5..]).unwrap();
    assert_eq!(end["error"]["code"], "resource_exhausted");
    still_serving(&server).await;

    // A gzip bomb: 64 MiB of zeros, far over the 4 MiB default limit.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let (status, _, body) = send(
        post(&server, ECHO, "application/proto")
            .header("content-encoding", "gzip")
            .body(Body::from(Bytes::from(bomb)))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&body), "resource_exhausted");
    still_serving(&server).await;
    server.stop().await;
}

/// A server that answers every request with fixed bytes, to feed the client broken streams.
async fn canned_server(content_type: &'static str, body: &'static [u8]) -> std::net::SocketAddr {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| async move {
                    let mut response = http::Response::new(Body::from(Bytes::from_static(body)));
                    response
                        .headers_mut()
                        .insert("content-type", http::HeaderValue::from_static(content_type));
                    Ok::<_, std::convert::Infallible>(response)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn truncated_streams_are_internal_errors() {
    // One good message (text "a"), then the body ends: no end-of-stream message.
    let missing_end = canned_server(
        "application/connect+proto",
        b"\x00\x00\x00\x00\x03\x0a\x01a",
    )
    .await;
    let client = TestServiceClient::new(Client::http1(&format!("http://{missing_end}")).unwrap());
    let mut stream = client
        .server_stream(EchoRequest::default())
        .await
        .unwrap()
        .into_message();
    assert_eq!(stream.message().await.unwrap().unwrap().text, "a");
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Internal);

    // An envelope cut short.
    let cut = canned_server("application/connect+proto", b"\x00\x00\x00\x00\x09\x0a\x01").await;
    let client = TestServiceClient::new(Client::http1(&format!("http://{cut}")).unwrap());
    let mut stream = client
        .server_stream(EchoRequest::default())
        .await
        .unwrap()
        .into_message();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Internal);

    // Data after the end-of-stream message.
    let trailing = canned_server(
        "application/connect+proto",
        b"\x02\x00\x00\x00\x02{}\x00\x00\x00\x00\x00",
    )
    .await;
    let client = TestServiceClient::new(Client::http1(&format!("http://{trailing}")).unwrap());
    let mut stream = client
        .server_stream(EchoRequest::default())
        .await
        .unwrap()
        .into_message();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Internal);

    // A client-streaming response that ends without its end-of-stream message.
    let client = TestServiceClient::new(
        Client::http1(&format!("http://{missing_end}"))
            .unwrap()
            .with_config(ClientConfig::default()),
    );
    let upload = futures_util::stream::iter(vec![EchoRequest::default()]);
    assert_eq!(
        client
            .client_stream(Request::new(upload))
            .await
            .unwrap_err()
            .code(),
        Code::Internal
    );
}

#[tokio::test]
async fn json_with_charset_and_the_required_protocol_header() {
    let server = start(ServerConfig::default().require_connect_protocol_header(true)).await;
    let request = |version: Option<&'static str>| {
        let mut builder = post(&server, ECHO, "application/json; charset=utf-8");
        if let Some(version) = version {
            builder = builder.header("connect-protocol-version", version);
        }
        builder.body(Body::from(r#"{"text":"charset"}"#)).unwrap()
    };
    let (status, headers, body) = send(request(Some("1"))).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/json; charset=utf-8"
    );
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["text"], "charset");
    let (status, _, body) = send(request(None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_argument");
    let (status, _, body) = send(request(Some("2"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_argument");
    server.stop().await;
}

#[tokio::test]
async fn the_server_enforces_the_callers_timeout() {
    let server = start(ServerConfig::default()).await;
    let started = std::time::Instant::now();
    let (status, _, body) = send(
        post(&server, ECHO, "application/json")
            .header("connect-timeout-ms", "100")
            .body(Body::from(r#"{"sleepMs": 5000}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(error_code(&body), "deadline_exceeded");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    still_serving(&server).await;
    server.stop().await;
}

/// The client's own mistakes get client-error codes, not `canceled` (which says the client
/// went away): invalid gRPC-Web-text base64, a malformed HTTP/1.1 chunked body, and a
/// deadline that has already passed when the call arrives (0, or 1 ns).
#[tokio::test]
async fn client_mistakes_get_client_error_codes() {
    let server = start(ServerConfig::default()).await;

    let bad_text = post(&server, ECHO, "application/grpc-web-text")
        .body(Body::from("!!!!not base64!!!!"))
        .unwrap();
    let (status, headers, body) = send(bad_text).await;
    assert_eq!(status, StatusCode::OK);
    let grpc_status = match headers.get("grpc-status") {
        Some(value) => value.to_str().unwrap().to_owned(),
        None => {
            use base64::Engine as _;
            let frames = base64::engine::general_purpose::STANDARD
                .decode(&body)
                .expect("a base64 body");
            let text = String::from_utf8_lossy(&frames).to_lowercase();
            text.split("grpc-status:").nth(1).unwrap().trim()[..1].to_owned()
        }
    };
    assert_eq!(grpc_status, "3", "invalid_argument");
    still_serving(&server).await;

    // A chunk size line that is not hexadecimal.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "POST {ECHO} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut response),
    )
    .await
    .expect("the server answers and closes");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains(r#""code":"invalid_argument""#),
        "{response}"
    );
    still_serving(&server).await;

    for (header, value) in [
        ("connect-timeout-ms", "0"),
        ("grpc-timeout", "1n"),
        ("grpc-timeout", "0n"),
    ] {
        let content_type = if header == "grpc-timeout" {
            "application/grpc-web+json"
        } else {
            "application/json"
        };
        let body = if header == "grpc-timeout" {
            Bytes::from_static(b"\0\0\0\0\x02{}")
        } else {
            Bytes::from_static(b"{}")
        };
        let request = post(&server, ECHO, content_type)
            .header(header, value)
            .body(Body::from(body))
            .unwrap();
        let (status, headers, body) = send(request).await;
        let what = format!("{header}: {value}");
        if header == "grpc-timeout" {
            let status_header = headers
                .get("grpc-status")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| {
                    let text = String::from_utf8_lossy(&body).to_lowercase();
                    text.split("grpc-status:").nth(1).unwrap().trim()[..1].to_owned()
                });
            assert_eq!(status_header, "4", "{what}: deadline_exceeded");
        } else {
            assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{what}");
            assert_eq!(error_code(&body), "deadline_exceeded", "{what}");
        }
    }
    server.stop().await;
}

/// An error message quoting a large request is cut before it reaches the wire (2 KiB of text),
/// on every protocol, unary and streamed: never a megabyte `grpc-message` trailer or error body.
#[tokio::test]
async fn huge_error_messages_are_cut_on_the_wire() {
    let server = start(ServerConfig::default()).await;
    let huge = "x".repeat(1024 * 1024);
    for protocol in [
        switchboard::Protocol::Connect,
        switchboard::Protocol::Grpc,
        switchboard::Protocol::GrpcWeb,
    ] {
        let config = ClientConfig::default().protocol(protocol);
        let client =
            TestServiceClient::new(Client::h2c(&server.url()).unwrap().with_config(config));
        let request = EchoRequest {
            fail_code: Code::InvalidArgument as i32,
            fail_message: huge.clone(),
            ..Default::default()
        };
        let error = client.echo(request.clone()).await.unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{protocol:?}");
        assert!(
            error.message().len() <= 2048 + 32,
            "{protocol:?}: {}",
            error.message().len()
        );
        assert!(error.message().ends_with("[truncated]"), "{protocol:?}");
        let mut streamed = request;
        streamed.repeat = 1;
        streamed.fail_after_stream = true;
        let mut stream = client.server_stream(streamed).await.unwrap().into_message();
        stream
            .message()
            .await
            .unwrap()
            .expect("the message before the error");
        let error = stream.message().await.unwrap_err();
        assert!(
            error.message().len() <= 2048 + 32,
            "{protocol:?}: {}",
            error.message().len()
        );
    }
    server.stop().await;
}
