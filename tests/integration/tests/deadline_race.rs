//! The server never answers `deadline_exceeded` before the caller's own deadline has passed.
//!
//! Clients write the time they have left truncated to the header's unit (connect-go sends
//! `Connect-Timeout-Ms: 50` when 50.9 ms are left). A server that ended the call 50 ms after
//! the request arrived answered just before the caller's timer fired, and a caller that gives
//! up at its deadline (connect-go does) then held the reply's headers but not its body: the
//! conformance runner reported a Connect error body cut short ("unexpected end of JSON
//! input"). Each case below is that caller: it says 50 ms, its deadline is 50.9 ms after it
//! sends, and the handler would sleep 5 s. The error must not become visible before the
//! caller's deadline, and must arrive whole, on every protocol and both HTTP versions. Each
//! case repeats, as the race it guards against was a matter of a fraction of a millisecond.
//!
//! The assertions are lower bounds only: a slow machine makes the answer later, never earlier.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt as _;
use switchboard::Body;
use switchboard::client::{HttpTransport, Transport as _};
use switchboard::server::ServerConfig;
use switchboard_integration_tests::start;

/// What the caller's header says.
const SAID: &str = "50";
/// When the caller's own deadline passes, counted from just before it sends.
const CALLER_DEADLINE: Duration = Duration::from_micros(50_900);
/// How often each case repeats.
const REPEATS: usize = 8;

const ECHO: &str = "/switchboard.test.v1.TestService/Echo";
const SERVER_STREAM: &str = "/switchboard.test.v1.TestService/ServerStream";
const ASKS_FOR_SLEEP: &str = r#"{"sleepMs": 5000, "repeat": 2}"#;

/// One protocol's request and how to read the error out of its reply.
struct Case {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    timeout_header: &'static str,
    timeout_value: String,
    body: Bytes,
    /// Checks the whole reply carries `deadline_exceeded`, and says why not.
    check: fn(&http::HeaderMap, &http::HeaderMap, &[u8]) -> Result<(), String>,
}

fn enveloped(json: &str) -> Bytes {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(json.len() as u32).to_be_bytes());
    framed.extend_from_slice(json.as_bytes());
    Bytes::from(framed)
}

/// The envelopes of a streamed body: (flags, payload).
fn envelopes(mut body: &[u8]) -> Result<Vec<(u8, &[u8])>, String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 5 {
            return Err(format!(
                "{} bytes left, not a whole envelope prefix",
                body.len()
            ));
        }
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        if body.len() < 5 + len {
            return Err(format!(
                "an envelope of {len} bytes cut at {}",
                body.len() - 5
            ));
        }
        out.push((body[0], &body[5..5 + len]));
        body = &body[5 + len..];
    }
    Ok(out)
}

fn connect_unary(_: &http::HeaderMap, _: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("error body {:?}: {e}", String::from_utf8_lossy(body)))?;
    match value["code"].as_str() {
        Some("deadline_exceeded") => Ok(()),
        other => Err(format!("code {other:?}")),
    }
}

fn connect_stream(_: &http::HeaderMap, _: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
    let last = envelopes(body)?.pop().ok_or("no end-stream message")?;
    if last.0 & 0x02 == 0 {
        return Err("the last envelope is not the end-stream message".into());
    }
    let value: serde_json::Value =
        serde_json::from_slice(last.1).map_err(|e| format!("end-stream message: {e}"))?;
    match value["error"]["code"].as_str() {
        Some("deadline_exceeded") => Ok(()),
        other => Err(format!("code {other:?}")),
    }
}

fn grpc(headers: &http::HeaderMap, trailers: &http::HeaderMap, _: &[u8]) -> Result<(), String> {
    let status = trailers.get("grpc-status").or(headers.get("grpc-status"));
    match status.map(|v| v.as_bytes()) {
        Some(b"4") => Ok(()),
        other => Err(format!("grpc-status {other:?}")),
    }
}

fn grpc_web(headers: &http::HeaderMap, _: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
    if headers.get("grpc-status").is_some_and(|v| v == "4") {
        return Ok(());
    }
    let last = envelopes(body)?.pop().ok_or("no trailers frame")?;
    if last.0 & 0x80 == 0 {
        return Err("the last frame is not the trailers frame".into());
    }
    let text = String::from_utf8_lossy(last.1).to_lowercase();
    if text.contains("grpc-status: 4") || text.contains("grpc-status:4") {
        Ok(())
    } else {
        Err(format!("trailers frame {text:?}"))
    }
}

fn cases() -> Vec<Case> {
    let connect_ms = |name, path, content_type, body, check| Case {
        name,
        path,
        content_type,
        timeout_header: "connect-timeout-ms",
        timeout_value: SAID.to_owned(),
        body,
        check,
    };
    let grpc_ms = |name, content_type, check| Case {
        name,
        path: ECHO,
        content_type,
        timeout_header: "grpc-timeout",
        timeout_value: format!("{SAID}m"),
        body: enveloped(ASKS_FOR_SLEEP),
        check,
    };
    vec![
        connect_ms(
            "Connect unary",
            ECHO,
            "application/json",
            Bytes::from_static(ASKS_FOR_SLEEP.as_bytes()),
            connect_unary,
        ),
        connect_ms(
            "Connect server stream",
            SERVER_STREAM,
            "application/connect+json",
            enveloped(ASKS_FOR_SLEEP),
            connect_stream,
        ),
        grpc_ms("gRPC", "application/grpc+json", grpc),
        grpc_ms("gRPC-Web", "application/grpc-web+json", grpc_web),
    ]
}

#[tokio::test]
async fn no_deadline_exceeded_reaches_a_caller_before_its_own_deadline() {
    let server = start(ServerConfig::default()).await;
    for (version, transport) in [
        ("HTTP/1.1", HttpTransport::http1()),
        ("HTTP/2", HttpTransport::h2c()),
    ] {
        for case in cases() {
            if case.name == "gRPC" && version == "HTTP/1.1" {
                continue; // gRPC needs HTTP/2.
            }
            for round in 0..REPEATS {
                let what = format!("{} over {version}, round {round}", case.name);
                let request = http::Request::builder()
                    .method(Method::POST)
                    .uri(format!("{}{}", server.url(), case.path))
                    .header("content-type", case.content_type)
                    .header(case.timeout_header, &case.timeout_value)
                    .body(Body::from(case.body.clone()))
                    .unwrap();
                let sent = Instant::now();
                let response = transport.send(request).await.expect(&what);
                let answered = sent.elapsed();
                let (parts, body) = response.into_parts();
                let collected = body.collect().await.expect(&what);
                let ended = sent.elapsed();
                let trailers = collected.trailers().cloned().unwrap_or_default();
                let bytes = collected.to_bytes();
                if let Err(why) = (case.check)(&parts.headers, &trailers, &bytes) {
                    panic!("{what}: the reply is not a whole deadline_exceeded: {why}");
                }
                // A streamed reply's headers may come at once; what matters there is when the
                // error (the end of the body) comes. A unary error is its headers.
                let error_seen = if case.name == "Connect unary" {
                    answered
                } else {
                    ended
                };
                assert!(
                    error_seen >= CALLER_DEADLINE,
                    "{what}: deadline_exceeded after {error_seen:?}, before the caller's own \
                     deadline ({CALLER_DEADLINE:?})"
                );
            }
        }
    }
    server.stop().await;
}
