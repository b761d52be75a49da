//! The built-in server: HTTP/1.1 and h2c (HTTP/2 without TLS) on one port, with graceful
//! shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::either::Either;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt as _;

use crate::body::{Body, BoxError};
use crate::server::coalesce::Coalesce;
use crate::server::first_bytes::FirstBytes;
use crate::server::in_flight::{Admitted, Counted};
use crate::server::linger::Linger;
use crate::server::{Router, error_response_to};
use crate::spec::{PeerCertificates, RemoteAddr};
use crate::{Code, Error};

/// How long a TLS handshake may take.
#[cfg(feature = "tls")]
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a connection may take to send a complete HTTP/1 request head. hyper also applies
/// it to idle keep-alive connections waiting for their next request, so it must outlast the
/// idle timeouts of common clients (Go's transport and switchboard's pool: 90 s): otherwise a
/// client can send a request on a connection the server is closing at that very moment, and a
/// non-idempotent call fails with an unexpected EOF.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// How many streams one HTTP/2 connection may have open at once, advertised in SETTINGS
/// (h2 sets no limit by default; Go's net/http advertises 250). A peer opening more gets its
/// extra streams refused (REFUSED_STREAM, which clients retry), instead of costing the server
/// memory without bound.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1000;
/// HTTP/2 flow-control windows: per connection and per stream (hyper's and tonic's defaults).
/// Fixed windows, not hyper's adaptive ones: those start at the protocol's 64 KiB, and h2
/// sizes its budget for small DATA frames from the connection window (half of it), so a
/// normal burst (150 streams opened at once with a small first message each) exhausted it
/// and the connection was closed with GOAWAY ENHANCE_YOUR_CALM. With 1 MiB, about 2,000 small
/// frames may wait unread at once.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
const STREAM_WINDOW: u32 = 1024 * 1024;
/// How many response bytes one HTTP/2 stream may queue unsent (hyper's default is 400 KiB):
/// hyper polls a response body for its next frame only when the queue has room. 64 KiB is
/// grpc-go's write quota per stream, enough to keep a stream busy; a peer that stops reading
/// holds that much per stream (plus the one frame in hand, which may be a whole reply), not
/// 400 KiB.
pub const DEFAULT_STREAM_SEND_BUFFER: usize = 64 * 1024;
/// How often an idle HTTP/2 connection is pinged, and how long the answer may take.
const KEEP_ALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// What the built-in server calls for each request: a [`Router`] as it is (the fastest
/// path), or any tower service built around one ([`Server::from_service`]). `B` is the
/// request body: hyper's [`Incoming`] over TCP, and with the `http3` feature
/// [`crate::server::Http3Body`] over QUIC.
pub trait ServeRequest<B = Incoming>: Clone + Send + 'static {
    /// Handles one request from `remote` (with its verified TLS client certificates); the
    /// server calls it on a clone per request.
    fn serve_request(
        self,
        request: http::Request<B>,
        remote: SocketAddr,
        certificates: Option<Arc<[Bytes]>>,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static;
}

impl<B> ServeRequest<B> for Router
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn serve_request(
        self,
        request: http::Request<B>,
        remote: SocketAddr,
        certificates: Option<Arc<[Bytes]>>,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static {
        self.into_call(request, remote, certificates)
    }
}

/// A tower service served by the built-in server (see [`Server::from_service`]): each
/// request carries the peer's [`RemoteAddr`] and [`PeerCertificates`] in its extensions,
/// where a [`Router`] inside (and any layer) finds them.
#[derive(Clone, Debug)]
pub struct TowerService<S>(S);

impl<S, B, RequestBody> ServeRequest<RequestBody> for TowerService<S>
where
    RequestBody: Send + 'static,
    S: tower_service::Service<http::Request<RequestBody>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn serve_request(
        self,
        mut request: http::Request<RequestBody>,
        remote: SocketAddr,
        certificates: Option<Arc<[Bytes]>>,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static {
        request.extensions_mut().insert(RemoteAddr(remote));
        if let Some(certificates) = certificates {
            request
                .extensions_mut()
                .insert(PeerCertificates(certificates));
        }
        // Enough of the request to answer in its protocol if the service fails.
        let mut head = http::HeaderMap::new();
        if let Some(content_type) = request.headers().get(http::header::CONTENT_TYPE) {
            head.insert(http::header::CONTENT_TYPE, content_type.clone());
        }
        let mut service = self.0;
        async move {
            let result = async {
                std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                service.call(request).await
            }
            .await;
            match result {
                Ok(response) => response.map(Body::new),
                Err(error) => {
                    // A layer may fail with a switchboard::Error to choose the code.
                    let error = match error.into().downcast::<Error>() {
                        Ok(error) => *error,
                        Err(other) => Error::from_source(Code::Unknown, other),
                    };
                    error_response_to(&head, &error)
                }
            }
        }
    }
}

