//! gRPC's interop test client on switchboard: runs one test case of
//! `doc/interop-test-descriptions.md` (grpc/grpc) against a `grpc.testing.TestService` and
//! exits with 0 when it passed, 1 when it failed.
//!
//! Flags, as gRPC's interop harnesses pass them: `--server_host` (default `localhost`),
//! `--server_port` (default 10000), `--test_case` (default `large_unary`; `all` runs every
//! case), `--use_tls`, `--use_test_ca` (trust grpc's test CA, `ca.pem` of the grpc-go module),
//! `--ca_file`, and `--server_host_override` (the name used for TLS and the `:authority`,
//! while connecting to `--server_host`). Extension: `--protocol=grpc|grpcweb|connect`
//! (default `grpc`), the wire protocol switchboard speaks.
//!
//! Cancellation is what it is in Rust: dropping the call, which resets its HTTP/2 stream; the
//! cancel cases check that the call was still in progress when it was dropped and report it
//! `canceled`, as the cases ask.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use futures_util::StreamExt as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use switchboard::client::{Client, ClientConfig, HttpTransport};
use switchboard::metadata::BinaryMetadata as _;
use switchboard::{Body, Code, Error, Request, Streaming};
use switchboard_interop::flags::Flags;
use switchboard_interop::proto::{
    BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest,
    StreamingInputCallRequest, StreamingOutputCallRequest, StreamingOutputCallResponse,
    TestServiceClient, UnimplementedServiceClient,
};
use switchboard_interop::tap::Tap;
use switchboard_interop::{ECHO_INITIAL_KEY, ECHO_TRAILING_KEY, grpc_testdata_dir, zeros};
use tokio::sync::mpsc;

/// Every case this client runs, in the order `--test_case=all` runs them.
const CASES: [&str; 18] = [
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
];

/// How long one case may take.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

const LARGE_REQUEST: usize = 271_828;
const LARGE_RESPONSE: i32 = 314_159;
const REQUEST_SIZES: [usize; 4] = [27_182, 8, 1_828, 45_904];
const RESPONSE_SIZES: [i32; 4] = [31_415, 9, 2_653, 58_979];
const ECHO_INITIAL_VALUE: &str = "test_initial_metadata_value";
const ECHO_TRAILING_VALUE: [u8; 3] = [0xab, 0xab, 0xab];
const SPECIAL_STATUS_MESSAGE: &str =
    "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n";

fn main() -> std::process::ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
        .and_then(|runtime| runtime.block_on(run()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("interop-client: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let flags = Flags::parse(
        std::env::args().skip(1),
        &[
            "server_host",
            "server_port",
            "test_case",
            "server_host_override",
            "ca_file",
            "protocol",
        ],
        &["use_tls", "use_test_ca"],
    )?;
    let ctx = Ctx::new(&flags)?;
    let case = flags.get("test_case").unwrap_or("large_unary");
    let cases: Vec<&str> = if case == "all" {
        CASES.to_vec()
    } else if CASES.contains(&case) {
        vec![case]
    } else {
        bail!(
            "unsupported test case {case:?}; supported: {}",
            CASES.join(", ")
        );
    };
    let mut failed = 0;
    for case in cases {
        match tokio::time::timeout(CASE_TIMEOUT, ctx.run(case)).await {
            Ok(Ok(())) => println!("PASS {case}"),
            Ok(Err(error)) => {
                failed += 1;
                println!("FAIL {case}: {error:#}");
            }
            Err(_) => {
                failed += 1;
                println!("FAIL {case}: timed out after {}s", CASE_TIMEOUT.as_secs());
            }
        }
    }
    ensure!(failed == 0, "{failed} test case(s) failed");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The connection.

/// Resolves every host name to `--server_host`, so that `--server_host_override` can name the
/// server (TLS name and `:authority`) while the connection goes to the real host.
#[derive(Clone, Debug)]
struct HostResolver {
    host: String,
}

impl tower_service::Service<Name> for HostResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _name: Name) -> Self::Future {
        let host = self.host.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(addrs.into_iter())
        })
    }
}

