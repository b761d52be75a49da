//! The switchboard client under the Connect conformance suite (`connectconformance --mode
//! client`).
//!
//! Reads size-delimited `ClientCompatRequest`s from stdin until EOF, makes each call with
//! `switchboard::client::Client` in its own task, and writes a `ClientCompatResponse` per
//! call to stdout as it completes.
//!
//! Cancellation is what it is in Rust: dropping the call. When a test asks to cancel, the
//! pending call (or response stream) is dropped, which resets the HTTP/2 stream or closes the
//! HTTP/1.1 connection, and the operation that was waiting reports `canceled`, as the
//! conformance protocol expects.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost_types::Any;
use switchboard::client::{BoxTransport, ClientConfig, Http3Transport, HttpTransport};
use switchboard::codec::Codec as WireCodec;
use switchboard::compression::CompressionPolicy;
use switchboard::{Code, Error, Request, Response, Spec, Streaming};
use switchboard_conformance::proto::{
    self, BidiStreamRequest, BidiStreamResponse, ClientCompatRequest, ClientCompatResponse,
    ClientErrorResult, ClientResponseResult, ClientStreamRequest, ClientStreamResponse, Codec,
    Compression, ConformancePayload, HttpVersion, IdempotentUnaryRequest, IdempotentUnaryResponse,
    Protocol, ServerStreamRequest, ServerStreamResponse, StreamType, UnaryRequest, UnaryResponse,
    UnimplementedRequest, UnimplementedResponse, client_compat_request::cancel::CancelTiming,
    client_compat_response, conformance_service_specs as specs,
};
use switchboard_conformance::{read_message, write_message};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// The only service a client under test has to call.
const SERVICE: &str = "connectrpc.conformance.v1.ConformanceService";
/// The protobuf package of the request types, for checking `Any` type URLs.
const PACKAGE: &str = "connectrpc.conformance.v1";

fn main() -> anyhow::Result<()> {
    let parallel = parallelism()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(parallel))
}

/// The two shared, pooled transports: tests with the same HTTP version share connections,
/// as an application's calls would.
#[derive(Clone)]
struct Transports {
    http1: BoxTransport,
    h2c: BoxTransport,
}

/// Every test's client, whatever carries it (HTTP/1.1, HTTP/2 or HTTP/3).
type Client = switchboard::client::Client<BoxTransport>;

async fn run(parallel: usize) -> anyhow::Result<()> {
    // Blocking stdin and stdout stay on their own threads, off the runtime.
    let (request_tx, mut requests) = mpsc::unbounded_channel::<ClientCompatRequest>();
    let reader = std::thread::spawn(move || -> anyhow::Result<()> {
        let mut stdin = std::io::stdin().lock();
        while let Some(request) = read_message::<ClientCompatRequest>(&mut stdin)? {
            if request_tx.send(request).is_err() {
                break;
            }
        }
        Ok(())
    });
    let (response_tx, responses) = std::sync::mpsc::channel::<ClientCompatResponse>();
    let writer = std::thread::spawn(move || -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        for response in responses {
            write_message(&mut stdout, &response)?;
        }
        Ok(())
    });

    let transports = Transports {
        http1: BoxTransport::new(HttpTransport::http1()),
        h2c: BoxTransport::new(HttpTransport::h2c()),
    };
    // Bounded parallelism, as the reference client has: with every test in flight at once,
    // calls would queue for HTTP/2 stream slots and the machine, and time-sensitive tests
    // (deadlines, cancellation) would measure the queue instead of the call.
    let permits = Arc::new(Semaphore::new(parallel));
    let mut tasks = JoinSet::new();
    while let Some(request) = requests.recv().await {
        let permit = permits.clone().acquire_owned().await?;
        while tasks.try_join_next().is_some() {}
        let transports = transports.clone();
        let out = response_tx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let test_name = request.test_name.clone();
            // A panic in one call becomes that test's error result, not a missing answer.
            let result = match tokio::spawn(run_test(request, transports)).await {
                Ok(result) => result,
                Err(e) => client_compat_response::Result::Error(ClientErrorResult {
                    message: format!("the call panicked: {e}"),
                }),
            };
            let _ = out.send(ClientCompatResponse {
                test_name,
                result: Some(result),
            });
        });
    }
    while tasks.join_next().await.is_some() {}
    drop(response_tx);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the stdin reader panicked"))??;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the stdout writer panicked"))??;
    Ok(())
}

