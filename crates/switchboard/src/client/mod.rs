//! Calling services: [`Client`] over any [`Transport`].

mod balance;
#[cfg(feature = "http3")]
mod h3_transport;
mod hedge;
mod retry;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost_reflect::MessageDescriptor;

pub use balance::{Balanced, BalancedBuilder};
#[cfg(feature = "http3")]
pub use h3_transport::{Http3ResponseBody, Http3Transport};
pub use hedge::HedgingPolicy;
pub use retry::{RetryBudget, RetryCounts, RetryPolicy};
pub use transport::{BoxTransport, Connector, HttpTransport, Transport};

use crate::body::box_body;
use crate::codec::{Codec, Message};
use crate::compression::{CompressionPolicy, CompressionRegistry};
use crate::config::DEFAULT_READ_MAX_BYTES;
use crate::interceptor::{
    Call, CallEnder, CallInfo, CallShared, Chain, Direction, EndFuture, HeaderHook, Hooks,
    Interceptor, Interceptors, MessageHooks, Next, Reply as Answer, ReplyFuture, Side,
    run_header_hooks,
};
use crate::protocol::client_shared::SendFailure;
use crate::protocol::connect::client::ConnectClient;
use crate::protocol::grpc::client as grpc_client;
use crate::protocol::{
    ClientProtocol, IncomingResponse, OutgoingBody, OutgoingCall, check_send_limit,
};
use crate::request::{Request, Response};
use crate::spec::{Descriptors, Peer, Protocol, Spec};
use crate::stream::{MessageSource, Streaming, WireStream};
use crate::{Code, Error};

/// The default of [`ClientConfig::get_max_url_bytes`].
pub const DEFAULT_GET_MAX_URL_BYTES: usize = 8 * 1024;

/// Client-wide settings; per-call [`crate::CallOptions`] override them.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    protocol: Protocol,
    grpc_web_text: bool,
    codec: Codec,
    compression: CompressionRegistry,
    send_compression: Option<&'static str>,
    policy: CompressionPolicy,
    read_max_bytes: usize,
    send_max_bytes: usize,
    timeout: Option<Duration>,
    propagate_deadline: bool,
    deadline_margin: Duration,
    use_get: bool,
    get_max_url_bytes: usize,
    headers: HeaderMap,
    interceptors: Interceptors,
    retry: Option<RetryPolicy>,
    /// Policies for one service (`pkg.Service`) or method (`pkg.Service/Method`).
    retry_by_name: Vec<(String, Option<RetryPolicy>)>,
    hedging: Option<HedgingPolicy>,
    retries: retry::Retries,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            protocol: Protocol::Connect,
            grpc_web_text: false,
            codec: Codec::Proto,
            compression: CompressionRegistry::with_defaults(),
            send_compression: None,
            policy: CompressionPolicy::default(),
            read_max_bytes: DEFAULT_READ_MAX_BYTES,
            send_max_bytes: usize::MAX,
            timeout: None,
            propagate_deadline: true,
            deadline_margin: Duration::ZERO,
            use_get: false,
            get_max_url_bytes: DEFAULT_GET_MAX_URL_BYTES,
            headers: HeaderMap::new(),
            interceptors: Interceptors::default(),
            retry: None,
            retry_by_name: Vec::new(),
            hedging: None,
            retries: retry::Retries::default(),
        }
    }
}

impl ClientConfig {
    /// The wire protocol (default: Connect). gRPC needs HTTP/2 (an h2c or TLS transport).
    /// [`Protocol::Rest`] is a server's only: a client given it speaks Connect.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// With [`Protocol::GrpcWeb`], send and expect `application/grpc-web-text` (base64), the
    /// default mode of Google's grpc-web JavaScript client.
    pub fn grpc_web_text(mut self, text: bool) -> Self {
        self.grpc_web_text = text;
        self
    }

