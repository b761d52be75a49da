//! What carries a client's HTTP requests: any tower service, with a pooled hyper client as
//! the default.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

use crate::body::{Body, BoxError};
use crate::interceptor::BoxFuture;

/// An HTTP transport: anything that turns an `http::Request<Body>` into a response.
///
/// Implemented for every `tower::Service<http::Request<Body>>` that is `Clone` (as tower
/// services meant to be shared are), so hyper clients, `tower::balance`, retry and timeout
/// layers and test doubles all work unchanged.
pub trait Transport: Clone + Send + Sync + 'static {
    /// The response body type.
    type ResponseBody: http_body::Body<Data = Self::Data, Error = Self::BodyError> + Send + 'static;
    /// The body's data chunks.
    type Data: bytes::Buf + Send + 'static;
    /// The body's error.
    type BodyError: Into<BoxError> + 'static;

    /// Sends one request.
    fn send(
        &self,
        request: http::Request<Body>,
    ) -> BoxFuture<'static, Result<http::Response<Self::ResponseBody>, BoxError>>;
}

impl<S, B> Transport for S
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send + 'static,
    B::Error: Into<BoxError> + 'static,
{
    type ResponseBody = B;
    type Data = B::Data;
    type BodyError = B::Error;

    fn send(
        &self,
        request: http::Request<Body>,
    ) -> BoxFuture<'static, Result<http::Response<B>, BoxError>> {
        let mut service = self.clone();
        Box::pin(async move {
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            service.call(request).await.map_err(Into::into)
        })
    }
}

/// Any [`Transport`] behind one type: clients over different transports (HTTP/1.1 or
/// HTTP/2 and, with the `http3` feature, HTTP/3; a test double) then have one type, for a
/// program that picks its transport at run time. The response body is boxed, which costs an
/// allocation per call.
///
/// ```
/// use switchboard::client::{BoxTransport, Client, HttpTransport};
/// let transport = if std::env::var_os("HTTP1").is_some() {
///     BoxTransport::new(HttpTransport::http1())
/// } else {
///     BoxTransport::new(HttpTransport::h2c())
/// };
/// let client: Client<BoxTransport> = Client::new("http://127.0.0.1:8080", transport).unwrap();
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct BoxTransport(std::sync::Arc<SendFn>);

/// What a [`BoxTransport`] holds.
type SendFn = dyn Fn(http::Request<Body>) -> BoxFuture<'static, Result<http::Response<Body>, BoxError>>
    + Send
    + Sync;

impl BoxTransport {
    /// Boxes `transport`.
    pub fn new<T: Transport>(transport: T) -> Self {
        BoxTransport(std::sync::Arc::new(move |request| {
            let sent = transport.send(request);
            Box::pin(async move { Ok(sent.await?.map(Body::new)) })
        }))
    }
}

impl std::fmt::Debug for BoxTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxTransport").finish_non_exhaustive()
    }
}

impl tower_service::Service<http::Request<Body>> for BoxTransport {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        (self.0)(request)
    }
}

/// The connector under the default transport: plain TCP for `http://`, rustls for `https://`.
#[cfg(feature = "tls")]
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
/// The connector under the default transport: plain TCP (`http://` only: the `tls` feature
/// adds `https://`).
#[cfg(not(feature = "tls"))]
pub type Connector = HttpConnector;

/// The default transport's connector over another resolver.
#[cfg(feature = "tls")]
type ConnectorOver<R> = hyper_rustls::HttpsConnector<HttpConnector<R>>;
#[cfg(not(feature = "tls"))]
type ConnectorOver<R> = HttpConnector<R>;

/// The default transport: hyper's pooled client, speaking HTTP/1.1 or HTTP/2 with prior
/// knowledge (h2c) over plain TCP, or either over TLS (chosen by ALPN).
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: Pooled,
    /// How the client was built, to build it again with other settings (`None`: a client
    /// given by the caller).
    built_from: Option<Recipe>,
}

/// The hyper client under an [`HttpTransport`]: host names resolved by the system, or every
/// name taken to one address (an endpoint of a balanced DNS name, see
/// [`HttpTransport::pinned_to`]).
#[derive(Clone, Debug)]
enum Pooled {
    Resolving(HyperClient<Connector, Body>),
    Pinned(HyperClient<ConnectorOver<Pinned>, Body>),
}