type TlsConnector = hyper_rustls::HttpsConnector<HttpConnector<HostResolver>>;

/// The HTTP client under switchboard: its default h2c transport, or hyper with rustls.
#[derive(Clone, Debug)]
enum Wire {
    H2c(HttpTransport),
    Tls(HyperClient<TlsConnector, Body>),
}

impl tower_service::Service<http::Request<Body>> for Wire {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Wire::H2c(transport) => transport.poll_ready(cx),
            Wire::Tls(client) => client.poll_ready(cx),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Wire::H2c(transport) => transport.call(request),
            Wire::Tls(client) => client.call(request),
        }
    }
}

type Transport = Tap<Wire>;

/// Everything a case needs.
struct Ctx {
    test: TestServiceClient<Transport>,
    unimplemented: UnimplementedServiceClient<Transport>,
    tap: Transport,
}

impl Ctx {
    fn new(flags: &Flags) -> Result<Ctx> {
        let host = flags.get("server_host").unwrap_or("localhost").to_owned();
        let port: u16 = flags.get_or("server_port", 10000)?;
        let protocol = match flags.get("protocol").unwrap_or("grpc") {
            "grpc" => switchboard::Protocol::Grpc,
            "grpcweb" | "grpc-web" => switchboard::Protocol::GrpcWeb,
            "connect" => switchboard::Protocol::Connect,
            other => bail!("unknown protocol {other:?}: use grpc, grpcweb or connect"),
        };
        let (wire, base) = if flags.bool("use_tls") {
            let ca_path = match flags.get("ca_file") {
                Some(path) => path.into(),
                None if flags.bool("use_test_ca") => grpc_testdata_dir().join("ca.pem"),
                None => bail!(
                    "--use_tls needs --use_test_ca or --ca_file: this client trusts no platform roots"
                ),
            };
            let ca = std::fs::read(&ca_path)
                .with_context(|| format!("reading {}", ca_path.display()))?;
            let config = switchboard::client::tls::client_config(Some(&ca), None)?;
            let name = flags.get("server_host_override").unwrap_or(&host);
            let mut http = HttpConnector::new_with_resolver(HostResolver { host: host.clone() });
            http.set_nodelay(true);
            http.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*config).clone())
                .https_only()
                .enable_http2()
                .wrap_connector(http);
            let client = HyperClient::builder(TokioExecutor::new())
                .http2_only(true)
                .build(connector);
            (
                Wire::Tls(client),
                format!("https://{}", authority(name, port)),
            )
        } else {
            (
                Wire::H2c(HttpTransport::h2c()),
                format!("http://{}", authority(&host, port)),
            )
        };
        let tap = Tap::new(wire);
        let client = Client::new(&base, tap.clone())?
            .with_config(ClientConfig::default().protocol(protocol));
        Ok(Ctx {
            test: TestServiceClient::new(client.clone()),
            unimplemented: UnimplementedServiceClient::new(client),
            tap,
        })
    }

    async fn run(&self, case: &str) -> Result<()> {
        match case {
            "empty_unary" => self.empty_unary().await,
            "large_unary" => self.large_unary().await,
            "client_compressed_unary" => self.client_compressed_unary().await,
            "server_compressed_unary" => self.server_compressed_unary().await,
            "client_streaming" => self.client_streaming().await,
            "client_compressed_streaming" => self.client_compressed_streaming().await,
            "server_streaming" => self.server_streaming().await,
            "server_compressed_streaming" => self.server_compressed_streaming().await,
            "ping_pong" => self.ping_pong().await,
            "empty_stream" => self.empty_stream().await,
            "timeout_on_sleeping_server" => self.timeout_on_sleeping_server().await,
            "cancel_after_begin" => self.cancel_after_begin().await,
            "cancel_after_first_response" => self.cancel_after_first_response().await,
            "custom_metadata" => self.custom_metadata().await,
            "status_code_and_message" => self.status_code_and_message().await,
            "special_status_message" => self.special_status_message().await,
            "unimplemented_method" => self.unimplemented_method().await,
            "unimplemented_service" => self.unimplemented_service().await,
            other => bail!("unknown test case {other:?}"),
        }
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const COMPRESSABLE: i32 = PayloadType::Compressable as i32;

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_type: COMPRESSABLE,
        response_size: LARGE_RESPONSE,
        payload: Some(zeros(LARGE_REQUEST)),
        ..SimpleRequest::default()
    }
}