/// How many calls run at once: `-p N` (or `--parallel N`), else four per CPU.
fn parallelism() -> anyhow::Result<usize> {
    let mut args = std::env::args().skip(1);
    let mut parallel = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-p" | "--parallel" => {
                let value = args.next().context("-p needs a number")?;
                let value: usize = value
                    .parse()
                    .with_context(|| format!("invalid parallelism {value:?}"))?;
                anyhow::ensure!(value > 0, "parallelism must be at least 1");
                parallel = Some(value);
            }
            other => anyhow::bail!("unknown argument {other:?} (usage: conformance-client [-p N])"),
        }
    }
    Ok(parallel.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) * 4))
}

async fn run_test(
    request: ClientCompatRequest,
    transports: Transports,
) -> client_compat_response::Result {
    match call(&request, &transports).await {
        Ok(outcome) => client_compat_response::Result::Response(outcome.into_result()),
        Err(message) => client_compat_response::Result::Error(ClientErrorResult { message }),
    }
}

/// Makes the call a request describes; `Err` when it cannot be made at all.
async fn call(request: &ClientCompatRequest, transports: &Transports) -> Result<Outcome, String> {
    let client = make_client(request, transports)?;
    let service = request.service.as_deref().unwrap_or(SERVICE);
    if service != SERVICE {
        return Err(format!("unknown service {service:?}"));
    }
    let stream_type = StreamType::try_from(request.stream_type)
        .map_err(|_| format!("unknown stream type {}", request.stream_type))?;
    let method = match request.method.as_deref() {
        Some(method) => method,
        None => match stream_type {
            StreamType::Unary => "Unary",
            StreamType::ClientStream => "ClientStream",
            StreamType::ServerStream => "ServerStream",
            StreamType::HalfDuplexBidiStream | StreamType::FullDuplexBidiStream => "BidiStream",
            StreamType::Unspecified => return Err("no method and no stream type".into()),
        },
    };
    let timing = Timing::of(request);
    match method {
        "Unary" => {
            unary::<UnaryRequest, UnaryResponse>(&client, specs::unary(), request, timing).await
        }
        "IdempotentUnary" => {
            unary::<IdempotentUnaryRequest, IdempotentUnaryResponse>(
                &client,
                specs::idempotent_unary(),
                request,
                timing,
            )
            .await
        }
        "Unimplemented" => {
            unary::<UnimplementedRequest, UnimplementedResponse>(
                &client,
                specs::unimplemented(),
                request,
                timing,
            )
            .await
        }
        "ServerStream" => server_stream(&client, request, timing).await,
        "ClientStream" => client_stream(&client, request, timing).await,
        "BidiStream" => {
            let full_duplex = match stream_type {
                StreamType::FullDuplexBidiStream => true,
                StreamType::HalfDuplexBidiStream => false,
                other => {
                    return Err(format!(
                        "BidiStream needs a bidi stream type, not {}",
                        other.as_str_name()
                    ));
                }
            };
            bidi_stream(&client, request, timing, full_duplex).await
        }
        other => Err(format!("unknown method {other:?} of {SERVICE}")),
    }
}

