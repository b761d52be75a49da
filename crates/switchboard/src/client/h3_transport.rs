//! The HTTP/3 client transport (feature `http3`): requests to `https://` URLs over QUIC, with
//! one pooled connection per origin.
//!
//! What is supported: every protocol and stream shape (full-duplex bidi streams), trailers
//! both ways, TLS with the configuration given (client certificates included), connection
//! reuse, and a fresh connection when the server has sent GOAWAY. What is not: 0-RTT (early
//! data is off: a replayed request is not safe for every method), connection migration
//! (the client's address is fixed), upgrading from `Alt-Svc` (the transport speaks HTTP/3
//! to every URL it is given; pick it where HTTP/3 is known to be served) and `http://` URLs
//! (QUIC is always encrypted).

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h3::error::{Code, StreamError};
use http_body::{Body as HttpBody, Frame};

use crate::body::{Body, BoxError};
use crate::h3_stream::{BodySender, RecvBody};
use crate::interceptor::BoxFuture;

/// The receiving half of a client's HTTP/3 request stream.
type RecvHalf = h3::client::RequestStream<h3_quinn::RecvStream, Bytes>;
/// What opens request streams on one connection.
type Opener = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// An HTTP/3 transport for [`crate::client::Client`]: `https://` URLs are called over QUIC, with one
/// connection per origin (host and port) shared by every call, as RFC 9114 asks.
///
/// ```no_run
/// # async fn demo() -> Result<(), switchboard::Error> {
/// use switchboard::client::{Http3Transport, tls};
/// let ca = std::fs::read("ca.pem").expect("the CA certificate");
/// let transport = Http3Transport::new(tls::client_config(Some(&ca), None)?)?;
/// let client = switchboard::client::Client::new("https://localhost:8443", transport)?;
/// # let _ = client; Ok(()) }
/// ```
///
/// Supported: every protocol and stream shape, trailers, client certificates, pooling, a new
/// connection after GOAWAY. Not supported: 0-RTT, connection migration, Alt-Svc upgrades and
/// `http://` URLs.
#[derive(Clone)]
pub struct Http3Transport {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Http3Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origins = self.shared.pool.lock().map(|pool| pool.len()).unwrap_or(0);
        f.debug_struct("Http3Transport")
            .field("origins", &origins)
            .finish_non_exhaustive()
    }
}

/// What every clone of a transport shares.
struct Shared {
    quic: quinn::ClientConfig,
    /// The UDP endpoints, one per address family, bound on first use.
    endpoints: Mutex<[Option<quinn::Endpoint>; 2]>,
    /// One place per origin; its lock is held while dialing, so that concurrent first calls
    /// share one new connection.
    pool: Mutex<HashMap<(String, u16), Place>>,
}

/// An origin's place in the pool: its connection, if one is open.
type Place = Arc<tokio::sync::Mutex<Option<Pooled>>>;

/// A pooled connection: what opens its streams, and whether its driver has seen it close.
#[derive(Clone)]
struct Pooled {
    opener: Opener,
    closed: Arc<AtomicBool>,
}

/// A request that failed before any of it reached the server (the connection could not be
/// made, or the server was closing it): safe to send again, whatever the method. The retry
/// policy's transparent retry looks for it.
#[derive(Debug)]
pub(crate) struct NotSent(BoxError);

impl std::fmt::Display for NotSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP/3 request not sent: {}", self.0)
    }
}