/// Serves a [`Router`] (or a tower service around one) on a TCP listener.
///
/// Both HTTP/1.1 and HTTP/2 with prior knowledge are accepted on the same port (the
/// protocol is detected from the connection preface). On shutdown the listener closes,
/// HTTP/2 peers get GOAWAY, and the calls already in flight run to completion.
pub struct Server<S = Router> {
    service: S,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<Acceptor>,
    grace: std::time::Duration,
    first_bytes_timeout: std::time::Duration,
    max_connections: Option<usize>,
    max_calls_in_flight: Option<usize>,
    /// The TLS configuration, from which the QUIC one is made.
    #[cfg(feature = "http3")]
    tls_config: Option<Arc<rustls::ServerConfig>>,
    /// How HTTP/3 is served for `S`, if it is ([`Server::http3`]).
    #[cfg(feature = "http3")]
    http3: Option<super::h3_serve::Http3Serving<S>>,
}

/// How many connections the server keeps open at once by default. The rest wait in the
/// kernel's accept queue until one closes, as with nginx's `worker_connections` or Go's
/// `netutil.LimitListener`: a flood of connections then costs queue slots, not file
/// descriptors and memory.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How long a new connection may take to send its first bytes by default (after the TLS
/// handshake, which has 10 s of its own).
pub const DEFAULT_FIRST_BYTES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The first and the longest wait after a failed accept.
const ACCEPT_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// How long shutdown waits for calls in flight by default before closing what is left.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

impl<S> Server<S> {
    /// Whether the server also serves HTTP/3 ([`Server::http3`]).
    fn serves_http3(&self) -> bool {
        #[cfg(feature = "http3")]
        return self.http3.is_some();
        #[cfg(not(feature = "http3"))]
        false
    }
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("tls", &self.tls.is_some())
            .field("grace", &self.grace)
            .field("first_bytes_timeout", &self.first_bytes_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_calls_in_flight", &self.max_calls_in_flight)
            .field("http3", &self.serves_http3())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for `router` with hyper's defaults.
    pub fn new(router: Router) -> Self {
        Server::with_service(router)
    }
}

impl<S> Server<TowerService<S>>
where
    TowerService<S>: ServeRequest,
{
    /// A server for any tower service — typically a [`Router`] inside layers, e.g.
    /// `ServiceBuilder::new().layer(auth).service(router)` — with the same TLS, mutual TLS,
    /// timeouts and graceful shutdown as [`Server::new`]. The remote address and the TLS
    /// client certificates reach the service as [`RemoteAddr`] and [`PeerCertificates`]
    /// request extensions (and from there every handler's [`crate::Peer`]). A layer that
    /// rejects a request answers with [`crate::server::error_response`], or fails with a
    /// boxed [`Error`], which is written in the request's protocol.
    pub fn from_service(service: S) -> Self {
        Server::with_service(TowerService(service))
    }
}

impl<S: ServeRequest> Server<S> {
    fn with_service(service: S) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // A peer that never finishes sending its request head is dropped (slow-loris).
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        // Keep-alive pings find HTTP/2 peers that vanished without closing the connection.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
            .keep_alive_timeout(KEEP_ALIVE_INTERVAL)
            .max_concurrent_streams(DEFAULT_MAX_CONCURRENT_STREAMS)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .initial_stream_window_size(STREAM_WINDOW)
            .max_send_buf_size(DEFAULT_STREAM_SEND_BUFFER);
        Server {
            service,
            builder,
            tls: None,
            grace: DEFAULT_SHUTDOWN_GRACE,
            first_bytes_timeout: DEFAULT_FIRST_BYTES_TIMEOUT,
            max_connections: Some(DEFAULT_MAX_CONNECTIONS),
            max_calls_in_flight: None,
            #[cfg(feature = "http3")]
            tls_config: None,
            #[cfg(feature = "http3")]
            http3: None,
        }
    }