/// A client configured as the request says: HTTP version, codec, compression, limits.
fn make_client(request: &ClientCompatRequest, transports: &Transports) -> Result<Client, String> {
    let protocol = match Protocol::try_from(request.protocol) {
        Ok(Protocol::Connect) => switchboard::Protocol::Connect,
        Ok(Protocol::Grpc) => switchboard::Protocol::Grpc,
        Ok(Protocol::GrpcWeb) => switchboard::Protocol::GrpcWeb,
        _ => return Err(format!("unsupported protocol {}", request.protocol)),
    };
    if request.raw_request.is_some() {
        return Err("raw HTTP requests are only for the reference client".into());
    }
    let version = HttpVersion::try_from(request.http_version);
    let tls = !request.server_tls_cert.is_empty();
    let transport = if tls {
        let identity = request
            .client_tls_creds
            .as_ref()
            .map(|creds| (&creds.cert[..], &creds.key[..]));
        let config =
            switchboard::client::tls::client_config(Some(&request.server_tls_cert), identity)
                .map_err(|e| format!("TLS configuration: {e}"))?;
        match version {
            Ok(HttpVersion::HttpVersion1) => BoxTransport::new(HttpTransport::tls_http1(config)),
            Ok(HttpVersion::HttpVersion2) => BoxTransport::new(HttpTransport::tls_http2(config)),
            // HTTP/3 by prior knowledge: the reference server listens on UDP only.
            Ok(HttpVersion::HttpVersion3) => BoxTransport::new(
                Http3Transport::new(config).map_err(|e| format!("QUIC configuration: {e}"))?,
            ),
            _ => return Err(format!("unsupported HTTP version {}", request.http_version)),
        }
    } else {
        match version {
            Ok(HttpVersion::HttpVersion1) => transports.http1.clone(),
            Ok(HttpVersion::HttpVersion2) => transports.h2c.clone(),
            _ => return Err(format!("unsupported HTTP version {}", request.http_version)),
        }
    };
    let codec = match Codec::try_from(request.codec) {
        Ok(Codec::Proto) => WireCodec::Proto,
        Ok(Codec::Json) => WireCodec::Json,
        _ => return Err(format!("unsupported codec {}", request.codec)),
    };
    // Compress every message, however small, so that compression is always exercised.
    let mut config = ClientConfig::default()
        .protocol(protocol)
        .codec(codec)
        .compression_policy(CompressionPolicy { min_bytes: 0 });
    let compression = match Compression::try_from(request.compression) {
        Ok(Compression::Unspecified | Compression::Identity) => None,
        Ok(Compression::Gzip) => Some("gzip"),
        Ok(Compression::Br) => Some("br"),
        Ok(Compression::Zstd) => Some("zstd"),
        Ok(Compression::Deflate) => Some("deflate"),
        Ok(Compression::Snappy) => Some("snappy"),
        Err(_) => return Err(format!("unsupported compression {}", request.compression)),
    };
    if let Some(name) = compression {
        config = config.send_compression(name);
    }
    if request.message_receive_limit > 0 {
        config = config.read_max_bytes(request.message_receive_limit as usize);
    }
    let host = if request.host.contains(':') && !request.host.starts_with('[') {
        format!("[{}]", request.host)
    } else {
        request.host.clone()
    };
    let scheme = if tls { "https" } else { "http" };
    let base = format!("{scheme}://{host}:{}", request.port);
    Client::new(&base, transport)
        .map(|client| client.with_config(config))
        .map_err(|e| format!("creating a client for {base}: {e}"))
}

/// When the test wants the call canceled.
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    /// Cancel instead of closing the request stream.
    before_close_send: bool,
    /// Cancel this long after the request stream is closed (for unary and server-streaming
    /// calls: after the call starts).
    after_close_send: Option<Duration>,
    /// Cancel once this many response messages were read.
    after_num_responses: Option<usize>,
}

impl Timing {
    fn of(request: &ClientCompatRequest) -> Timing {
        let Some(cancel) = &request.cancel else {
            return Timing::default();
        };
        match cancel.cancel_timing {
            // Present but empty: cancel right after closing the send side.
            None => Timing {
                after_close_send: Some(Duration::ZERO),
                ..Timing::default()
            },
            Some(CancelTiming::BeforeCloseSend(())) => Timing {
                before_close_send: true,
                ..Timing::default()
            },
            Some(CancelTiming::AfterCloseSendMs(ms)) => Timing {
                after_close_send: Some(Duration::from_millis(ms.into())),
                ..Timing::default()
            },
            Some(CancelTiming::AfterNumResponses(n)) => Timing {
                after_num_responses: Some(n as usize),
                ..Timing::default()
            },
        }
    }

    /// When to cancel, counted from now (the moment the send side closes).
    fn cancel_at(&self) -> Option<Instant> {
        self.after_close_send.map(|delay| Instant::now() + delay)
    }
}

/// What a call produced, before it becomes a `ClientResponseResult`.
#[derive(Default)]
struct Outcome {
    headers: HeaderMap,
    payloads: Vec<ConformancePayload>,
    error: Option<Error>,
    trailers: HeaderMap,
    unsent: usize,
}

impl Outcome {
    fn into_result(self) -> ClientResponseResult {
        ClientResponseResult {
            response_headers: proto_headers(&self.headers),
            payloads: self.payloads,
            error: self.error.as_ref().map(proto_error),
            response_trailers: proto_headers(&self.trailers),
            num_unsent_requests: i32::try_from(self.unsent).unwrap_or(i32::MAX),
            ..ClientResponseResult::default()
        }
    }

    /// Records a failed unary-response call: its metadata is all we have of headers and
    /// trailers, and it is reported as trailers.
    fn fail_unary(&mut self, error: Error) {
        self.trailers = error.metadata().clone();
        self.error = Some(error);
    }
}