impl std::error::Error for NotSent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// How long a QUIC handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Http3Transport {
    /// A transport with this TLS configuration (see [`super::tls::client_config`]); ALPN is
    /// set to `h3` and early data off. Fails if the configuration cannot do TLS 1.3.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Result<Self, crate::Error> {
        let mut tls = (*tls).clone();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        tls.enable_early_data = false;
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| {
            crate::Error::invalid_argument(format!("TLS configuration unusable for QUIC: {e}"))
        })?;
        let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        // Pings keep a quiet stream (a long Watch) and the pooled connection alive; the
        // server's idle timeout would close them otherwise.
        transport.keep_alive_interval(Some(Duration::from_secs(10)));
        quic.transport_config(Arc::new(transport));
        Ok(Http3Transport {
            shared: Arc::new(Shared {
                quic,
                endpoints: Mutex::new([None, None]),
                pool: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A transport verifying servers against the platform's root certificates.
    pub fn platform() -> Result<Self, crate::Error> {
        Http3Transport::new(super::tls::platform_client_config(None)?)
    }
}

impl tower_service::Service<http::Request<Body>> for Http3Transport {
    type Response = http::Response<Http3ResponseBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { shared.send(request).await })
    }
}

impl Shared {
    async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Http3ResponseBody>, BoxError> {
        let (parts, body) = request.into_parts();
        if parts.uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(format!("HTTP/3 needs an https:// URL, not {}", parts.uri).into());
        }
        let host = parts.uri.host().ok_or("the URL has no host")?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parts.uri.port_u16().unwrap_or(443);
        // A connection whose server sent GOAWAY takes no new stream: the request goes on a
        // new connection, once.
        let mut fresh = false;
        let stream = loop {
            let mut opener = self.connection(&host, port, fresh).await?;
            match opener.send_request(head_of(&parts)).await {
                Ok(stream) => break stream,
                Err(StreamError::RemoteClosing { .. }) if !fresh => fresh = true,
                Err(error) if not_sent(&error) => return Err(NotSent(error.into()).into()),
                Err(error) => return Err(error.into()),
            }
        };
        let (send, mut recv) = stream.split();
        // The request body is sent while the response is read (full duplex); a request cut
        // short (a body error, the call dropped) resets the stream.
        let sending = AbortOnDrop(tokio::spawn(async move {
            let _ = BodySender::new(send).send(body).await;
        }));
        let head = match recv.recv_response().await {
            Ok(head) => head,
            Err(error) if not_sent(&error) => return Err(NotSent(error.into()).into()),
            Err(error) => return Err(error.into()),
        };
        Ok(head.map(|()| Http3ResponseBody {
            body: RecvBody::new(recv),
            _sending: sending,
        }))
    }

    /// The pooled connection to `host:port`, dialed if there is none, it closed, or
    /// `replace` asks for a new one.
    async fn connection(&self, host: &str, port: u16, replace: bool) -> Result<Opener, BoxError> {
        let place = {
            let mut pool = self
                .pool
                .lock()
                .map_err(|_| "the HTTP/3 pool is poisoned")?;
            pool.entry((host.to_owned(), port)).or_default().clone()
        };
        let mut place = place.lock().await;
        if let Some(pooled) = place.as_ref() {
            if !replace && !pooled.closed.load(Ordering::Acquire) {
                return Ok(pooled.opener.clone());
            }
        }
        *place = None;
        let pooled = self.dial(host, port).await.map_err(NotSent)?;
        let opener = pooled.opener.clone();
        *place = Some(pooled);
        Ok(opener)
    }

    /// A new QUIC connection with its HTTP/3 driver running.
    async fn dial(&self, host: &str, port: u16) -> Result<Pooled, BoxError> {
        let address = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        let endpoint = self.endpoint_for(address)?;
        let connecting = endpoint.connect_with(self.quic.clone(), address, host)?;
        let connection = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| format!("QUIC handshake with {address} timed out"))??;
        let (mut driver, opener) = h3::client::new(h3_quinn::Connection::new(connection)).await?;
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        tokio::spawn(async move {
            let _ = poll_fn(|cx| driver.poll_close(cx)).await;
            flag.store(true, Ordering::Release);
        });
        Ok(Pooled { opener, closed })
    }

    /// The endpoint for `address`'s family, bound on first use.
    fn endpoint_for(&self, address: SocketAddr) -> Result<quinn::Endpoint, BoxError> {
        let mut endpoints = self
            .endpoints
            .lock()
            .map_err(|_| "the HTTP/3 endpoints are poisoned")?;
        let slot = &mut endpoints[usize::from(address.is_ipv6())];
        if let Some(endpoint) = slot {
            return Ok(endpoint.clone());
        }
        let local: SocketAddr = if address.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = quinn::Endpoint::client(local)?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }
}

/// The request head as HTTP/3 sends it: without the connection-specific fields HTTP/3
/// forbids (RFC 9114 §4.2).
fn head_of(parts: &http::request::Parts) -> http::Request<()> {
    let mut head = http::Request::new(());
    *head.method_mut() = parts.method.clone();
    *head.uri_mut() = parts.uri.clone();
    *head.headers_mut() = parts.headers.clone();
    for name in [
        http::header::CONNECTION,
        http::header::TRANSFER_ENCODING,
        http::header::UPGRADE,
        http::header::HOST,
    ] {
        head.headers_mut().remove(name);
    }
    head.headers_mut().remove("keep-alive");
    head.headers_mut().remove("proxy-connection");
    head
}

/// Whether a stream error means the server never took the request: it was closing the
/// connection (GOAWAY), or rejected the stream unprocessed (H3_REQUEST_REJECTED).
fn not_sent(error: &StreamError) -> bool {
    match error {
        StreamError::RemoteClosing { .. } => true,
        StreamError::RemoteTerminate { code, .. } => *code == Code::H3_REQUEST_REJECTED,
        _ => false,
    }
}

/// Whether `error`, from this transport, says the request was never sent.
pub(crate) fn is_not_sent(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<NotSent>()
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The body of a response received over HTTP/3: its data, then its trailers. Dropped before
/// its end, it tells the server to stop sending, and resets the request if it is still being
/// sent.
pub struct Http3ResponseBody {
    body: RecvBody<RecvHalf>,
    _sending: AbortOnDrop,
}

impl std::fmt::Debug for Http3ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http3ResponseBody")
            .field("ended", &self.body.is_end_stream())
            .finish()
    }
}

impl HttpBody for Http3ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}
