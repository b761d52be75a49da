//! gRPC's interop test server (`grpc.testing.TestService`) on switchboard. It serves gRPC,
//! gRPC-Web and Connect on one port: HTTP/2 with prior knowledge and HTTP/1.1 in cleartext, or
//! either over TLS (ALPN).
//!
//! Flags, as gRPC's interop harnesses pass them:
//!
//! - `--port=PORT` (default 10000; 0 picks a free port);
//! - `--use_tls` with `--tls_cert_file` and `--tls_key_file` (default: grpc's test server
//!   certificate `server1.pem`, for `*.test.google.fr`, from the grpc-go module);
//! - `--host=ADDR`, an extension: the address to listen on (default: every interface).
//!
//! Once it accepts connections it prints one line, `interop-server listening on ADDR:PORT`.
//!
//! Server features (interop-test-descriptions.md): EmptyCall, UnaryCall, CacheableUnaryCall,
//! StreamingInputCall, StreamingOutputCall, FullDuplexCall, HalfDuplexCall, CompressedRequest
//! (`expect_compressed` is checked against how each request message really arrived),
//! CompressedResponse (`response_compressed` and `ResponseParameters.compressed` decide message
//! by message), Echo Status, Echo Metadata and `interval_us`. `UnimplementedCall` answers
//! `unimplemented`, as it must; the authentication echoes (`fill_username`,
//! `fill_oauth_scope`) are ignored.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, Result};
use http::{HeaderMap, HeaderName, HeaderValue};
use switchboard::compression::MessageCompression;
use switchboard::server::{Router, Server};
use switchboard::{Code, Error, Request, Response, ResponseStream, Streaming};
use switchboard_interop::flags::Flags;
use switchboard_interop::proto::{
    BoolValue, EchoStatus, Empty, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse, TestService, TestServiceServer,
};
use switchboard_interop::{ECHO_INITIAL_KEY, ECHO_TRAILING_KEY, grpc_testdata_dir, zeros};

/// The test service.
struct Interop;

/// The metadata a request asks to have echoed.
#[derive(Clone, Default)]
struct Echo {
    initial: Option<HeaderValue>,
    trailing: Option<HeaderValue>,
}

impl Echo {
    fn of(headers: &HeaderMap) -> Echo {
        Echo {
            initial: headers.get(ECHO_INITIAL_KEY).cloned(),
            trailing: headers.get(ECHO_TRAILING_KEY).cloned(),
        }
    }

    /// Puts the echoes in a response's headers and trailers.
    fn response<T>(&self, message: T) -> Response<T> {
        let mut response = Response::new(message);
        if let Some(value) = &self.initial {
            response
                .headers_mut()
                .insert(HeaderName::from_static(ECHO_INITIAL_KEY), value.clone());
        }
        if let Some(value) = &self.trailing {
            response
                .trailers_mut()
                .insert(HeaderName::from_static(ECHO_TRAILING_KEY), value.clone());
        }
        response
    }

    /// Puts the echoes in the metadata of an error that ends a unary call.
    fn error(&self, mut error: Error) -> Error {
        for (name, value) in [
            (ECHO_INITIAL_KEY, &self.initial),
            (ECHO_TRAILING_KEY, &self.trailing),
        ] {
            if let Some(value) = value {
                error
                    .metadata_mut()
                    .insert(HeaderName::from_static(name), value.clone());
            }
        }
        error
    }
}

/// Echo Status: a `response_status` with a non-zero code ends the call with that status.
fn echo_status(status: Option<&EchoStatus>) -> Result<(), Error> {
    match status {
        Some(status) if status.code != 0 => Err(Error::new(
            Code::from_i32(status.code).unwrap_or(Code::Unknown),
            status.message.clone(),
        )),
        _ => Ok(()),
    }
}

/// CompressedRequest: when the client sets `expect_compressed`, the request message must have
/// arrived compressed (or, set to false, uncompressed).
fn check_compression(expect: Option<&BoolValue>, compressed: Option<bool>) -> Result<(), Error> {
    let Some(expect) = expect else {
        return Ok(());
    };
    let compressed = compressed.unwrap_or(false);
    if expect.value == compressed {
        return Ok(());
    }
    Err(Error::invalid_argument(if expect.value {
        "expect_compressed is set, but the request message arrived uncompressed"
    } else {
        "expect_compressed is false, but the request message arrived compressed"
    }))
}

