//! The ceiling: `hyper-echo --addr 127.0.0.1:PORT` answers every request with its own body.
//!
//! No RPC work at all: no routing, no envelope parsing, no protobuf. The request body is
//! collected and sent back with the request's `content-type`, and just enough framing is
//! added for RPC clients to accept the answer as a successful call whose message is the one
//! they sent:
//!
//! * gRPC (`application/grpc*`): the body, then HTTP trailers `grpc-status: 0`;
//! * gRPC-Web (`application/grpc-web*`): the body, then a gRPC-Web trailers frame;
//! * anything else (Connect unary, plain HTTP): the body as it is.
//!
//! Since EchoRequest and EchoResponse share their encoding, a unary Echo call gets the right
//! answer. The whole request body is read before answering, so streaming calls that expect
//! a reply before they finish sending (a ping-pong bidi) are not served meaningfully.
//!
//! Transport settings are hyper's defaults plus what every RPC server here sets too:
//! TCP_NODELAY, and no cap on concurrent HTTP/2 streams. Prints `listening on <addr>` once
//! bound and exits 0 on SIGTERM or SIGINT.
#![deny(unsafe_code)]

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

const USAGE: &str = "usage: hyper-echo [--addr HOST:PORT]   (default 127.0.0.1:8080)";

/// How long shutdown waits for requests in flight: the harness stops its load before it sends
/// SIGTERM, and the process must be gone within a second so profilers can write their output.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The gRPC-Web trailers frame of a successful call: flag 0x80, big-endian length, then the
/// trailers as HTTP/1 header lines.
const GRPC_WEB_OK_TRAILERS: &[u8] = b"\x80\x00\x00\x00\x0fgrpc-status:0\r\n";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = bench_cli::parse_addr(USAGE)?;
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let mut shutdown = std::pin::pin!(bench_cli::shutdown_signal()?);
    println!("listening on {local}");
    std::io::Write::flush(&mut std::io::stdout())?;

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(None);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait a moment and try again.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection(TokioIo::new(stream), hyper::service::service_fn(echo))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A peer that vanishes mid-request is no concern of a benchmark server.
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}

/// Answers a request with its own body and content type, framed as described in the module
/// documentation.
async fn echo(request: Request<Incoming>) -> Result<Response<EchoBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let data = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            // The request body broke off; there is nobody left to answer properly.
            let mut response = Response::new(EchoBody::new(Bytes::new(), None));
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    };
    let content_type = parts.headers.get(CONTENT_TYPE).cloned();
    let kind = content_type
        .as_ref()
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    let body = if kind.starts_with(b"application/grpc-web") {
        let mut framed = BytesMut::with_capacity(data.len() + GRPC_WEB_OK_TRAILERS.len());
        framed.put_slice(&data);
        framed.put_slice(GRPC_WEB_OK_TRAILERS);
        EchoBody::new(framed.freeze(), None)
    } else if kind.starts_with(b"application/grpc") {
        let mut trailers = HeaderMap::with_capacity(1);
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        EchoBody::new(data, Some(trailers))
    } else {
        EchoBody::new(data, None)
    };
    let mut response = Response::new(body);
    if let Some(content_type) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    Ok(response)
}

/// A response body of one data frame, optionally followed by trailers.
struct EchoBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl EchoBody {
    fn new(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        EchoBody {
            data: (!data.is_empty()).then_some(data),
            trailers,
        }
    }
}

impl Body for EchoBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let frame = match this.data.take() {
            Some(data) => Some(Frame::data(data)),
            None => this.trailers.take().map(Frame::trailers),
        };
        Poll::Ready(frame.map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let len = self.data.as_ref().map_or(0, |data| data.len() as u64);
        match self.trailers {
            // An exact size lets hyper send `content-length`; a gRPC response has none.
            Some(_) => {
                let mut hint = SizeHint::new();
                hint.set_lower(len);
                hint
            }
            None => SizeHint::with_exact(len),
        }
    }
}