fn canceled() -> Error {
    Error::new(Code::Canceled, "the client canceled the call")
}

fn proto_error(error: &Error) -> proto::Error {
    proto::Error {
        code: error.code() as i32,
        message: Some(error.message().to_owned()),
        details: error.details().iter().map(|d| d.to_any()).collect(),
    }
}

/// Metadata as the runner's headers: one entry per name, values in order.
fn proto_headers(map: &HeaderMap) -> Vec<proto::Header> {
    map.keys()
        .map(|name| proto::Header {
            name: name.as_str().to_owned(),
            value: map
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect(),
        })
        .collect()
}

/// A request type of the conformance service, with its fully-qualified name.
trait RequestMessage: prost::Message + Default + Send + 'static {
    const NAME: &'static str;
}

/// A response type of the conformance service: a wrapper of the echoed payload.
trait ResponseMessage: switchboard::codec::Message {
    fn into_payload(self) -> Option<ConformancePayload>;
}

macro_rules! messages {
    ($($request:ident => $response:ident),* $(,)?) => {$(
        impl RequestMessage for $request {
            const NAME: &'static str = stringify!($request);
        }
        impl ResponseMessage for $response {
            fn into_payload(self) -> Option<ConformancePayload> {
                self.payload
            }
        }
    )*};
}

messages! {
    UnaryRequest => UnaryResponse,
    IdempotentUnaryRequest => IdempotentUnaryResponse,
    ServerStreamRequest => ServerStreamResponse,
    ClientStreamRequest => ClientStreamResponse,
    BidiStreamRequest => BidiStreamResponse,
}

impl RequestMessage for UnimplementedRequest {
    const NAME: &'static str = "UnimplementedRequest";
}

impl ResponseMessage for UnimplementedResponse {
    fn into_payload(self) -> Option<ConformancePayload> {
        None
    }
}

/// Unpacks an `Any` that must hold an `M`.
fn unpack<M: RequestMessage>(any: &Any) -> Result<M, String> {
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    let expected = format!("{PACKAGE}.{}", M::NAME);
    if type_name != expected {
        return Err(format!(
            "request message has type {type_name:?}, expected {expected:?}"
        ));
    }
    M::decode(&any.value[..]).map_err(|e| format!("decoding {expected}: {e}"))
}

fn unpack_all<M: RequestMessage>(request: &ClientCompatRequest) -> Result<Vec<M>, String> {
    request.request_messages.iter().map(unpack).collect()
}

fn unpack_one<M: RequestMessage>(request: &ClientCompatRequest) -> Result<M, String> {
    match request.request_messages.as_slice() {
        [message] => unpack(message),
        messages => Err(format!(
            "this call takes exactly one request message, not {}",
            messages.len()
        )),
    }
}

/// A request carrying `message` with the test's headers, timeout and GET preference.
fn build_request<T>(request: &ClientCompatRequest, message: T) -> Result<Request<T>, String> {
    let mut built = Request::new(message);
    for header in &request.request_headers {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|e| format!("request header name {:?}: {e}", header.name))?;
        for value in &header.value {
            let value = HeaderValue::from_str(value)
                .map_err(|e| format!("request header {:?} value {value:?}: {e}", header.name))?;
            built.headers_mut().append(name.clone(), value);
        }
    }
    if let Some(ms) = request.timeout_ms {
        built = built.with_timeout(Duration::from_millis(ms.into()));
    }
    if request.use_get_http_method {
        built.options_mut().use_get = Some(true);
    }
    Ok(built)
}

/// Runs `work` unless `cancel_at` passes first; `None` when it was canceled (and dropped).
///
/// Once the time to cancel has come, the call is canceled even if its result is ready too:
/// on a loaded machine the timer may be noticed late, and what the call produced after the
/// moment of cancellation must not count.
async fn unless_canceled<T>(
    cancel_at: Option<Instant>,
    work: impl Future<Output = T>,
) -> Option<T> {
    match cancel_at {
        None => Some(work.await),
        Some(at) => tokio::select! {
            biased;
            () = tokio::time::sleep_until(at) => None,
            output = work => Some(output),
        },
    }
}

/// The request messages of a streaming call, fed from a channel so that the test decides
/// when each is sent and when the stream closes (when the sender is dropped).
fn channel_stream<T: Send + 'static>(
    receiver: mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|message| (message, receiver))
    })
}

/// A spawned call that is aborted (dropped, so canceled on the wire) when this is dropped.
struct Spawned<T>(JoinHandle<T>);