/// A response payload of `size` zeros; only `COMPRESSABLE` payloads are supported.
fn payload(response_type: i32, size: i32) -> Result<switchboard_interop::proto::Payload, Error> {
    if response_type != PayloadType::Compressable as i32 {
        return Err(Error::invalid_argument(format!(
            "unsupported response type {response_type}"
        )));
    }
    let size = usize::try_from(size)
        .map_err(|_| Error::invalid_argument(format!("invalid response size {size}")))?;
    Ok(zeros(size))
}

async fn unary(request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Error> {
    let echo = Echo::of(request.headers());
    let message = request.message();
    let reply = check_compression(
        message.expect_compressed.as_ref(),
        request.request_compressed(),
    )
    .and_then(|()| echo_status(message.response_status.as_ref()))
    .and_then(|()| payload(message.response_type, message.response_size));
    match reply {
        Ok(payload) => {
            if let Some(compressed) = &message.response_compressed {
                request.message_compression().set(Some(compressed.value));
            }
            Ok(echo.response(SimpleResponse {
                payload: Some(payload),
                ..SimpleResponse::default()
            }))
        }
        Err(error) => Err(echo.error(error)),
    }
}

/// The next response of a streaming method, after its `interval_us`, compressed as its
/// `compressed` field says (the policy decides when it is unset), with the caller's socket
/// address when `fill_peer_socket_address` asks for it.
async fn next_response(
    response_type: i32,
    parameters: &ResponseParameters,
    switch: &MessageCompression,
    peer: &str,
) -> Result<StreamingOutputCallResponse, Error> {
    if let Ok(us) = u64::try_from(parameters.interval_us)
        && us > 0
    {
        tokio::time::sleep(Duration::from_micros(us)).await;
    }
    let payload = payload(response_type, parameters.size)?;
    // Set right before the message is yielded: the response body frames it at once.
    switch.set(parameters.compressed.as_ref().map(|c| c.value));
    let wants_peer = parameters
        .fill_peer_socket_address
        .as_ref()
        .is_some_and(|b| b.value);
    Ok(StreamingOutputCallResponse {
        payload: Some(payload),
        peer_socket_address: if wants_peer {
            peer.to_owned()
        } else {
            String::new()
        },
    })
}

/// The responses of FullDuplexCall (one per `ResponseParameters` of each request, as the
/// requests arrive) or HalfDuplexCall (the same, once the request stream has ended).
struct Duplex {
    requests: Streaming<StreamingOutputCallRequest>,
    half: bool,
    /// Responses still to send, with their payload type.
    pending: VecDeque<(i32, ResponseParameters)>,
    requests_done: bool,
    failed: bool,
    switch: MessageCompression,
    /// The caller's socket address, as `host:port`.
    peer: String,
}

impl Duplex {
    fn stream(self) -> ResponseStream<StreamingOutputCallResponse> {
        Box::pin(futures_util::stream::unfold(
            self,
            |mut duplex| async move {
                let item = duplex.next().await?;
                duplex.failed = item.is_err();
                Some((item, duplex))
            },
        ))
    }

    async fn next(&mut self) -> Option<Result<StreamingOutputCallResponse, Error>> {
        if self.failed {
            return None;
        }
        loop {
            // Half duplex answers only once every request is in.
            if (!self.half || self.requests_done)
                && let Some((response_type, parameters)) = self.pending.pop_front()
            {
                return Some(
                    next_response(response_type, &parameters, &self.switch, &self.peer).await,
                );
            }
            if self.requests_done {
                return None;
            }
            match self.requests.message().await {
                Err(error) => return Some(Err(error)),
                Ok(None) => self.requests_done = true,
                Ok(Some(request)) => {
                    if let Err(error) = echo_status(request.response_status.as_ref()) {
                        return Some(Err(error));
                    }
                    let response_type = request.response_type;
                    self.pending.extend(
                        request
                            .response_parameters
                            .into_iter()
                            .map(|p| (response_type, p)),
                    );
                }
            }
        }
    }
}

/// The caller's socket address as grpc-go's interop server writes it (`host:port`).
fn peer_address<T>(request: &Request<T>) -> String {
    request
        .peer()
        .and_then(|peer| peer.addr())
        .map(|addr| addr.to_string())
        .unwrap_or_default()
}

fn duplex(
    request: Request<Streaming<StreamingOutputCallRequest>>,
    half: bool,
) -> Response<ResponseStream<StreamingOutputCallResponse>> {
    let echo = Echo::of(request.headers());
    let switch = request.message_compression().clone();
    let peer = peer_address(&request);
    let duplex = Duplex {
        requests: request.into_message(),
        half,
        pending: VecDeque::new(),
        requests_done: false,
        failed: false,
        switch,
        peer,
    };
    echo.response(duplex.stream())
}

impl TestService for Interop {
    async fn empty_call(&self, request: Request<Empty>) -> Result<Response<Empty>, Error> {
        Ok(Echo::of(request.headers()).response(Empty {}))
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Error> {
        unary(request).await
    }

    async fn cacheable_unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Error> {
        unary(request).await
    }

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Error> {
        let echo = Echo::of(request.headers());
        let switch = request.message_compression().clone();
        let peer = peer_address(&request);
        let message = request.into_message();
        let response_type = message.response_type;
        let status = message.response_status;
        let parameters: VecDeque<ResponseParameters> = message.response_parameters.into();
        let state = (parameters, status, switch, false);
        let stream =
            futures_util::stream::unfold(state, move |(mut parameters, status, switch, done)| {
                let peer = peer.clone();
                async move {
                    if done {
                        return None;
                    }
                    let item = match parameters.pop_front() {
                        Some(next) => next_response(response_type, &next, &switch, &peer).await,
                        // Echo Status, once every response went out.
                        None => echo_status(status.as_ref()).map(|()| None).transpose()?,
                    };
                    let done = item.is_err();
                    Some((item, (parameters, status, switch, done)))
                }
            });
        Ok(echo.response(Box::pin(stream)))
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Error> {
        let echo = Echo::of(request.headers());
        let mut requests = request.into_message();
        let mut total = 0usize;
        loop {
            let message = match requests.message().await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(error) => return Err(echo.error(error)),
            };
            check_compression(
                message.expect_compressed.as_ref(),
                requests.last_compressed(),
            )
            .map_err(|e| echo.error(e))?;
            total += message.payload.map_or(0, |p| p.body.len());
        }
        let aggregated_payload_size = i32::try_from(total)
            .map_err(|_| echo.error(Error::invalid_argument("aggregated payload too large")))?;
        Ok(echo.response(StreamingInputCallResponse {
            aggregated_payload_size,
        }))
    }

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Error> {
        Ok(duplex(request, false))
    }

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Error> {
        Ok(duplex(request, true))
    }
}

fn main() -> Result<()> {
    let flags = Flags::parse(
        std::env::args().skip(1),
        &["port", "host", "tls_cert_file", "tls_key_file"],
        &["use_tls"],
    )?;
    let port: u16 = flags.get_or("port", 10000)?;
    let host: Option<IpAddr> = flags.get("host").map(str::parse).transpose()?;
    let tls = if flags.bool("use_tls") {
        let testdata = grpc_testdata_dir();
        let cert_path = flags
            .get("tls_cert_file")
            .map_or_else(|| testdata.join("server1.pem"), Into::into);
        let key_path = flags
            .get("tls_key_file")
            .map_or_else(|| testdata.join("server1.key"), Into::into);
        let cert = std::fs::read(&cert_path)
            .with_context(|| format!("reading {}", cert_path.display()))?;
        let key =
            std::fs::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
        Some(switchboard::server::tls::server_config(&cert, &key, None)?)
    } else {
        None
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(serve(host, port, tls))
}

async fn serve(
    host: Option<IpAddr>,
    port: u16,
    tls: Option<std::sync::Arc<switchboard::server::tls::ServerTlsConfig>>,
) -> Result<()> {
    let listener = match host {
        Some(ip) => switchboard::server::bind(SocketAddr::new(ip, port)).await,
        // Every interface: IPv6 and IPv4 where the system has both, else IPv4.
        None => {
            match switchboard::server::bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))
                .await
            {
                Ok(bound) => Ok(bound),
                Err(_) => {
                    switchboard::server::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))
                        .await
                }
            }
        }
    };
    let (listener, addr) = listener.with_context(|| format!("listening on port {port}"))?;
    let router = Router::new().add_service(TestServiceServer::new(Interop));
    let mut server = Server::new(router);
    if let Some(tls) = tls {
        server = server.with_tls(tls);
    }
    println!("interop-server listening on {addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    server.serve_with_shutdown(listener, shutdown).await?;
    Ok(())
}