    /// The client half of the configured protocol.
    fn wire_protocol(&self) -> &'static dyn ClientProtocol {
        match (self.protocol, self.grpc_web_text) {
            // REST is served only; a client calls the same methods over Connect.
            (Protocol::Connect | Protocol::Rest, _) => &ConnectClient,
            (Protocol::Grpc, _) => &grpc_client::GRPC,
            (Protocol::GrpcWeb, false) => &grpc_client::GRPC_WEB,
            (Protocol::GrpcWeb, true) => &grpc_client::GRPC_WEB_TEXT,
        }
    }

    /// The wire codec (default: binary protobuf).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The compressions this client accepts, in order of preference: they are sent in this
    /// order and a conforming server picks the first it supports.
    pub fn accept_compression(mut self, registry: CompressionRegistry) -> Self {
        self.compression = registry;
        self
    }

    /// Compress requests with this algorithm (which must be in the accepted registry).
    pub fn send_compression(mut self, name: &'static str) -> Self {
        self.send_compression = Some(name);
        self
    }

    /// When requests are compressed (default: from 1 KiB).
    pub fn compression_policy(mut self, policy: CompressionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Largest response message accepted.
    pub fn read_max_bytes(mut self, limit: usize) -> Self {
        self.read_max_bytes = limit;
        self
    }

    /// Largest request message sent; larger ones fail locally with `resource_exhausted`.
    pub fn send_max_bytes(mut self, limit: usize) -> Self {
        self.send_max_bytes = limit;
        self
    }

    /// Default timeout of every call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether calls made while a server handles a call are bounded by that call's deadline
    /// (default: yes). See [`crate::deadline`]: a call's own timeout still applies when it is
    /// the shorter; turn this off for calls meant to outlive the call being handled.
    pub fn propagate_deadline(mut self, propagate: bool) -> Self {
        self.propagate_deadline = propagate;
        self
    }

    /// How much earlier than the inherited deadline a propagated call must end (default: none),
    /// to leave time for the reply to travel back and for the handler to answer its own caller
    /// before that caller's deadline.
    pub fn deadline_margin(mut self, margin: Duration) -> Self {
        self.deadline_margin = margin;
        self
    }

    /// Retry failed unary, server-streaming and client-streaming calls of every method by
    /// `policy` (default: none, only the transparent retry of a call that never reached the
    /// server). See [`RetryPolicy`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Retry the calls of one service (`"pkg.Service"`) or one method
    /// (`"pkg.Service/Method"`) by `policy`, or not at all (`None`), whatever
    /// [`ClientConfig::retry`] says; a method's setting wins over its service's.
    pub fn retry_for(mut self, name: &str, policy: Option<RetryPolicy>) -> Self {
        let name = name.trim_start_matches('/').to_owned();
        self.retry_by_name.retain(|(known, _)| *known != name);
        self.retry_by_name.push((name, policy));
        self
    }

    /// Hedge unary calls to methods declared `NO_SIDE_EFFECTS` or `IDEMPOTENT` by `policy`
    /// (default: no hedging). See [`HedgingPolicy`]; other methods keep their retry policy.
    pub fn hedge(mut self, policy: HedgingPolicy) -> Self {
        self.hedging = Some(policy);
        self
    }

    /// The hedging policy of a call to `spec`, if it may be hedged.
    fn hedging_policy(&self, spec: &Spec) -> Option<&HedgingPolicy> {
        self.hedging
            .as_ref()
            .filter(|policy| policy.hedges() && hedge::may_hedge(spec))
    }

    /// The budget retries draw on (default: [`RetryBudget::default`]); it also starts the
    /// counts of [`Client::retry_counts`] afresh.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retries = retry::Retries::with_budget(budget);
        self
    }

    /// The retry policy of the method `procedure` (`/pkg.Service/Method`).
    fn retry_policy(&self, procedure: &str) -> Option<&RetryPolicy> {
        if self.retry_by_name.is_empty() {
            return self.retry.as_ref();
        }
        let method = procedure.trim_start_matches('/');
        let service = method
            .rsplit_once('/')
            .map_or(method, |(service, _)| service);
        let named = |name: &str| {
            self.retry_by_name
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, policy)| policy.as_ref())
        };
        named(method)
            .or_else(|| named(service))
            .unwrap_or(self.retry.as_ref())
    }

    /// Send unary calls to side-effect-free methods as HTTP GET by default.
    pub fn use_get(mut self, use_get: bool) -> Self {
        self.use_get = use_get;
        self
    }

    /// The longest URL a Connect GET may have (default 8 KiB, the request-line limit of
    /// common proxies and servers such as nginx); a call whose URL would be longer is sent
    /// as a POST instead, as connect-go's `WithHTTPGetMaxURLSize` does. `usize::MAX`: no
    /// limit.
    pub fn get_max_url_bytes(mut self, limit: usize) -> Self {
        self.get_max_url_bytes = limit;
        self
    }

    /// A header sent with every call.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Adds an interceptor inside those added before (the first added is outermost).
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Adds [`Hooks`] (start, each message, end) as an interceptor, in the same order.
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.interceptors.push_hooks(hooks);
        self
    }
}

/// A client of one server: a base URL, settings and a transport. Cheap to clone.
///
/// Generated clients wrap it; its four call methods take a [`Spec`] so they work for any
/// method, including ones known only at run time.
#[derive(Clone)]
pub struct Client<T = HttpTransport> {
    transport: T,
    shared: Arc<Shared>,
}

struct Shared {
    base: String,
    /// The host and port of `base`, for interceptors.
    authority: Option<http::uri::Authority>,
    config: ClientConfig,
    protocol: &'static dyn ClientProtocol,
}

impl<T> std::fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.shared.base)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Client<HttpTransport> {
    /// A client over HTTP/1.1 with the default pooled hyper transport.
    pub fn http1(base_url: &str) -> Result<Self, Error> {
        Client::new(base_url, HttpTransport::http1())
    }

    /// A client over HTTP/2 with prior knowledge (h2c) with the default pooled transport.
    pub fn h2c(base_url: &str) -> Result<Self, Error> {
        Client::new(base_url, HttpTransport::h2c())
    }
}