/// Everything an [`HttpTransport`] was built from, so that it can be built again with
/// keepalive on or around one address, keeping the rest.
#[derive(Clone, Debug)]
struct Recipe {
    http2_only: bool,
    /// HTTP/2 PING interval and timeout.
    keepalive: Option<(Duration, Duration)>,
    /// Connect to this address whatever the URL's host, which still names the server (the
    /// Host header, TLS server name and certificate verification).
    pinned: Option<SocketAddr>,
    #[cfg(feature = "tls")]
    tls: TlsRecipe,
}

/// The TLS half of a [`Recipe`].
#[cfg(feature = "tls")]
#[derive(Clone, Debug)]
struct TlsRecipe {
    config: std::sync::Arc<rustls::ClientConfig>,
    offer_http1: bool,
    offer_http2: bool,
}

impl Recipe {
    /// A TCP connector over `resolver`, wrapped in TLS for `https://` when the feature is on.
    fn connector<R>(&self, resolver: R) -> ConnectorOver<R> {
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.set_nodelay(true);
        #[cfg(feature = "tls")]
        {
            http.enforce_http(false);
            let builder = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*self.tls.config).clone())
                .https_or_http();
            match (self.tls.offer_http1, self.tls.offer_http2) {
                (true, true) => builder.enable_http1().enable_http2().wrap_connector(http),
                (false, true) => builder.enable_http2().wrap_connector(http),
                _ => builder.enable_http1().wrap_connector(http),
            }
        }
        #[cfg(not(feature = "tls"))]
        http
    }

    fn build(&self) -> Pooled {
        match self.pinned {
            None => Pooled::Resolving(self.client(self.connector(GaiResolver::new()))),
            Some(address) => Pooled::Pinned(self.client(self.connector(Pinned(address)))),
        }
    }

    /// hyper's pooled client over `connector`.
    fn client<C>(&self, connector: C) -> HyperClient<C, Body>
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let mut client = HyperClient::builder(TokioExecutor::new());
        // hyper's fixed HTTP/2 windows (5 MiB per connection, 2 MiB per stream), not its
        // adaptive ones: those start at 64 KiB, and h2 sizes its budget for small DATA frames
        // from the connection window, so many streams answering at once with small messages
        // made the client close the connection (GOAWAY ENHANCE_YOUR_CALM).
        client.pool_idle_timeout(Duration::from_secs(90));
        if self.http2_only {
            client.http2_only(true);
        }
        if let Some((interval, timeout)) = self.keepalive {
            client
                .http2_keep_alive_interval(interval)
                .http2_keep_alive_timeout(timeout)
                .http2_keep_alive_while_idle(true)
                .timer(hyper_util::rt::TokioTimer::new());
        }
        client.build(connector)
    }
}

/// A resolver that answers every name with one address.
#[derive(Clone, Copy, Debug)]
struct Pinned(SocketAddr);

impl tower_service::Service<Name> for Pinned {
    type Response = std::iter::Once<SocketAddr>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _name: Name) -> Self::Future {
        std::future::ready(Ok(std::iter::once(self.0)))
    }
}

impl HttpTransport {
    /// HTTP/1.1 (bidirectional streams are then half duplex); `https://` URLs are verified
    /// against the platform's root certificates.
    pub fn http1() -> Self {
        HttpTransport::build(false)
    }

    /// HTTP/2: with prior knowledge (h2c) for `http://`, over TLS verified against the
    /// platform's root certificates for `https://`; one multiplexed connection, full-duplex
    /// streams.
    pub fn h2c() -> Self {
        HttpTransport::build(true)
    }

    #[cfg(not(feature = "tls"))]
    fn build(http2: bool) -> Self {
        HttpTransport::from_recipe(Recipe {
            http2_only: http2,
            keepalive: None,
            pinned: None,
        })
    }

    #[cfg(feature = "tls")]
    fn build(http2: bool) -> Self {
        // `https://` URLs are verified against the platform's roots, as browsers, curl and
        // tonic's users expect; give a configuration of your own with `tls`.
        let tls = super::tls::platform_client_config(None)
            .expect("a configuration with platform roots and no identity always builds");
        HttpTransport::assemble(tls, http2, true, true)
    }

    /// TLS with this configuration (see [`super::tls::client_config`]); HTTP/2 and HTTP/1.1
    /// are offered by ALPN and the server picks.
    #[cfg(feature = "tls")]
    pub fn tls(config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        HttpTransport::assemble(config, false, true, true)
    }