    /// How many connections may be open at once (default [`DEFAULT_MAX_CONNECTIONS`];
    /// `None` for no limit). At the limit the server stops accepting until one closes; new
    /// peers wait in the kernel's accept queue. Raise it (and the process's file descriptor
    /// limit) for servers holding many long-lived connections.
    pub fn max_connections(mut self, limit: Option<usize>) -> Self {
        self.max_connections = limit;
        self
    }

    /// How many calls may be in flight at once across all connections (default: no limit
    /// besides [`DEFAULT_MAX_CONCURRENT_STREAMS`] per connection). A call beyond the limit is
    /// answered at once with `resource_exhausted` (gRPC's code for a server temporarily out
    /// of resources) and never reaches its handler. A call counts until its response has
    /// ended, streams included.
    ///
    /// The memory a server needs is bounded by its calls in flight times its message size
    /// limits; this is the knob that makes that product a number.
    pub fn max_calls_in_flight(mut self, limit: Option<usize>) -> Self {
        self.max_calls_in_flight = limit;
        self
    }

    /// How long shutdown waits for calls in flight (default 30 s). Long-lived streams — a
    /// health `Watch`, a chat — would otherwise hold the server open forever; when the time
    /// is up, the remaining connections are closed.
    pub fn shutdown_grace(mut self, grace: std::time::Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a new connection may stay silent (default 10 s): it must send its first 24
    /// bytes — an HTTP/2 preface, or the start of an HTTP/1 request — within this time after
    /// it is accepted (and after its TLS handshake), or it is closed. hyper's own HTTP/1 header
    /// timeout and HTTP/2 keep-alive pings only start once a connection has said something,
    /// so without this a silent peer holds its socket forever.
    pub fn first_bytes_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.first_bytes_timeout = timeout;
        self
    }

    /// Serves over TLS with this configuration (see [`crate::server::tls::server_config`]).
    /// HTTP/2 and HTTP/1.1 are chosen by ALPN.
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        #[cfg(feature = "http3")]
        {
            self.tls_config = Some(config.clone());
        }
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// Also serves HTTP/3 over QUIC (feature `http3`): the same service, limits, timeouts
    /// and graceful shutdown, on a UDP socket with the TCP listener's address and port
    /// number, using the [`Server::with_tls`] configuration (its certificates and client
    /// verification, with ALPN `h3`; see [`crate::server::tls::quic_server_config`]). Every
    /// TCP response then carries `alt-svc: h3=":PORT"; ma=86400`, so browsers and other
    /// HTTP/3 clients find it.
    ///
    /// The service must take [`crate::server::Http3Body`] requests: a [`Router`] does, and
    /// so does a tower stack around one whose layers accept any request body.
    ///
    /// Serving fails at start if there is no TLS configuration (QUIC is always encrypted) or
    /// the UDP port is taken.
    #[cfg(feature = "http3")]
    pub fn http3(mut self) -> Self
    where
        S: ServeRequest<super::h3_body::Http3Body>,
    {
        self.http3 = Some(super::h3_serve::serving::<S>());
        self
    }

    /// hyper's connection builder, to tune HTTP/1 and HTTP/2 settings.
    pub fn http(&mut self) -> &mut auto::Builder<TokioExecutor> {
        &mut self.builder
    }