impl<T> Spawned<T> {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<T> Future for Spawned<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|result| {
            result.map_err(|e| Error::new(Code::Unknown, format!("the call task failed: {e}")))
        })
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn sleep_ms(ms: u32) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms.into())).await;
    }
}

async fn unary<Req: RequestMessage, Res: ResponseMessage>(
    client: &Client,
    spec: Spec,
    request: &ClientCompatRequest,
    timing: Timing,
) -> Result<Outcome, String> {
    let message: Req = unpack_one(request)?;
    let call = client.unary::<Req, Res>(spec, build_request(request, message)?);
    let mut outcome = Outcome::default();
    // The one request is sent (and the send side closed) as the call starts.
    match unless_canceled(timing.cancel_at(), call).await {
        Some(Ok(response)) => {
            let (headers, message, trailers) = response.into_parts();
            outcome.headers = headers;
            outcome
                .payloads
                .push(message.into_payload().unwrap_or_default());
            outcome.trailers = trailers;
        }
        Some(Err(error)) => outcome.fail_unary(error),
        None => outcome.error = Some(canceled()),
    }
    Ok(outcome)
}

async fn client_stream(
    client: &Client,
    request: &ClientCompatRequest,
    timing: Timing,
) -> Result<Outcome, String> {
    let messages: Vec<ClientStreamRequest> = unpack_all(request)?;
    let total = messages.len();
    let (sender, receiver) = mpsc::unbounded_channel();
    let call_request = build_request(request, channel_stream(receiver))?;
    let call_client = client.clone();
    let call = Spawned(tokio::spawn(async move {
        call_client
            .client_streaming::<_, ClientStreamResponse, _>(specs::client_stream(), call_request)
            .await
    }));
    let mut outcome = Outcome::default();
    for (i, message) in messages.into_iter().enumerate() {
        sleep_ms(request.request_delay_ms).await;
        // The call is over (it failed, or the server answered early): nothing more goes out.
        if call.is_finished() || sender.send(message).is_err() {
            outcome.unsent = total - i;
            break;
        }
    }
    if timing.before_close_send {
        drop(call);
        outcome.error = Some(canceled());
        return Ok(outcome);
    }
    drop(sender);
    match unless_canceled(timing.cancel_at(), call).await {
        Some(Ok(Ok(response))) => {
            let (headers, message, trailers) = response.into_parts();
            outcome.headers = headers;
            outcome
                .payloads
                .push(message.into_payload().unwrap_or_default());
            outcome.trailers = trailers;
        }
        Some(Ok(Err(error)) | Err(error)) => outcome.fail_unary(error),
        None => outcome.error = Some(canceled()),
    }
    Ok(outcome)
}

async fn server_stream(
    client: &Client,
    request: &ClientCompatRequest,
    timing: Timing,
) -> Result<Outcome, String> {
    let message: ServerStreamRequest = unpack_one(request)?;
    let call_request = build_request(request, message)?;
    let call_client = client.clone();
    let call = Spawned(tokio::spawn(async move {
        call_client
            .server_streaming::<_, ServerStreamResponse>(specs::server_stream(), call_request)
            .await
    }));
    // The request went out and the send side closed as the call started.
    let mut responses = Responses::new(call, timing);
    responses.cancel_at = timing.cancel_at();
    let mut outcome = Outcome::default();
    responses.read_rest(&mut outcome).await;
    Ok(outcome)
}

async fn bidi_stream(
    client: &Client,
    request: &ClientCompatRequest,
    timing: Timing,
    full_duplex: bool,
) -> Result<Outcome, String> {
    let messages: Vec<BidiStreamRequest> = unpack_all(request)?;
    let total = messages.len();
    let (sender, receiver) = mpsc::unbounded_channel();
    let call_request = build_request(request, channel_stream(receiver))?;
    let call_client = client.clone();
    let call = Spawned(tokio::spawn(async move {
        call_client
            .bidi_streaming::<_, BidiStreamResponse, _>(specs::bidi_stream(), call_request)
            .await
    }));
    let mut responses = Responses::new(call, timing);
    let mut outcome = Outcome::default();
    for (i, message) in messages.into_iter().enumerate() {
        sleep_ms(request.request_delay_ms).await;
        if responses.canceled {
            outcome.unsent = total - i;
            outcome.error = Some(canceled());
            break;
        }
        if sender.send(message).is_err() {
            // The request stream is gone: the call ended; reading tells why.
            outcome.unsent = total - i;
            outcome.error = Some(match responses.next().await {
                Next::Failed(error) => error,
                Next::Message(_) | Next::End => {
                    Error::new(Code::Unknown, "the request stream closed early")
                }
            });
            break;
        }
        if full_duplex {
            // Full duplex: one response per request, read before sending the next.
            match responses.next().await {
                Next::Message(payload) => outcome.payloads.push(payload),
                Next::End => break,
                Next::Failed(error) => {
                    outcome.error = Some(error);
                    break;
                }
            }
        }
    }
    if timing.before_close_send {
        responses.cancel();
    }
    drop(sender);
    responses.cancel_at = timing.cancel_at();
    if outcome.error.is_none() {
        responses.read_rest(&mut outcome).await;
    } else {
        responses.finish(&mut outcome);
    }
    Ok(outcome)
}