fn response_parameters(size: i32) -> ResponseParameters {
    ResponseParameters {
        size,
        ..ResponseParameters::default()
    }
}

fn output_request(response_size: i32, payload_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_type: COMPRESSABLE,
        response_parameters: vec![response_parameters(response_size)],
        payload: Some(zeros(payload_size)),
        ..StreamingOutputCallRequest::default()
    }
}

/// A response payload must be `COMPRESSABLE` zeros of the size asked for.
fn check_payload(payload: Option<&Payload>, size: i32) -> Result<()> {
    let payload = payload.context("the response has no payload")?;
    ensure!(
        payload.r#type == COMPRESSABLE,
        "payload type {}, want COMPRESSABLE",
        payload.r#type
    );
    ensure!(
        payload.body.len() == usize::try_from(size)?,
        "payload of {} bytes, want {size}",
        payload.body.len()
    );
    ensure!(
        payload.body.iter().all(|&b| b == 0),
        "the payload is not all zeros"
    );
    Ok(())
}

fn check_streamed(message: Option<StreamingOutputCallResponse>, size: i32) -> Result<()> {
    let message = message.context("the response stream ended early")?;
    check_payload(message.payload.as_ref(), size)
}

/// The call must have failed with `code` (and `message`, when given).
fn expect_error<T>(result: Result<T, Error>, code: Code, message: Option<&str>) -> Result<()> {
    let error = match result {
        Ok(_) => bail!("the call succeeded, want {code:?}"),
        Err(error) => error,
    };
    ensure!(
        error.code() == code,
        "got {:?} ({:?}), want {code:?}",
        error.code(),
        error.message()
    );
    if let Some(message) = message {
        ensure!(
            error.message() == message,
            "status message {:?}, want {message:?}",
            error.message()
        );
    }
    Ok(())
}

/// A request stream fed through a channel: the case decides when each message goes out, and
/// dropping the sender half-closes the stream.
fn channel<T: Send + 'static>() -> (
    mpsc::UnboundedSender<T>,
    impl futures_util::Stream<Item = T> + Send + 'static,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|message| (message, receiver))
    });
    (sender, stream)
}

/// What starting a FullDuplexCall returns (before any response headers).
type DuplexCall = Result<switchboard::Response<Streaming<StreamingOutputCallResponse>>, Error>;

/// A spawned call, aborted (so canceled on the wire) when dropped.
struct Spawned<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The echo metadata of `custom_metadata`.
fn echo_headers() -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static(ECHO_INITIAL_KEY),
        HeaderValue::from_static(ECHO_INITIAL_VALUE),
    );
    headers.append_bin(ECHO_TRAILING_KEY, &ECHO_TRAILING_VALUE)?;
    Ok(headers)
}