    /// Binds `addr` and serves until the process ends.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves on `listener` until `signal` completes, then stops accepting and waits for
    /// in-flight calls to finish, for at most the shutdown grace period
    /// ([`Server::shutdown_grace`]).
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let graceful = GracefulShutdown::new();
        let mut connections = tokio::task::JoinSet::new();
        let mut signal = std::pin::pin!(signal);
        // After a failed accept (out of file descriptors, most often), wait before the next
        // one, longer each time up to a second, instead of spinning on the error.
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let connection_slots = self
            .max_connections
            .map(|limit| Arc::new(Semaphore::new(limit)));
        let call_slots = self
            .max_calls_in_flight
            .map(|limit| (Arc::new(Semaphore::new(limit)), limit));
        let mut at_connection_limit = false;
        // One builder shared by every connection: each connection clones it only while it
        // reads the protocol preface (hyper-util's `into_owned`), where a clone captured by
        // each connection's task would stay in its memory for as long as it is open.
        let shared_builder = Arc::new(self.builder.clone());
        // HTTP/3 on the same port number, served by a task of its own.
        #[cfg(feature = "http3")]
        let (quic, alt_svc) = match self.http3 {
            None => (None, None),
            Some(serving) => {
                let limits = super::h3_serve::Http3Limits {
                    connection_slots: connection_slots.clone(),
                    call_slots: call_slots.clone(),
                    first_bytes_timeout: self.first_bytes_timeout,
                    grace: self.grace,
                };
                let (quic, alt_svc) = start_http3(
                    serving,
                    self.service.clone(),
                    &listener,
                    self.tls_config.as_deref(),
                    limits,
                )?;
                (Some(quic), Some(alt_svc))
            }
        };
        #[cfg(not(feature = "http3"))]
        let alt_svc: Option<http::HeaderValue> = None;
        loop {
            // At the connection limit, wait for a connection to close before accepting. The
            // place is only looked at here and taken once a connection is accepted: QUIC
            // connections take places from the same count meanwhile.
            if let Some(slots) = &connection_slots {
                // Logged once each time the limit is reached, not per waiting peer.
                let full = slots.available_permits() == 0;
                if full && !at_connection_limit {
                    tracing::warn!(
                        limit = self.max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                }
                at_connection_limit = full;
                tokio::select! {
                    free = slots.acquire() => drop(free),
                    () = &mut signal => break,
                }
            }
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => {
                        backoff = ACCEPT_BACKOFF_MIN;
                        accepted
                    }
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?backoff, "accepting a connection failed");
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            () = &mut signal => break,
                        }
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            // Normally free at once; if a QUIC connection took the place meanwhile, this
            // connection waits for the next one, unserved.
            let slot = match &connection_slots {
                None => None,
                Some(slots) => tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.ok(),
                    () = &mut signal => break,
                },
            };
            let _ = stream.set_nodelay(true);
            // Closing a connection the peer still writes to lingers, so the peer reads the
            // last reply instead of a reset (see `linger`).
            let stream = Linger::new(stream);
            let service = self.service.clone();
            let builder = Arc::clone(&shared_builder);
            let tls = self.tls.clone();
            let first_bytes_timeout = self.first_bytes_timeout;
            let call_slots = call_slots.clone();
            let alt_svc = alt_svc.clone();
            let watcher = graceful.watcher();
            // Reap finished connections so the set stays as large as the live ones.
            while connections.try_join_next().is_some() {}
            connections.spawn(async move {
                // Held for as long as the connection lives.
                let _slot = slot;
                let Some((io, certificates)) = secure(tls, stream, remote).await else {
                    return;
                };
                let io = FirstBytes::new(io, first_bytes_timeout);
                // Small writes wait one scheduler turn, so the replies of the calls ready at
                // the same time leave in one system call (see `coalesce`).
                let io = Coalesce::new(io);
                let io = TokioIo::new(io);
                // Two kinds of connection, so a server without a limit on calls in flight
                // serves each call's own future as it is. That future is not wrapped in an
                // async block: one would keep a second copy of the request's parts for the
                // whole call, and hyper copies the whole future when it spawns the call.
                let served = if call_slots.is_none() && alt_svc.is_none() {
                    let per_request =
                        hyper::service::service_fn(move |request: http::Request<Incoming>| {
                            service
                                .clone()
                                .serve_request(request, remote, certificates.clone())
                                .map(Ok::<_, Infallible>)
                        });
                    let connection = builder.serve_connection_with_upgrades(io, per_request);
                    watcher.watch(connection.into_owned()).await
                } else {
                    let per_request =
                        hyper::service::service_fn(move |request: http::Request<Incoming>| {
                            let place = match &call_slots {
                                None => None,
                                Some((slots, limit)) => match slots.clone().try_acquire_owned() {
                                    Ok(place) => Some(place),
                                    Err(_) => {
                                        let refused = over_call_limit(request.headers(), *limit);
                                        return Either::Left(std::future::ready(Ok(refused)));
                                    }
                                },
                            };
                            let call = service.clone().serve_request(
                                request,
                                remote,
                                certificates.clone(),
                            );
                            Either::Right(Admitted::new(call, place, alt_svc.clone()))
                        });
                    let connection = builder.serve_connection_with_upgrades(io, per_request);
                    watcher.watch(connection.into_owned()).await
                };
                if let Err(error) = served {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
            });
        }
        drop(listener);
        // QUIC drains in its own task, at the same time as the TCP connections.
        #[cfg(feature = "http3")]
        let quic = quic.map(|(stop, serving)| {
            let _ = stop.send(true);
            serving
        });
        if tokio::time::timeout(self.grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::info!(grace = ?self.grace, "shutdown grace period over; closing the remaining connections");
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        #[cfg(feature = "http3")]
        if let Some(serving) = quic {
            let _ = serving.await;
        }
        Ok(())
    }
}

