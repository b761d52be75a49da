//! Proof that a server really answers a call before its figure counts: one request with
//! hyper (h2c with prior knowledge, or HTTP/1.1), then the status, the content type, the
//! protocol's status (gRPC trailers, the gRPC-Web trailer frame, the Connect end-stream
//! envelope) and the decoded response messages.

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use tokio::net::TcpStream;

use super::bodies::{
    self, EchoRequest, IngestAck, LARGE_PAYLOAD, SMALL_PAYLOAD, STREAM_MESSAGES, StreamSummary,
};
use super::matrix::{Call, Protocol, Server};

/// How long one verification request may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A response as it came off the wire.
struct Exchange {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

/// Makes one `call` over `protocol` to the server on `port` and checks the answer.
pub(crate) fn verify(
    runtime: &tokio::runtime::Runtime,
    port: u16,
    server: Server,
    call: Call,
    protocol: Protocol,
) -> Result<()> {
    let request_body = bodies::body(call, protocol);
    let exchange = runtime.block_on(async {
        tokio::time::timeout(TIMEOUT, send(port, call, protocol, request_body.clone()))
            .await
            .map_err(|_| anyhow!("no complete response within {}s", TIMEOUT.as_secs()))?
    })?;
    if exchange.status != StatusCode::OK {
        bail!(
            "HTTP {} ({}): {}",
            exchange.status.as_u16(),
            content_type(&exchange.headers),
            snippet(&exchange.body)
        );
    }
    if server.echoes_bytes() {
        if exchange.body != request_body {
            bail!(
                "the body ({} bytes) is not the request body ({} bytes)",
                exchange.body.len(),
                request_body.len()
            );
        }
        return Ok(());
    }
    let messages = messages(protocol, call, &exchange)?;
    check_messages(call, &messages)
}

/// Sends the request and reads the whole response, trailers included.
async fn send(port: u16, call: Call, protocol: Protocol, body: Vec<u8>) -> Result<Exchange> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    let uri = if protocol.is_http1() {
        call.path().to_owned()
    } else {
        format!("http://127.0.0.1:{port}{}", call.path())
    };
    let mut request = Request::post(uri);
    if protocol.is_http1() {
        request = request.header("host", format!("127.0.0.1:{port}"));
    }
    for (name, value) in protocol.headers(call) {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    let response = if protocol.is_http1() {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    } else {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    };
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.context("reading the response body")?;
    let trailers = collected.trailers().cloned();
    Ok(Exchange {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content-type")
}

/// The start of a body, printable, for messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The response messages, once the protocol's framing and status say the call succeeded.
fn messages(protocol: Protocol, call: Call, exchange: &Exchange) -> Result<Vec<Bytes>> {
    let content_type = content_type(&exchange.headers).to_owned();
    let expect_type = |wanted: &str, ok: bool| -> Result<()> {
        if !ok {
            bail!("content-type {content_type:?}, wanted {wanted}");
        }
        Ok(())
    };
    match protocol {
        Protocol::Connect | Protocol::ConnectH1 if call.is_unary() => {
            expect_type("application/proto", content_type == "application/proto")?;
            Ok(vec![exchange.body.clone()])
        }
        Protocol::Connect | Protocol::ConnectH1 => {
            expect_type(
                "application/connect+proto",
                content_type == "application/connect+proto",
            )?;
            let mut frames = envelopes(&exchange.body)?;
            let Some((0x02, end)) = frames.pop() else {
                bail!("the stream has no end-stream envelope");
            };
            check_end_stream(&end)?;
            data_messages(frames)
        }
        Protocol::Grpc => {
            expect_type(
                "application/grpc",
                content_type == "application/grpc" || content_type == "application/grpc+proto",
            )?;
            // Trailers, or the headers of a trailers-only response.
            let status = exchange
                .trailers
                .as_ref()
                .and_then(|t| t.get("grpc-status"))
                .or_else(|| exchange.headers.get("grpc-status"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let message = exchange
                .trailers
                .as_ref()
                .and_then(|t| t.get("grpc-message"))
                .or_else(|| exchange.headers.get("grpc-message"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match status.as_deref() {
                Some("0") => {}
                Some(code) => bail!("grpc-status {code}: {message}"),
                None => bail!("no grpc-status in the trailers"),
            }
            data_messages(envelopes(&exchange.body)?)
        }
        Protocol::GrpcWeb => {
            expect_type(
                "application/grpc-web+proto",
                content_type == "application/grpc-web+proto"
                    || content_type == "application/grpc-web",
            )?;
            let mut frames = envelopes(&exchange.body)?;
            let trailers = match frames.last() {
                Some((0x80, block)) => {
                    let block = String::from_utf8_lossy(block).into_owned();
                    frames.pop();
                    block
                }
                // A trailers-only response carries its status in the headers.
                _ => exchange
                    .headers
                    .iter()
                    .filter(|(name, _)| name.as_str().starts_with("grpc-"))
                    .map(|(name, value)| {
                        format!("{name}: {}\r\n", value.to_str().unwrap_or_default())
                    })
                    .collect(),
            };
            check_grpc_web_trailers(&trailers)?;
            data_messages(frames)
        }
    }
}

/// Splits a body into (flags, payload) envelopes.
fn envelopes(mut body: &[u8]) -> Result<Vec<(u8, Bytes)>> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        if body.len() < 5 {
            bail!("{} stray bytes after the last envelope", body.len());
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if body.len() < 5 + len {
            bail!(
                "an envelope of {len} bytes is cut short at {}",
                body.len() - 5
            );
        }
        frames.push((body[0], Bytes::copy_from_slice(&body[5..5 + len])));
        body = &body[5 + len..];
    }
    Ok(frames)
}

/// The payloads of data envelopes; anything else (compressed, or a stray end-of-stream
/// flag) is an error.
fn data_messages(frames: Vec<(u8, Bytes)>) -> Result<Vec<Bytes>> {
    frames
        .into_iter()
        .map(|(flags, payload)| match flags {
            0 => Ok(payload),
            flags => Err(anyhow!("unexpected envelope flags {flags:#04x}")),
        })
        .collect()
}

/// A Connect end-stream message must carry no error.
fn check_end_stream(json: &[u8]) -> Result<()> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .with_context(|| format!("end-stream message is not JSON: {}", snippet(json)))?;
    if let Some(error) = value.get("error") {
        bail!("the end-stream message carries an error: {error}");
    }
    Ok(())
}

/// A gRPC-Web trailer block (`name: value` lines) must say `grpc-status: 0`.
fn check_grpc_web_trailers(block: &str) -> Result<()> {
    let mut status = None;
    let mut message = "";
    for line in block.split("\r\n").filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            bail!("malformed trailer line {line:?}");
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "grpc-status" => status = Some(value.trim().to_owned()),
            "grpc-message" => message = value.trim(),
            _ => {}
        }
    }
    match status.as_deref() {
        Some("0") => Ok(()),
        Some(code) => bail!("grpc-status {code}: {message}"),
        None => bail!("no grpc-status in the trailer frame"),
    }
}

/// The messages a correct server sends for `call`.
fn check_messages(call: Call, messages: &[Bytes]) -> Result<()> {
    let echoes = |count: usize, len: usize| -> Result<()> {
        if messages.len() != count {
            bail!("{} response messages, wanted {count}", messages.len());
        }
        let wanted = bodies::payload(len);
        for (index, message) in messages.iter().enumerate() {
            let response = EchoRequest::decode(message.as_ref())
                .with_context(|| format!("response {index} is not an EchoResponse"))?;
            if response.payload != wanted {
                bail!(
                    "response {index} carries {} bytes that are not the request's payload",
                    response.payload.len()
                );
            }
        }
        Ok(())
    };
    match call {
        Call::Echo64 => echoes(1, SMALL_PAYLOAD),
        Call::Echo16k => echoes(1, LARGE_PAYLOAD),
        Call::ServerStream => echoes(STREAM_MESSAGES as usize, SMALL_PAYLOAD),
        Call::Bidi => echoes(bodies::BIDI_CHECK_MESSAGES, SMALL_PAYLOAD),
        Call::Ingest => {
            let [message] = messages else {
                bail!("{} response messages, wanted 1", messages.len());
            };
            let ack = IngestAck::decode(message.as_ref()).context("not an IngestAck")?;
            let wanted = bodies::expected_ack(&bodies::log_batch());
            if ack != wanted {
                bail!("{ack:?}, wanted {wanted:?}");
            }
            Ok(())
        }
        Call::ClientStream => {
            let [message] = messages else {
                bail!("{} response messages, wanted 1", messages.len());
            };
            let summary = StreamSummary::decode(message.as_ref()).context("not a StreamSummary")?;
            let wanted = StreamSummary {
                messages: STREAM_MESSAGES,
                bytes: u64::from(STREAM_MESSAGES) * SMALL_PAYLOAD as u64,
            };
            if summary != wanted {
                bail!("{summary:?}, wanted {wanted:?}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::bodies::envelope;

    fn echo(len: usize) -> Vec<u8> {
        EchoRequest {
            payload: bodies::payload(len),
        }
        .encode_to_vec()
    }

    fn exchange(content_type: &str, body: Vec<u8>, trailers: Option<(&str, &str)>) -> Exchange {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        Exchange {
            status: StatusCode::OK,
            headers,
            body: body.into(),
            trailers: trailers.map(|(name, value)| {
                let mut map = HeaderMap::new();
                map.insert(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
                map
            }),
        }
    }

    #[test]
    fn accepts_a_grpc_echo_and_rejects_an_error_status() {
        let ok = exchange(
            "application/grpc",
            envelope(0, &echo(64)),
            Some(("grpc-status", "0")),
        );
        let got = messages(Protocol::Grpc, Call::Echo64, &ok).unwrap();
        check_messages(Call::Echo64, &got).unwrap();
        let failed = exchange("application/grpc", Vec::new(), Some(("grpc-status", "12")));
        let why = messages(Protocol::Grpc, Call::Echo64, &failed).unwrap_err();
        assert!(why.to_string().contains("grpc-status 12"), "{why}");
        let missing = exchange("application/grpc", envelope(0, &echo(64)), None);
        assert!(messages(Protocol::Grpc, Call::Echo64, &missing).is_err());
    }

    #[test]
    fn reads_the_grpc_web_trailer_frame() {
        let mut body = envelope(0, &echo(64));
        body.extend(envelope(0x80, b"grpc-status: 0\r\ngrpc-message: \r\n"));
        let ok = exchange("application/grpc-web+proto", body, None);
        let got = messages(Protocol::GrpcWeb, Call::Echo64, &ok).unwrap();
        assert_eq!(got.len(), 1);
        let mut body = envelope(0, &echo(64));
        body.extend(envelope(0x80, b"grpc-status:13\r\ngrpc-message:boom\r\n"));
        let failed = exchange("application/grpc-web+proto", body, None);
        let why = messages(Protocol::GrpcWeb, Call::Echo64, &failed).unwrap_err();
        assert!(why.to_string().contains("13: boom"), "{why}");
    }

    #[test]
    fn checks_the_connect_end_stream() {
        let mut body: Vec<u8> = (0..1000).flat_map(|_| envelope(0, &echo(64))).collect();
        body.extend(envelope(2, b"{}"));
        let ok = exchange("application/connect+proto", body.clone(), None);
        let got = messages(Protocol::Connect, Call::ServerStream, &ok).unwrap();
        check_messages(Call::ServerStream, &got).unwrap();
        // One message short.
        assert!(check_messages(Call::ServerStream, &got[1..]).is_err());
        let mut failed = envelope(0, &echo(64));
        failed.extend(envelope(2, br#"{"error":{"code":"internal"}}"#));
        let failed = exchange("application/connect+proto", failed, None);
        assert!(messages(Protocol::Connect, Call::ServerStream, &failed).is_err());
        let unterminated = exchange("application/connect+proto", envelope(0, &echo(64)), None);
        assert!(messages(Protocol::Connect, Call::ServerStream, &unterminated).is_err());
    }

    #[test]
    fn checks_acks_and_summaries() {
        let ack = bodies::expected_ack(&bodies::log_batch()).encode_to_vec();
        check_messages(Call::Ingest, &[ack.into()]).unwrap();
        let wrong = IngestAck {
            records: 49,
            message_bytes: 1,
        }
        .encode_to_vec();
        assert!(check_messages(Call::Ingest, &[wrong.into()]).is_err());
        let summary = StreamSummary {
            messages: 1000,
            bytes: 64_000,
        }
        .encode_to_vec();
        check_messages(Call::ClientStream, &[summary.into()]).unwrap();
        let unary = exchange("application/json", Vec::new(), None);
        assert!(messages(Protocol::Connect, Call::Echo64, &unary).is_err());
    }

    type TestBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

    /// Serves `answer` (given each request's body) on a loopback port, HTTP/1.1 and h2c; the
    /// server runs whenever `runtime` does, that is while a check blocks on it.
    fn serve(
        runtime: &tokio::runtime::Runtime,
        answer: fn(Bytes) -> http::Response<TestBody>,
    ) -> u16 {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: Request<hyper::body::Incoming>| async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            Ok::<_, hyper::Error>(answer(body))
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        port
    }

    fn grpc_answer(body: Bytes, status: &'static str) -> http::Response<TestBody> {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", status.parse().unwrap());
        http::Response::builder()
            .header("content-type", "application/grpc")
            .body(
                Full::new(body)
                    .with_trailers(async move { Some(Ok(trailers)) })
                    .boxed(),
            )
            .unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn checks_a_real_grpc_exchange_over_h2c() {
        let runtime = runtime();
        let echo = serve(&runtime, |body| grpc_answer(body, "0"));
        verify(
            &runtime,
            echo,
            Server::Switchboard,
            Call::Echo64,
            Protocol::Grpc,
        )
        .unwrap();
        // An echo is not an IngestAck with the right counts.
        assert!(
            verify(
                &runtime,
                echo,
                Server::Switchboard,
                Call::Ingest,
                Protocol::Grpc
            )
            .is_err()
        );
        let failing = serve(&runtime, |_| grpc_answer(Bytes::new(), "12"));
        let why = verify(
            &runtime,
            failing,
            Server::Switchboard,
            Call::Echo64,
            Protocol::Grpc,
        )
        .unwrap_err()
        .to_string();
        assert!(why.contains("grpc-status 12"), "{why}");
    }

    #[test]
    fn checks_connect_unary_over_http1_and_h2c() {
        let runtime = runtime();
        let port = serve(&runtime, |body| {
            http::Response::builder()
                .header("content-type", "application/proto")
                .body(Full::new(body).boxed())
                .unwrap()
        });
        for protocol in [Protocol::Connect, Protocol::ConnectH1] {
            verify(&runtime, port, Server::Switchboard, Call::Echo64, protocol).unwrap();
            verify(&runtime, port, Server::Hyper, Call::Echo16k, protocol).unwrap();
        }
        let wrong = serve(&runtime, |_| {
            http::Response::builder()
                .header("content-type", "application/proto")
                .body(Full::new(Bytes::from_static(b"\x0a\x01x")).boxed())
                .unwrap()
        });
        assert!(
            verify(
                &runtime,
                wrong,
                Server::Hyper,
                Call::Echo64,
                Protocol::ConnectH1
            )
            .is_err()
        );
        assert!(
            verify(
                &runtime,
                wrong,
                Server::Switchboard,
                Call::Echo64,
                Protocol::Connect
            )
            .is_err()
        );
    }

    #[test]
    fn splits_envelopes() {
        let mut body = envelope(0, b"abc");
        body.extend(envelope(0x80, b""));
        let frames = envelopes(&body).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].1.as_ref(), b"abc");
        assert!(envelopes(&body[..body.len() - 1]).is_err());
        assert!(envelopes(&[0, 0, 0, 0, 9, 1]).is_err());
    }
}