    /// TLS offering only HTTP/1.1.
    #[cfg(feature = "tls")]
    pub fn tls_http1(config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        HttpTransport::assemble(config, false, true, false)
    }

    /// TLS offering only HTTP/2.
    #[cfg(feature = "tls")]
    pub fn tls_http2(config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        HttpTransport::assemble(config, true, false, true)
    }

    #[cfg(feature = "tls")]
    fn assemble(
        config: std::sync::Arc<rustls::ClientConfig>,
        http2_only: bool,
        offer_http1: bool,
        offer_http2: bool,
    ) -> Self {
        HttpTransport::from_recipe(Recipe {
            http2_only,
            keepalive: None,
            pinned: None,
            tls: TlsRecipe {
                config,
                offer_http1,
                offer_http2,
            },
        })
    }

    fn from_recipe(recipe: Recipe) -> Self {
        HttpTransport {
            client: recipe.build(),
            built_from: Some(recipe),
        }
    }

    /// The same transport (protocols, TLS configuration, keepalive), but connecting to
    /// `address` whatever host a URL names, with a connection pool of its own: the host name
    /// stays in the request, so it is what the Host header (`:authority`) says and what TLS
    /// sends as the server name and verifies the certificate against. `None` for a transport
    /// made with [`HttpTransport::from_client`], which cannot be built again.
    pub(crate) fn pinned_to(&self, address: SocketAddr) -> Option<Self> {
        let mut recipe = self.built_from.clone()?;
        recipe.pinned = Some(address);
        Some(HttpTransport::from_recipe(recipe))
    }

    /// Sends HTTP/2 PING frames every `interval` on each connection, idle or not, and closes a
    /// connection whose peer has not answered within `timeout`: a peer that vanished (a
    /// replica killed, a network cut) is noticed and its calls fail over, instead of waiting
    /// on a dead socket. Off by default (as in grpc-go); servers limit how often they accept
    /// pings (grpc-go servers: not more often than every 5 minutes unless configured), so
    /// keep `interval` at what the servers allow. No effect on a transport made with
    /// [`HttpTransport::from_client`].
    pub fn http2_keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        if let Some(recipe) = &mut self.built_from {
            recipe.keepalive = Some((interval, timeout));
            self.client = recipe.build();
        }
        self
    }

    /// Wraps a hyper client you configured yourself.
    pub fn from_client(client: HyperClient<Connector, Body>) -> Self {
        HttpTransport {
            client: Pooled::Resolving(client),
            built_from: None,
        }
    }
}

impl tower_service::Service<http::Request<Body>> for HttpTransport {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.client {
            Pooled::Resolving(client) => tower_service::Service::poll_ready(client, cx),
            Pooled::Pinned(client) => tower_service::Service::poll_ready(client, cx),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match &mut self.client {
            Pooled::Resolving(client) => tower_service::Service::call(client, request),
            Pooled::Pinned(client) => tower_service::Service::call(client, request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_pinned_transport_connects_to_its_address_and_keeps_the_name() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed before the request head");
                head.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(head).unwrap()
        });
        // `.invalid` never resolves (RFC 2606): only the pin can reach the listener.
        let mut transport = HttpTransport::http1()
            .http2_keepalive(Duration::from_secs(30), Duration::from_secs(10))
            .pinned_to(address)
            .expect("a built transport can be pinned");
        let url = format!("http://replica.invalid:{}/x", address.port());
        let request = http::Request::get(url).body(Body::empty()).unwrap();
        poll_fn(|cx| tower_service::Service::poll_ready(&mut transport, cx))
            .await
            .unwrap();
        let response = tower_service::Service::call(&mut transport, request)
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::NO_CONTENT);
        let head = server.await.unwrap().to_ascii_lowercase();
        let host = format!("host: replica.invalid:{}\r\n", address.port());
        assert!(head.contains(&host), "{head}");
        // Keepalive survives the rebuild around the address.
        assert!(
            transport
                .built_from
                .as_ref()
                .is_some_and(|recipe| recipe.keepalive.is_some())
        );
    }

    #[test]
    fn a_client_given_by_the_caller_cannot_be_pinned() {
        let client = HyperClient::builder(TokioExecutor::new()).build(
            HttpTransport::http1()
                .built_from
                .unwrap()
                .connector(GaiResolver::new()),
        );
        let transport = HttpTransport::from_client(client);
        assert!(
            transport
                .pinned_to("127.0.0.1:1".parse().unwrap())
                .is_none()
        );
    }
}