/// Exactly the echoed initial value in `headers`, and the trailing one in `trailers`.
fn check_echoes(headers: &HeaderMap, trailers: &HeaderMap) -> Result<()> {
    let initial: Vec<_> = headers.get_all(ECHO_INITIAL_KEY).iter().collect();
    ensure!(
        initial == [ECHO_INITIAL_VALUE],
        "initial metadata {ECHO_INITIAL_KEY}: {initial:?}, want [{ECHO_INITIAL_VALUE:?}]"
    );
    let trailing = trailers.get_all_bin(ECHO_TRAILING_KEY)?;
    ensure!(
        trailing.len() == 1 && trailing[0][..] == ECHO_TRAILING_VALUE,
        "trailing metadata {ECHO_TRAILING_KEY}: {trailing:?}, want [{ECHO_TRAILING_VALUE:?}]"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The cases.

impl Ctx {
    async fn empty_unary(&self) -> Result<()> {
        let response = self.test.empty_call(Empty {}).await?;
        ensure!(*response.message() == Empty {}, "the response is not empty");
        Ok(())
    }

    async fn large_unary(&self) -> Result<()> {
        let response = self.test.unary_call(large_request()).await?;
        check_payload(response.message().payload.as_ref(), LARGE_RESPONSE)
    }

    async fn client_compressed_unary(&self) -> Result<()> {
        let call = |expect: bool, compress: bool| {
            let mut request = Request::new(SimpleRequest {
                expect_compressed: Some(BoolValue { value: expect }),
                ..large_request()
            });
            request.options_mut().compression = Some("gzip");
            request.message_compression().set(Some(compress));
            self.test.unary_call(request)
        };
        // The probe: an uncompressed message that says it is compressed.
        expect_error(call(true, false).await, Code::InvalidArgument, None).context(
            "the probe (expect_compressed, sent uncompressed) must fail: CompressedRequest",
        )?;
        let response = call(true, true).await.context("the compressed call")?;
        check_payload(response.message().payload.as_ref(), LARGE_RESPONSE)?;
        let response = call(false, false).await.context("the uncompressed call")?;
        check_payload(response.message().payload.as_ref(), LARGE_RESPONSE)
    }

    async fn server_compressed_unary(&self) -> Result<()> {
        for compressed in [true, false] {
            self.tap.clear();
            let response = self
                .test
                .unary_call(SimpleRequest {
                    response_compressed: Some(BoolValue { value: compressed }),
                    ..large_request()
                })
                .await
                .with_context(|| format!("response_compressed {compressed}"))?;
            check_payload(response.message().payload.as_ref(), LARGE_RESPONSE)?;
            let observed = self.tap.observed();
            ensure!(
                observed.len() == 1 && observed[0].compressed == [compressed],
                "response_compressed {compressed}: messages on the wire were {observed:?}"
            );
        }
        Ok(())
    }

    async fn client_streaming(&self) -> Result<()> {
        let requests = REQUEST_SIZES.map(|size| StreamingInputCallRequest {
            payload: Some(zeros(size)),
            ..StreamingInputCallRequest::default()
        });
        let response = self
            .test
            .streaming_input_call(Request::new(futures_util::stream::iter(requests)))
            .await?;
        let got = response.message().aggregated_payload_size;
        ensure!(got == 74_922, "aggregated payload size {got}, want 74922");
        Ok(())
    }

    async fn client_compressed_streaming(&self) -> Result<()> {
        let message = |expect: bool, size: usize| StreamingInputCallRequest {
            expect_compressed: Some(BoolValue { value: expect }),
            payload: Some(zeros(size)),
        };
        // The probe: an uncompressed message that says it is compressed, on a stream left
        // open, must fail the call.
        let (sender, requests) = channel();
        sender.send(message(true, 27_182))?;
        let mut probe = Request::new(requests);
        probe.options_mut().compression = Some("gzip");
        probe.message_compression().set(Some(false));
        let result = self.test.streaming_input_call(probe).await;
        drop(sender);
        expect_error(result, Code::InvalidArgument, None).context(
            "the probe (expect_compressed, sent uncompressed) must fail: CompressedRequest",
        )?;
        // Then the first message compressed, the second not: set as each is sent.
        let mut request = Request::new(());
        request.options_mut().compression = Some("gzip");
        let switch = request.message_compression().clone();
        let stream = futures_util::stream::iter([
            (true, message(true, 27_182)),
            (false, message(false, 45_904)),
        ])
        .map(move |(compress, message)| {
            switch.set(Some(compress));
            message
        });
        let response = self
            .test
            .streaming_input_call(request.map(|()| stream))
            .await
            .context("the compressed-then-uncompressed call")?;
        let got = response.message().aggregated_payload_size;
        ensure!(got == 73_086, "aggregated payload size {got}, want 73086");
        Ok(())
    }

    async fn server_streaming(&self) -> Result<()> {
        let response = self
            .test
            .streaming_output_call(StreamingOutputCallRequest {
                response_type: COMPRESSABLE,
                response_parameters: RESPONSE_SIZES.map(response_parameters).to_vec(),
                ..StreamingOutputCallRequest::default()
            })
            .await?;
        let mut stream = response.into_message();
        for size in RESPONSE_SIZES {
            check_streamed(stream.message().await?, size)?;
        }
        ensure!(
            stream.message().await?.is_none(),
            "more than {} responses",
            RESPONSE_SIZES.len()
        );
        Ok(())
    }

    async fn server_compressed_streaming(&self) -> Result<()> {
        let sizes = [(true, 31_415), (false, 92_653)];
        self.tap.clear();
        let response = self
            .test
            .streaming_output_call(StreamingOutputCallRequest {
                response_type: COMPRESSABLE,
                response_parameters: sizes
                    .iter()
                    .map(|&(compressed, size)| ResponseParameters {
                        size,
                        compressed: Some(BoolValue { value: compressed }),
                        ..ResponseParameters::default()
                    })
                    .collect(),
                ..StreamingOutputCallRequest::default()
            })
            .await?;
        let mut stream = response.into_message();
        for (_, size) in sizes {
            check_streamed(stream.message().await?, size)?;
        }
        ensure!(stream.message().await?.is_none(), "more than 2 responses");
        let observed = self.tap.observed();
        let want: Vec<bool> = sizes.iter().map(|&(c, _)| c).collect();
        ensure!(
            observed.len() == 1 && observed[0].compressed == want,
            "messages on the wire were {observed:?}, want compressed flags {want:?}"
        );
        Ok(())
    }

    /// Starts a FullDuplexCall fed from a channel, awaited before any request is sent — the
    /// natural order. It works with servers (grpc-go) that send response headers only with
    /// the first response, because a bidi call returns without waiting for them.
    async fn full_duplex(
        &self,
        request: Request<()>,
    ) -> (
        mpsc::UnboundedSender<StreamingOutputCallRequest>,
        DuplexCall,
    ) {
        let (sender, requests) = channel();
        let call = self.test.full_duplex_call(request.map(|()| requests)).await;
        (sender, call)
    }

    async fn ping_pong(&self) -> Result<()> {
        let (sender, call) = self.full_duplex(Request::new(())).await;
        let mut stream = call?.into_message();
        for (i, (response, request)) in RESPONSE_SIZES.into_iter().zip(REQUEST_SIZES).enumerate() {
            sender.send(output_request(response, request))?;
            check_streamed(stream.message().await?, response)
                .with_context(|| format!("response {}", i + 1))?;
        }
        drop(sender);
        ensure!(
            stream.message().await?.is_none(),
            "a response after the last request"
        );
        Ok(())
    }

    async fn empty_stream(&self) -> Result<()> {
        let response = self
            .test
            .full_duplex_call(Request::new(futures_util::stream::empty()))
            .await?;
        let mut stream = response.into_message();
        ensure!(stream.message().await?.is_none(), "got a response");
        Ok(())
    }

    async fn timeout_on_sleeping_server(&self) -> Result<()> {
        let (sender, call) = self
            .full_duplex(Request::new(()).with_timeout(Duration::from_millis(1)))
            .await;
        // The request stream stays open: the server waits for more, past the deadline.
        let _ = sender.send(StreamingOutputCallRequest {
            response_type: COMPRESSABLE,
            payload: Some(zeros(27_182)),
            ..StreamingOutputCallRequest::default()
        });
        let result = match call {
            Ok(response) => response.into_message().message().await.map(|_| ()),
            Err(error) => Err(error),
        };
        expect_error(result, Code::DeadlineExceeded, None)
    }

    async fn cancel_after_begin(&self) -> Result<()> {
        let (sender, requests) = channel::<StreamingInputCallRequest>();
        let test = self.test.clone();
        let call = Spawned(tokio::spawn(async move {
            test.streaming_input_call(Request::new(requests)).await
        }));
        // Let the request headers go out; no message is sent and the stream stays open.
        tokio::time::sleep(Duration::from_millis(200)).await;
        ensure!(
            !call.0.is_finished(),
            "the call ended before it was canceled"
        );
        // Canceling is dropping the call: its HTTP/2 stream is reset.
        drop(call);
        drop(sender);
        Ok(())
    }

    async fn cancel_after_first_response(&self) -> Result<()> {
        let (sender, call) = self.full_duplex(Request::new(())).await;
        let mut stream = call?.into_message();
        sender.send(output_request(31_415, 27_182))?;
        check_streamed(stream.message().await?, 31_415)?;
        // The call is still open (the request stream too); cancel it by dropping it.
        drop(stream);
        drop(sender);
        Ok(())
    }

    async fn custom_metadata(&self) -> Result<()> {
        let headers = echo_headers()?;
        let mut request = Request::new(large_request());
        *request.headers_mut() = headers.clone();
        let response = self.test.unary_call(request).await.context("UnaryCall")?;
        check_payload(response.message().payload.as_ref(), LARGE_RESPONSE)?;
        check_echoes(response.headers(), response.trailers()).context("UnaryCall")?;

        let mut request = Request::new(());
        *request.headers_mut() = headers;
        let (sender, call) = self.full_duplex(request).await;
        sender.send(output_request(LARGE_RESPONSE, LARGE_REQUEST))?;
        drop(sender);
        let mut stream = call.context("FullDuplexCall")?.into_message();
        // A bidi call returns before the response headers; they are read from the stream.
        let response_headers = stream.headers().await?.clone();
        check_streamed(stream.message().await?, LARGE_RESPONSE)?;
        ensure!(stream.message().await?.is_none(), "more than one response");
        let trailers = stream.trailers().cloned().unwrap_or_default();
        check_echoes(&response_headers, &trailers).context("FullDuplexCall")
    }

    async fn status_code_and_message(&self) -> Result<()> {
        const MESSAGE: &str = "test status message";
        let status = || {
            Some(EchoStatus {
                code: 2,
                message: MESSAGE.to_owned(),
            })
        };
        let result = self
            .test
            .unary_call(SimpleRequest {
                response_status: status(),
                ..SimpleRequest::default()
            })
            .await;
        expect_error(result, Code::Unknown, Some(MESSAGE)).context("UnaryCall")?;
        let request = StreamingOutputCallRequest {
            response_status: status(),
            ..StreamingOutputCallRequest::default()
        };
        let result = match self
            .test
            .full_duplex_call(Request::new(futures_util::stream::iter([request])))
            .await
        {
            Ok(response) => response.into_message().message().await.map(|_| ()),
            Err(error) => Err(error),
        };
        expect_error(result, Code::Unknown, Some(MESSAGE)).context("FullDuplexCall")
    }

    async fn special_status_message(&self) -> Result<()> {
        let result = self
            .test
            .unary_call(SimpleRequest {
                response_status: Some(EchoStatus {
                    code: 2,
                    message: SPECIAL_STATUS_MESSAGE.to_owned(),
                }),
                ..SimpleRequest::default()
            })
            .await;
        expect_error(result, Code::Unknown, Some(SPECIAL_STATUS_MESSAGE))
    }

    async fn unimplemented_method(&self) -> Result<()> {
        expect_error(
            self.test.unimplemented_call(Empty {}).await,
            Code::Unimplemented,
            None,
        )
    }

    async fn unimplemented_service(&self) -> Result<()> {
        expect_error(
            self.unimplemented.unimplemented_call(Empty {}).await,
            Code::Unimplemented,
            None,
        )
    }
}