impl<T: Transport> Client<T> {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:8080`, optionally with a
    /// path prefix) over `transport`.
    pub fn new(base_url: &str, transport: T) -> Result<Self, Error> {
        let uri: http::Uri = base_url
            .parse()
            .map_err(|e| Error::invalid_argument(format!("invalid base URL {base_url:?}: {e}")))?;
        if uri.scheme().is_none() || uri.authority().is_none() {
            return Err(Error::invalid_argument(format!(
                "base URL {base_url:?} needs a scheme and a host"
            )));
        }
        Ok(Client {
            transport,
            shared: Arc::new(Shared {
                base: base_url.trim_end_matches('/').to_owned(),
                authority: uri.authority().cloned(),
                config: ClientConfig::default(),
                protocol: &ConnectClient,
            }),
        })
    }

    /// What the retries of this client's calls did (see [`RetryPolicy`]), counted since its
    /// config was made or given a [`RetryBudget`]; clients made from clones of one config
    /// count together.
    pub fn retry_counts(&self) -> RetryCounts {
        self.shared.config.retries.counts()
    }

    /// Replaces the settings.
    pub fn with_config(mut self, config: ClientConfig) -> Self {
        let shared = Arc::make_mut_shared(&mut self.shared);
        shared.protocol = config.wire_protocol();
        shared.config = config;
        self
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// Calls a unary method.
    pub async fn unary<Req: Message, Res: Message>(
        &self,
        spec: Spec,
        request: Request<Req>,
    ) -> Result<Response<Res>, Error> {
        let Some(chain) = self.shared.config.interceptors.all() else {
            return self.unary_call(spec, request, None).await;
        };
        let (result, shared, mut ender) = self
            .intercepted(chain, spec, request, |client, spec, request, hooks| {
                Box::pin(async move {
                    let response = client.unary_call::<Req, Res>(spec, request, hooks).await?;
                    Ok(answer_from(response))
                })
            })
            .await;
        let result = result.and_then(|answer| unary_response(answer, &shared));
        ender.settle(result).await
    }

    async fn unary_call<Req: Message, Res: Message>(
        &self,
        spec: Spec,
        request: Request<Req>,
        mut hooks: Option<Box<MessageHooks>>,
    ) -> Result<Response<Res>, Error> {
        let (mut call, mut message) = self.prepare(spec, request)?;
        call.intercepted = hooks.as_ref().map(|hooks| hooks.shared().clone());
        let descriptors = Descriptors::of(&call.spec);
        let timeout = call.timeout;
        let result = async {
            if let Some(hooks) = &mut hooks {
                hooks.run(&mut message)?;
            }
            let payload = self.encode(&message, descriptors.input.as_ref())?;
            drop(message);
            if let Some(policy) = self.shared.config.hedging_policy(&call.spec) {
                return self
                    .hedged(&call, &payload, policy, descriptors.output.clone())
                    .await;
            }
            let mut retrying = retry::Retrying::new(&self.shared.config, &call, payload.len());
            loop {
                let attempt = async {
                    let body = OutgoingBody::Unary(payload.clone());
                    let incoming = self
                        .exchange_attempt(&call, body, retrying.previous())
                        .await?;
                    self.unary_reply(incoming, call.codec, descriptors.output.clone())
                        .await
                }
                .await;
                match attempt {
                    Ok(response) => return Ok(response),
                    Err(error) => retrying.again(error).await?,
                }
            }
        };
        with_timeout(timeout, result).await
    }

    /// Calls a server-streaming method; the response stream ends with the trailers.
    pub async fn server_streaming<Req: Message, Res: Message>(
        &self,
        spec: Spec,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Res>>, Error> {
        let Some(chain) = self.shared.config.interceptors.all() else {
            let incoming = self.server_streaming_call(spec, request, None).await?;
            return Ok(incoming.into_response(CallEnder::default(), None, Vec::new()));
        };
        let (result, shared, ender) = self
            .intercepted(chain, spec, request, |client, spec, request, hooks| {
                Box::pin(async move {
                    let incoming = client
                        .server_streaming_call::<Req>(spec, request, hooks)
                        .await?;
                    Ok(incoming.into_answer())
                })
            })
            .await;
        streamed_response(result, &shared, ender).await
    }

    async fn server_streaming_call<Req: Message>(
        &self,
        spec: Spec,
        request: Request<Req>,
        mut hooks: Option<Box<MessageHooks>>,
    ) -> Result<IncomingStream, Error> {
        let (mut call, mut message) = self.prepare(spec, request)?;
        call.intercepted = hooks.as_ref().map(|hooks| hooks.shared().clone());
        let descriptors = Descriptors::of(&call.spec);
        let deadline = deadline_of(call.timeout);
        let timeout = call.timeout;
        let result = async {
            if let Some(hooks) = &mut hooks {
                hooks.run(&mut message)?;
            }
            let payload = self.encode(&message, descriptors.input.as_ref())?;
            drop(message);
            // Retried until the first response message: with a retry policy, that message (or
            // the stream's end) is read ahead, and the call is committed once it has come.
            let mut retrying = retry::Retrying::new(&self.shared.config, &call, payload.len());
            loop {
                let body = OutgoingBody::Unary(payload.clone());
                let error = match self
                    .exchange_attempt(&call, body, retrying.previous())
                    .await
                {
                    Ok(incoming) if !retrying.has_policy() => return Ok(incoming),
                    Ok(mut incoming) => {
                        let first =
                            std::future::poll_fn(|cx| incoming.messages.poll_message(cx)).await;
                        match first {
                            Some(Err(error)) => error,
                            first => {
                                incoming.messages = retry::read_ahead(first, incoming.messages);
                                return Ok(incoming);
                            }
                        }
                    }
                    Err(error) => error,
                };
                retrying.again(error).await?;
            }
        };
        let incoming = with_timeout(timeout, result).await?;
        Ok(IncomingStream {
            source: incoming.messages,
            headers: incoming.headers,
            send_failure: call.send_failure,
            deadline,
            codec: call.codec,
            descriptor: descriptors.output,
        })
    }

    /// Calls a client-streaming method with a stream of requests.
    pub async fn client_streaming<Req, Res, S>(
        &self,
        spec: Spec,
        request: Request<S>,
    ) -> Result<Response<Res>, Error>
    where
        Req: Message,
        Res: Message,
        S: Stream<Item = Req> + Send + 'static,
    {
        let Some(chain) = self.shared.config.interceptors.all() else {
            return self.client_streaming_call(spec, request, None).await;
        };
        let (result, shared, mut ender) = self
            .intercepted(chain, spec, request, |client, spec, request, hooks| {
                Box::pin(async move {
                    let response = client
                        .client_streaming_call::<Req, Res, S>(spec, request, hooks)
                        .await?;
                    Ok(answer_from(response))
                })
            })
            .await;
        let result = result.and_then(|answer| unary_response(answer, &shared));
        ender.settle(result).await
    }

    async fn client_streaming_call<Req, Res, S>(
        &self,
        spec: Spec,
        request: Request<S>,
        hooks: Option<Box<MessageHooks>>,
    ) -> Result<Response<Res>, Error>
    where
        Req: Message,
        Res: Message,
        S: Stream<Item = Req> + Send + 'static,
    {
        let (mut call, messages) = self.prepare(spec, request)?;
        call.intercepted = hooks.as_ref().map(|hooks| hooks.shared().clone());
        let descriptors = Descriptors::of(&call.spec);
        let outgoing = self.encode_stream(messages, &descriptors, hooks);
        let result = async {
            let retrying = retry::Retrying::new(&self.shared.config, &call, 0);
            let Some(limit) = retrying.replay_limit() else {
                // No retry policy: the stream goes out once, as it is produced.
                let incoming = self.exchange(&call, outgoing).await?;
                let reply = self
                    .unary_reply(incoming, call.codec, descriptors.output.clone())
                    .await;
                // The request stream's own failure replaces however the response ended.
                return call.send_failure.or(reply);
            };
            // Under a retry policy the messages sent are kept (up to the replay limit), so
            // that another attempt can send them again before the rest of the stream.
            let log = retry::ReplayLog::new(outgoing, limit);
            self.replayed(&call, &log, retrying, |incoming| {
                self.unary_reply(incoming, call.codec, descriptors.output.clone())
            })
            .await
        };
        with_timeout(call.timeout, result).await
    }

    /// Calls a bidirectional-streaming method. Over HTTP/2 both directions flow at once; over
    /// HTTP/1.1 the server may only answer once the request stream has ended.
    ///
    /// The call returns as soon as the request is under way, without waiting for the
    /// server's response headers: servers such as grpc-go send those only with their first
    /// response, which may wait for the first request — so awaiting this before feeding the
    /// request stream just works. The returned `Response` therefore has no headers; read them
    /// with [`Streaming::headers`]. Failures to reach the server come with the first message.
    pub async fn bidi_streaming<Req, Res, S>(
        &self,
        spec: Spec,
        request: Request<S>,
    ) -> Result<Response<Streaming<Res>>, Error>
    where
        Req: Message,
        Res: Message,
        S: Stream<Item = Req> + Send + 'static,
    {
        let Some(chain) = self.shared.config.interceptors.all() else {
            let incoming = self.bidi_streaming_call(spec, request, None)?;
            return Ok(incoming.into_response(CallEnder::default(), None, Vec::new()));
        };
        let (result, shared, ender) = self
            .intercepted(chain, spec, request, |client, spec, request, hooks| {
                Box::pin(async move {
                    let incoming = client.bidi_streaming_call::<Req, S>(spec, request, hooks)?;
                    Ok(incoming.into_answer())
                })
            })
            .await;
        streamed_response(result, &shared, ender).await
    }

    fn bidi_streaming_call<Req, S>(
        &self,
        spec: Spec,
        request: Request<S>,
        hooks: Option<Box<MessageHooks>>,
    ) -> Result<IncomingStream, Error>
    where
        Req: Message,
        S: Stream<Item = Req> + Send + 'static,
    {
        let (mut call, messages) = self.prepare(spec, request)?;
        call.intercepted = hooks.as_ref().map(|hooks| hooks.shared().clone());
        let descriptors = Descriptors::of(&call.spec);
        let deadline = deadline_of(call.timeout);
        let outgoing = self.encode_stream(messages, &descriptors, hooks);
        let codec = call.codec;
        let send_failure = call.send_failure.clone();
        // The exchange runs in a task of its own, so the request goes out (and the request
        // stream is pulled) while the caller holds the call; dropping the response aborts it.
        let client = self.clone();
        let exchange = tokio::spawn(async move {
            with_timeout(call.timeout, client.bidi_attempts(&call, outgoing)).await
        });
        Ok(IncomingStream {
            source: Box::new(PendingHead::Waiting(exchange, Vec::new())),
            headers: HeaderMap::new(),
            send_failure,
            deadline,
            codec,
            descriptor: descriptors.output,
        })
    }

    /// A bidi call's attempts. Without a retry policy the stream goes out once. Under one,
    /// the messages sent are kept (up to the replay limit) and the first response message
    /// (or the stream's end) is read ahead: an attempt that fails before it is retried,
    /// sending the kept messages again before the rest of the stream; once it has come the
    /// call is committed, as for server streams.
    async fn bidi_attempts(
        &self,
        call: &OutgoingCall,
        outgoing: OutgoingBody,
    ) -> Result<IncomingResponse, Error> {
        let retrying = retry::Retrying::new(&self.shared.config, call, 0);
        let Some(limit) = retrying.replay_limit() else {
            return self.exchange(call, outgoing).await;
        };
        let log = retry::ReplayLog::new(outgoing, limit);
        self.replayed(call, &log, retrying, |mut incoming| async move {
            match std::future::poll_fn(|cx| incoming.messages.poll_message(cx)).await {
                Some(Err(error)) => Err(error),
                first => {
                    incoming.messages = retry::read_ahead(first, incoming.messages);
                    Ok(incoming)
                }
            }
        })
        .await
    }

    /// The attempts of a call whose request stream is kept in `log`: each sends what was
    /// kept, then the rest of the stream, and `commit` reads as much of the response as
    /// decides the call (a client stream's reply, a bidi stream's first message). A failure
    /// before that is retried under the policy, unless the request stream itself failed
    /// (that failure is the call's) or outgrew the replay limit.
    async fn replayed<Committed, F, Fut>(
        &self,
        call: &OutgoingCall,
        log: &retry::ReplayLog,
        mut retrying: retry::Retrying<'_>,
        mut commit: F,
    ) -> Result<Committed, Error>
    where
        F: FnMut(IncomingResponse) -> Fut,
        Fut: Future<Output = Result<Committed, Error>>,
    {
        loop {
            let body = OutgoingBody::Stream(log.replay());
            let result = match self.exchange_attempt(call, body, retrying.previous()).await {
                Ok(incoming) => commit(incoming).await,
                Err(error) => Err(error),
            };
            let error = match call.send_failure.or(result) {
                Ok(committed) => return Ok(committed),
                Err(error) if call.send_failure.get().is_some() || log.overflowed() => {
                    return Err(error);
                }
                Err(error) => error,
            };
            retrying.again(error).await?;
        }
    }

    /// Runs a call inside the interceptors: `terminal` makes the call itself (with the
    /// request as the interceptors left it and their request-message hooks) when the chain
    /// reaches it. Returns what the chain answered, with the call's shared state and its end.
    async fn intercepted<M, F>(
        &self,
        chain: Chain,
        spec: Spec,
        request: Request<M>,
        terminal: F,
    ) -> (Result<Answer, Error>, Arc<CallShared>, CallEnder)
    where
        M: Send + 'static,
        F: FnOnce(Self, Spec, Request<M>, Option<Box<MessageHooks>>) -> ReplyFuture
            + Send
            + 'static,
    {
        let shared = CallShared::new(CallInfo {
            spec: spec.clone(),
            peer: Some(Peer::new(self.shared.config.protocol, None)),
            side: Side::Client,
            started: Instant::now(),
            authority: self.shared.authority.clone(),
            http_version: None,
        });
        // Owns the call's end: dropped with the caller's future, it ends the call as
        // cancelled.
        let ender = CallEnder::new(shared.clone());
        let mut message = None;
        let mut shell = request.map(|m| message = Some(m));
        let call = Call::new(
            shared.clone(),
            None,
            std::mem::take(shell.headers_mut()),
            std::mem::take(shell.extensions_mut()),
            message.map(|m| Box::new(m) as Box<dyn std::any::Any + Send>),
        );
        let client = self.clone();
        let run = move |call: Call| -> ReplyFuture {
            let hooks = MessageHooks::new(
                call.shared.clone(),
                Direction::Request,
                call.hooks,
                call.sizes,
            );
            *shell.headers_mut() = call.headers;
            *shell.extensions_mut() = call.extensions;
            let Some(Ok(message)) = call.message.map(|m| m.downcast::<M>()) else {
                return Box::pin(std::future::ready(Err(Error::internal(
                    "an interceptor took the request message",
                ))));
            };
            terminal(client, spec, shell.map(|()| *message), Some(hooks))
        };
        let result = Next::filtering(chain, Box::new(run)).run(call).await;
        (result, shared, ender)
    }

    fn prepare<M>(&self, spec: Spec, request: Request<M>) -> Result<(OutgoingCall, M), Error> {
        let config = &self.shared.config;
        let options = request.options().clone();
        let message_compression = request.message_compression().clone();
        let (user_headers, _extensions, message) = request.into_parts();
        let mut headers = config.headers.clone();
        for (name, value) in &user_headers {
            headers.append(name.clone(), value.clone());
        }
        let compression_name = options.compression.or(config.send_compression);
        let compression = match compression_name {
            None | Some("identity") => None,
            Some(name) => Some(config.compression.get(name).cloned().ok_or_else(|| {
                Error::invalid_argument(format!("compression {name:?} is not registered"))
            })?),
        };
        let mut uri = String::with_capacity(self.shared.base.len() + spec.procedure().len());
        uri.push_str(&self.shared.base);
        uri.push_str(spec.procedure());
        let uri = uri
            .parse()
            .map_err(|e| Error::internal(format!("invalid URL {uri:?}: {e}")))?;
        Ok((
            OutgoingCall {
                spec,
                codec: config.codec,
                uri,
                headers,
                timeout: effective_timeout(options.timeout.or(config.timeout), config)?,
                compression,
                registry: config.compression.clone(),
                policy: config.policy,
                read_max_bytes: config.read_max_bytes,
                use_get: options.use_get.unwrap_or(config.use_get),
                get_max_url_bytes: config.get_max_url_bytes,
                message_compression,
                send_failure: SendFailure::default(),
                intercepted: None,
            },
            message,
        ))
    }

    fn encode<M: Message>(
        &self,
        message: &M,
        descriptor: Option<&MessageDescriptor>,
    ) -> Result<Bytes, Error> {
        let mut buf = BytesMut::new();
        self.shared
            .config
            .codec
            .encode(message, descriptor, &mut buf)?;
        check_send_limit(buf.len(), self.shared.config.send_max_bytes)?;
        Ok(buf.freeze())
    }

    fn encode_stream<Req: Message, S>(
        &self,
        messages: S,
        descriptors: &Descriptors,
        hooks: Option<Box<MessageHooks>>,
    ) -> OutgoingBody
    where
        S: Stream<Item = Req> + Send + 'static,
    {
        OutgoingBody::Stream(Box::pin(EncodeRequests {
            inner: Box::pin(messages),
            codec: self.shared.config.codec,
            descriptor: descriptors.input.clone(),
            send_max_bytes: self.shared.config.send_max_bytes,
            hooks,
        }))
    }

    async fn exchange(
        &self,
        call: &OutgoingCall,
        body: OutgoingBody,
    ) -> Result<IncomingResponse, Error> {
        self.exchange_attempt(call, body, 0).await
    }

    /// One attempt of a call, after `previous` others (sent as `grpc-previous-rpc-attempts`
    /// when there were any).
    async fn exchange_attempt(
        &self,
        call: &OutgoingCall,
        body: OutgoingBody,
        previous: u32,
    ) -> Result<IncomingResponse, Error> {
        let protocol = self.shared.protocol;
        let mut request = protocol.request(call, body)?;
        if previous > 0 {
            request.headers_mut().insert(
                HeaderName::from_static(retry::PREVIOUS_ATTEMPTS),
                HeaderValue::from(previous),
            );
        }
        let result = async {
            let response = self
                .transport
                .send(request)
                .await
                .map_err(transport_error)?;
            if let Some(intercepted) = &call.intercepted {
                intercepted.saw_http_version(response.version());
            }
            protocol.response(call, response.map(box_body)).await
        }
        .await;
        // A request body that failed was cut off on purpose; what came back is a consequence.
        call.send_failure.or(result)
    }

    /// The one response message of a unary-response call (unary and client streaming), with
    /// the response's headers and trailers.
    async fn unary_reply<Res: Message>(
        &self,
        incoming: IncomingResponse,
        codec: Codec,
        descriptor: Option<MessageDescriptor>,
    ) -> Result<Response<Res>, Error> {
        let mut stream = self.wire_stream::<Res>(incoming.messages, codec, descriptor);
        let message = single_response(&mut stream).await?;
        let trailers = stream.trailers().cloned().unwrap_or_default();
        Ok(Response::from_parts(message, incoming.headers, trailers))
    }

    fn wire_stream<Res: Message>(
        &self,
        source: Box<dyn MessageSource>,
        codec: Codec,
        descriptor: Option<MessageDescriptor>,
    ) -> Streaming<Res> {
        Streaming::from_wire(WireStream {
            source,
            codec,
            descriptor,
            hooks: None,
            failed: false,
        })
    }
}

/// A streamed response whose head has arrived (or, for bidi calls, is on its way), before
/// it becomes the caller's [`Streaming`].
struct IncomingStream {
    source: Box<dyn MessageSource>,
    headers: HeaderMap,
    /// The request stream's own failure, which replaces however the response then ends.
    send_failure: SendFailure,
    deadline: Option<Instant>,
    codec: Codec,
    descriptor: Option<MessageDescriptor>,
}

impl IncomingStream {
    /// The caller's response: the stream enforces the deadline, runs the interceptors'
    /// response hooks and owns the call's end.
    fn into_response<Res: Message>(
        mut self,
        ender: CallEnder,
        hooks: Option<Box<MessageHooks>>,
        header_hooks: Vec<HeaderHook>,
    ) -> Response<Streaming<Res>> {
        let mut headers = std::mem::take(&mut self.headers);
        if !header_hooks.is_empty() {
            // A bidi call's headers are still on their way: its source runs the hooks.
            if let Some(hooks) = self.source.defer_header_hooks(header_hooks) {
                run_header_hooks(hooks, &mut headers);
            }
        }
        let source = ClientStreamSource::new(self.source, self.send_failure, self.deadline, ender);
        let stream = Streaming::from_wire(WireStream {
            source: Box::new(source),
            codec: self.codec,
            descriptor: self.descriptor,
            hooks,
            failed: false,
        });
        Response::from_parts(stream, headers, HeaderMap::new())
    }

    /// The response as interceptors see it: headers, and the stream still to come.
    fn into_answer(mut self) -> Answer {
        let headers = std::mem::take(&mut self.headers);
        Answer::from_body(Box::new(self), headers, HeaderMap::new())
    }
}

/// A response as the interceptors see it.
fn answer_from<T: Send + 'static>(response: Response<T>) -> Answer {
    let (headers, message, trailers) = response.into_parts();
    Answer::from_body(Box::new(message), headers, trailers)
}

/// A unary-response call's response from what the interceptors returned, through their
/// response-message hooks.
fn unary_response<Res: Message>(
    mut answer: Answer,
    shared: &Arc<CallShared>,
) -> Result<Response<Res>, Error> {
    let mut hooks = answer.message_hooks(shared, Direction::Response);
    run_header_hooks(
        std::mem::take(&mut answer.header_hooks),
        &mut answer.headers,
    );
    let mut message = answer.take_body::<Res>()?;
    hooks.run(&mut message)?;
    Ok(Response::from_parts(
        message,
        answer.headers,
        answer.trailers,
    ))
}

/// A streamed call's response from what the interceptors returned; the stream carries their
/// response-message hooks and the call's end.
async fn streamed_response<Res: Message>(
    result: Result<Answer, Error>,
    shared: &Arc<CallShared>,
    mut ender: CallEnder,
) -> Result<Response<Streaming<Res>>, Error> {
    let result = result.and_then(|mut answer| {
        let hooks = answer.message_hooks(shared, Direction::Response);
        let header_hooks = std::mem::take(&mut answer.header_hooks);
        let incoming = answer.take_body::<IncomingStream>()?;
        Ok((incoming, answer.headers, hooks, header_hooks))
    });
    match result {
        Ok((mut incoming, headers, hooks, header_hooks)) => {
            incoming.headers = headers;
            Ok(incoming.into_response(ender, Some(hooks), header_hooks))
        }
        Err(error) => ender.settle(Err(error)).await,
    }
}

trait MakeMutShared {
    fn make_mut_shared(this: &mut Self) -> &mut Shared;
}

impl MakeMutShared for Arc<Shared> {
    fn make_mut_shared(this: &mut Self) -> &mut Shared {
        if Arc::get_mut(this).is_none() {
            *this = Arc::new(Shared {
                base: this.base.clone(),
                authority: this.authority.clone(),
                config: this.config.clone(),
                protocol: this.protocol,
            });
        }
        Arc::get_mut(this).expect("freshly created Arc is unique")
    }
}

/// A call's timeout: its own, bounded by the deadline it inherits from the call being handled
/// on this task (less the margin) when the config propagates deadlines. An inherited deadline
/// already past fails the call before anything is sent: `deadline_exceeded`, never retried.
fn effective_timeout(
    own: Option<Duration>,
    config: &ClientConfig,
) -> Result<Option<Duration>, Error> {
    if !config.propagate_deadline {
        return Ok(own);
    }
    let Some(inherited) = crate::deadline::current() else {
        return Ok(own);
    };
    let left = inherited
        .saturating_duration_since(Instant::now())
        .saturating_sub(config.deadline_margin);
    if left.is_zero() {
        return Err(Error::deadline_exceeded());
    }
    Ok(Some(own.map_or(left, |own| own.min(left))))
}

fn deadline_of(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

async fn with_timeout<T>(
    timeout: Option<Duration>,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match timeout {
        None => work.await,
        Some(timeout) => {
            let deadline = deadline_of(Some(timeout));
            match tokio::time::timeout(timeout, work).await {
                Ok(result) => result.map_err(|e| past_deadline(e, deadline)),
                Err(_) => Err(Error::deadline_exceeded()),
            }
        }
    }
}

/// A local failure (a reset stream, a closed connection) once the deadline has passed is the
/// deadline's doing: the peer gave up on the call, often a moment before our own timer
/// fired. Errors the peer reported stay as they are.
fn past_deadline(error: Error, deadline: Option<Instant>) -> Error {
    match deadline {
        Some(deadline) if !error.is_wire() && Instant::now() >= deadline => {
            Error::deadline_exceeded()
        }
        _ => error,
    }
}

fn transport_error(error: crate::body::BoxError) -> Error {
    Error::from_source(Code::Unavailable, error)
}

/// Reads the one response message of a unary-response call and checks there is no other.
///
/// A successful response with no message or with several is `unimplemented`, as gRPC and
/// Connect clients report it: the server does not implement the method as declared.
async fn single_response<Res: Message>(stream: &mut Streaming<Res>) -> Result<Res, Error> {
    let message = stream.message().await?.ok_or_else(|| {
        Error::unimplemented("protocol error: the response has no message (expected one)")
    })?;
    if stream.message().await?.is_some() {
        return Err(Error::unimplemented(
            "protocol error: more than one response message for a unary-response method",
        ));
    }
    Ok(message)
}

/// Encodes request messages as the transport pulls them.
struct EncodeRequests<Req> {
    inner: Pin<Box<dyn Stream<Item = Req> + Send>>,
    codec: Codec,
    descriptor: Option<MessageDescriptor>,
    send_max_bytes: usize,
    hooks: Option<Box<MessageHooks>>,
}

impl<Req: Message> Stream for EncodeRequests<Req> {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(mut message)) => {
                if let Some(hooks) = &mut this.hooks {
                    if let Err(e) = hooks.run(&mut message) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                let mut buf = BytesMut::new();
                let result = this
                    .codec
                    .encode(&message, this.descriptor.as_ref(), &mut buf)
                    .and_then(|()| check_send_limit(buf.len(), this.send_max_bytes))
                    .map(|()| buf.freeze());
                Poll::Ready(Some(result))
            }
        }
    }
}

/// The response of a bidi call whose head has not arrived yet: the spawned exchange, then
/// the response's messages.
enum PendingHead {
    /// The exchange, and the interceptors' hooks on the headers still to come.
    Waiting(
        tokio::task::JoinHandle<Result<IncomingResponse, Error>>,
        Vec<HeaderHook>,
    ),
    Arrived(IncomingResponse),
    /// The exchange failed; the error is returned by the next message read.
    Failed(Option<Error>),
}

impl PendingHead {
    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let PendingHead::Waiting(task, _) = self else {
            return Poll::Ready(match self {
                PendingHead::Failed(Some(error)) => Err(error.clone()),
                PendingHead::Failed(None) => Err(Error::internal("the call has failed")),
                _ => Ok(()),
            });
        };
        let result = match std::future::Future::poll(Pin::new(task), cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(result)) => result,
            Poll::Ready(Err(join)) => {
                Err(Error::internal(format!("the call's task failed: {join}")))
            }
        };
        match result {
            Ok(mut incoming) => {
                if let PendingHead::Waiting(_, hooks) = self {
                    run_header_hooks(std::mem::take(hooks), &mut incoming.headers);
                }
                *self = PendingHead::Arrived(incoming);
                Poll::Ready(Ok(()))
            }
            Err(error) => {
                *self = PendingHead::Failed(Some(error.clone()));
                Poll::Ready(Err(error))
            }
        }
    }
}

impl Drop for PendingHead {
    fn drop(&mut self) {
        if let PendingHead::Waiting(task, _) = self {
            task.abort();
        }
    }
}

impl MessageSource for PendingHead {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if let Err(error) = std::task::ready!(self.poll_head(cx)) {
            if let PendingHead::Failed(slot) = self {
                // Once: the stream then ends.
                return Poll::Ready(slot.take().map(|_| Err(error)));
            }
            return Poll::Ready(Some(Err(error)));
        }
        match self {
            PendingHead::Arrived(incoming) => incoming.messages.poll_message(cx),
            _ => Poll::Ready(None),
        }
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        match self {
            PendingHead::Arrived(incoming) => incoming.messages.trailers(),
            _ => None,
        }
    }

    fn poll_headers(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_head(cx)
    }

    fn headers(&self) -> Option<&HeaderMap> {
        match self {
            PendingHead::Arrived(incoming) => Some(&incoming.headers),
            _ => None,
        }
    }

    fn defer_header_hooks(&mut self, hooks: Vec<HeaderHook>) -> Option<Vec<HeaderHook>> {
        match self {
            PendingHead::Waiting(_, waiting) => waiting.extend(hooks),
            PendingHead::Arrived(incoming) => run_header_hooks(hooks, &mut incoming.headers),
            PendingHead::Failed(_) => {}
        }
        None
    }
}

/// A streamed response on the client: enforces the deadline and ends the call for its
/// interceptors before the caller sees the end (or when dropped before it, as cancelled).
struct ClientStreamSource {
    inner: Box<dyn MessageSource>,
    /// The request stream's own failure, which replaces however the response then ends.
    send_failure: SendFailure,
    deadline: Option<Instant>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    ender: CallEnder,
    /// The interceptors' end hooks, running; the stream's end (the error they leave, if
    /// any) waits for them.
    ending: Option<EndFuture>,
    finished: bool,
}

impl ClientStreamSource {
    fn new(
        inner: Box<dyn MessageSource>,
        send_failure: SendFailure,
        deadline: Option<Instant>,
        ender: CallEnder,
    ) -> Self {
        ClientStreamSource {
            inner,
            send_failure,
            deadline,
            sleep: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            ender,
            ending: None,
            finished: false,
        }
    }

    /// Ends the stream (`None`: cleanly) once the end hooks have run.
    fn finish(
        &mut self,
        cx: &mut Context<'_>,
        error: Option<Error>,
    ) -> Poll<Option<Result<Bytes, Error>>> {
        self.sleep = None;
        self.ending = Some(self.ender.end(error, None));
        self.poll_ending(cx)
    }

    fn poll_ending(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        let Some(ending) = &mut self.ending else {
            return Poll::Ready(None);
        };
        let (error, _) = std::task::ready!(Pin::new(ending).poll(cx));
        self.ending = None;
        self.finished = true;
        Poll::Ready(error.map(Err))
    }
}

impl MessageSource for ClientStreamSource {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.ending.is_some() {
            return self.poll_ending(cx);
        }
        if let Some(sleep) = &mut self.sleep {
            if std::future::Future::poll(sleep.as_mut(), cx).is_ready() {
                return self.finish(cx, Some(Error::deadline_exceeded()));
            }
        }
        match self.inner.poll_message(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                let error = self.send_failure.get();
                self.finish(cx, error)
            }
            Poll::Ready(Some(Err(error))) => {
                let error = self
                    .send_failure
                    .get()
                    .unwrap_or_else(|| past_deadline(error, self.deadline));
                self.finish(cx, Some(error))
            }
            Poll::Ready(Some(Ok(bytes))) => Poll::Ready(Some(Ok(bytes))),
        }
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        self.inner.trailers()
    }

    fn poll_headers(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(sleep) = &mut self.sleep {
            if std::future::Future::poll(sleep.as_mut(), cx).is_ready() {
                return Poll::Ready(Err(Error::deadline_exceeded()));
            }
        }
        self.inner.poll_headers(cx).map_err(|error| {
            self.send_failure
                .get()
                .unwrap_or_else(|| past_deadline(error, self.deadline))
        })
    }

    fn headers(&self) -> Option<&HeaderMap> {
        self.inner.headers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_is_bounded_by_the_deadline_it_inherits() {
        let config = ClientConfig::default().deadline_margin(Duration::from_millis(100));
        let inherited = Instant::now() + Duration::from_secs(2);
        let (none, own_shorter, own_longer) = crate::deadline::scope(Some(inherited), async {
            (
                effective_timeout(None, &config).unwrap().unwrap(),
                effective_timeout(Some(Duration::from_millis(300)), &config).unwrap(),
                effective_timeout(Some(Duration::from_secs(60)), &config)
                    .unwrap()
                    .unwrap(),
            )
        })
        .await;
        assert!(none <= Duration::from_millis(1900) && none > Duration::from_millis(1500));
        assert_eq!(own_shorter, Some(Duration::from_millis(300)));
        assert!(own_longer <= Duration::from_millis(1900));
        // Outside a handler, and with propagation off, a call keeps its own timeout.
        assert_eq!(effective_timeout(None, &config).unwrap(), None);
        let off = config.clone().propagate_deadline(false);
        let kept = crate::deadline::scope(Some(inherited), async {
            effective_timeout(Some(Duration::from_secs(60)), &off).unwrap()
        })
        .await;
        assert_eq!(kept, Some(Duration::from_secs(60)));
    }

    #[tokio::test]
    async fn an_inherited_deadline_already_past_fails_before_sending() {
        let config = ClientConfig::default().deadline_margin(Duration::from_millis(100));
        // 50 ms left, a 100 ms margin: nothing left for the call.
        let inherited = Instant::now() + Duration::from_millis(50);
        let result =
            crate::deadline::scope(Some(inherited), async { effective_timeout(None, &config) })
                .await;
        assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
    }
}