/// What stops a running HTTP/3 endpoint (send `true`, or drop it), and its task.
#[cfg(feature = "http3")]
type RunningHttp3 = (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
);

/// Binds UDP on the TCP listener's address and serves HTTP/3 there; returns the running
/// endpoint and the `Alt-Svc` value that advertises it.
#[cfg(feature = "http3")]
fn start_http3<S: Send + 'static>(
    serving: super::h3_serve::Http3Serving<S>,
    service: S,
    listener: &TcpListener,
    tls: Option<&rustls::ServerConfig>,
    limits: super::h3_serve::Http3Limits,
) -> std::io::Result<(RunningHttp3, http::HeaderValue)> {
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
    let tls = tls.ok_or_else(|| {
        invalid("HTTP/3 needs TLS: configure the server with with_tls".to_owned())
    })?;
    let quic = super::tls::quic_server_config(tls).map_err(|e| invalid(e.to_string()))?;
    let addr = listener.local_addr()?;
    let socket = std::net::UdpSocket::bind(addr)?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(quic),
        socket,
        Arc::new(quinn::TokioRuntime),
    )?;
    let alt_svc = http::HeaderValue::try_from(format!("h3=\":{}\"; ma=86400", addr.port()))
        .map_err(|e| invalid(e.to_string()))?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(serving(service, endpoint, limits, stopping));
    Ok(((stop, task), alt_svc))
}

/// What a TLS server accepts connections with.
#[cfg(feature = "tls")]
type Acceptor = tokio_rustls::TlsAcceptor;
/// Without the `tls` feature there is nothing to accept TLS with.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
enum Acceptor {}

/// The connection's stream after its TLS handshake, if the server has TLS, with the client's
/// verified certificate chain; `None` if the handshake failed or timed out (logged).
#[cfg(feature = "tls")]
async fn secure(
    tls: Option<Acceptor>,
    stream: Linger<tokio::net::TcpStream>,
    remote: SocketAddr,
) -> Option<(
    Either<
        Linger<tokio::net::TcpStream>,
        Box<tokio_rustls::server::TlsStream<Linger<tokio::net::TcpStream>>>,
    >,
    Option<Arc<[Bytes]>>,
)> {
    let Some(acceptor) = tls else {
        return Some((Either::Left(stream), None));
    };
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => {
            let certificates = tls_stream.get_ref().1.peer_certificates().map(|chain| {
                chain
                    .iter()
                    .map(|cert| Bytes::copy_from_slice(cert.as_ref()))
                    .collect::<Arc<[Bytes]>>()
            });
            Some((Either::Right(Box::new(tls_stream)), certificates))
        }
        Ok(Err(error)) => {
            tracing::info!(%error, %remote, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%remote, "TLS handshake timed out");
            None
        }
    }
}

/// Without the `tls` feature, the connection's stream as it is.
#[cfg(not(feature = "tls"))]
async fn secure(
    tls: Option<Acceptor>,
    stream: Linger<tokio::net::TcpStream>,
    _remote: SocketAddr,
) -> Option<(Linger<tokio::net::TcpStream>, Option<Arc<[Bytes]>>)> {
    match tls {
        None => Some((stream, None)),
        Some(never) => match never {},
    }
}

/// The answer to a call beyond [`Server::max_calls_in_flight`], in the call's protocol.
pub(crate) fn over_call_limit(
    request_headers: &http::HeaderMap,
    limit: usize,
) -> http::Response<Counted> {
    let error = Error::new(
        Code::ResourceExhausted,
        format!("the server is at its limit of {limit} calls in flight; try again later"),
    );
    error_response_to(request_headers, &error).map(|body| Counted::new(body, None))
}

/// Binds a listener on `addr` (use port 0 for any free port) and returns it with the address
/// it got; a convenience for tests and examples.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