/// The response side of a streaming-response call.
struct Responses<Res> {
    /// The call, until its response headers arrive.
    call: Option<Spawned<Result<Response<Streaming<Res>>, Error>>>,
    stream: Option<Streaming<Res>>,
    headers: HeaderMap,
    received: usize,
    after_num_responses: Option<usize>,
    cancel_at: Option<Instant>,
    canceled: bool,
}

enum Next {
    Message(ConformancePayload),
    End,
    Failed(Error),
}

impl<Res: ResponseMessage> Responses<Res> {
    fn new(call: Spawned<Result<Response<Streaming<Res>>, Error>>, timing: Timing) -> Self {
        Responses {
            call: Some(call),
            stream: None,
            headers: HeaderMap::new(),
            received: 0,
            after_num_responses: timing.after_num_responses,
            cancel_at: None,
            canceled: false,
        }
    }

    /// Cancels the call: drops it (and its response stream), so everything after fails with
    /// `canceled`.
    fn cancel(&mut self) {
        self.canceled = true;
        self.call = None;
        self.stream = None;
    }

    /// The next response message, waiting for the response headers first if need be.
    async fn next(&mut self) -> Next {
        if self.canceled {
            return Next::Failed(canceled());
        }
        if let Some(call) = self.call.as_mut() {
            let result = unless_canceled(self.cancel_at, call).await;
            self.call = None;
            match result {
                None => {
                    self.cancel();
                    return Next::Failed(canceled());
                }
                Some(Ok(Ok(response))) => {
                    let (headers, mut stream, _) = response.into_parts();
                    self.headers = headers;
                    // A bidi call returns before its response headers, which come with the
                    // stream (other calls have them already: this returns an empty map).
                    match unless_canceled(self.cancel_at, stream.headers()).await {
                        None => {
                            self.cancel();
                            return Next::Failed(canceled());
                        }
                        Some(Ok(arrived)) => {
                            if !arrived.is_empty() {
                                self.headers = arrived.clone();
                            }
                        }
                        Some(Err(error)) => {
                            self.headers = error.metadata().clone();
                            return Next::Failed(error);
                        }
                    }
                    self.stream = Some(stream);
                }
                Some(Ok(Err(error)) | Err(error)) => {
                    // Failed before any response message: whatever metadata came with the
                    // error arrived as response headers.
                    self.headers = error.metadata().clone();
                    return Next::Failed(error);
                }
            }
        }
        let Some(stream) = self.stream.as_mut() else {
            return Next::End;
        };
        match unless_canceled(self.cancel_at, stream.message()).await {
            None => {
                self.cancel();
                Next::Failed(canceled())
            }
            Some(Ok(Some(message))) => {
                self.received += 1;
                if self.after_num_responses == Some(self.received) {
                    self.cancel();
                }
                Next::Message(message.into_payload().unwrap_or_default())
            }
            Some(Ok(None)) => Next::End,
            Some(Err(error)) => Next::Failed(error),
        }
    }

    /// Reads every remaining response message, then records headers and trailers.
    async fn read_rest(&mut self, outcome: &mut Outcome) {
        loop {
            match self.next().await {
                Next::Message(payload) => outcome.payloads.push(payload),
                Next::End => break,
                Next::Failed(error) => {
                    outcome.error = Some(error);
                    break;
                }
            }
        }
        self.finish(outcome);
    }

    fn finish(&self, outcome: &mut Outcome) {
        outcome.headers = self.headers.clone();
        outcome.trailers = self
            .stream
            .as_ref()
            .and_then(Streaming::trailers)
            .cloned()
            .unwrap_or_default();
    }
}
