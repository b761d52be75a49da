//! What carries a client's HTTP requests: any tower service, with a pooled hyper client as
//! the default.

use std::future::poll_fn;
use std::task::{Context, Poll};

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
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

/// The connector under the default transport: plain TCP for `http://`, rustls for `https://`.
#[cfg(feature = "tls")]
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
/// The connector under the default transport: plain TCP (`http://` only: the `tls` feature
/// adds `https://`).
#[cfg(not(feature = "tls"))]
pub type Connector = HttpConnector;

/// The default transport: hyper's pooled client, speaking HTTP/1.1 or HTTP/2 with prior
/// knowledge (h2c) over plain TCP, or either over TLS (chosen by ALPN).
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: HyperClient<Connector, Body>,
    /// How the client was built, to build it again with other settings (`None`: a client
    /// given by the caller).
    built_from: Option<(Connector, bool)>,
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
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        HttpTransport::with_connector(http, http2)
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
        tls: std::sync::Arc<rustls::ClientConfig>,
        http2_only: bool,
        offer_http1: bool,
        offer_http2: bool,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http();
        let connector = match (offer_http1, offer_http2) {
            (true, true) => builder.enable_http1().enable_http2().wrap_connector(http),
            (false, true) => builder.enable_http2().wrap_connector(http),
            _ => builder.enable_http1().wrap_connector(http),
        };
        HttpTransport::with_connector(connector, http2_only)
    }

    /// hyper's pooled client over `connector`.
    fn with_connector(connector: Connector, http2_only: bool) -> Self {
        HttpTransport {
            client: HttpTransport::client_builder(http2_only).build(connector.clone()),
            built_from: Some((connector, http2_only)),
        }
    }

    /// Sends HTTP/2 PING frames every `interval` on each connection, idle or not, and closes a
    /// connection whose peer has not answered within `timeout`: a peer that vanished (a
    /// replica killed, a network cut) is noticed and its calls fail over, instead of waiting
    /// on a dead socket. Off by default (as in grpc-go); servers limit how often they accept
    /// pings (grpc-go servers: not more often than every 5 minutes unless configured), so
    /// keep `interval` at what the servers allow. No effect on a transport made with
    /// [`HttpTransport::from_client`].
    pub fn http2_keepalive(
        mut self,
        interval: std::time::Duration,
        timeout: std::time::Duration,
    ) -> Self {
        if let Some((connector, http2_only)) = &self.built_from {
            let mut builder = HttpTransport::client_builder(*http2_only);
            builder
                .http2_keep_alive_interval(interval)
                .http2_keep_alive_timeout(timeout)
                .http2_keep_alive_while_idle(true)
                .timer(hyper_util::rt::TokioTimer::new());
            self.client = builder.build(connector.clone());
        }
        self
    }

    fn client_builder(http2_only: bool) -> hyper_util::client::legacy::Builder {
        let mut client = HyperClient::builder(TokioExecutor::new());
        // hyper's fixed HTTP/2 windows (5 MiB per connection, 2 MiB per stream), not its
        // adaptive ones: those start at 64 KiB, and h2 sizes its budget for small DATA frames
        // from the connection window, so many streams answering at once with small messages
        // made the client close the connection (GOAWAY ENHANCE_YOUR_CALM).
        client.pool_idle_timeout(std::time::Duration::from_secs(90));
        if http2_only {
            client.http2_only(true);
        }
        client
    }

    /// Wraps a hyper client you configured yourself.
    pub fn from_client(client: HyperClient<Connector, Body>) -> Self {
        HttpTransport {
            client,
            built_from: None,
        }
    }
}

impl tower_service::Service<http::Request<Body>> for HttpTransport {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::poll_ready(&mut self.client, cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        tower_service::Service::call(&mut self.client, request)
    }
}
