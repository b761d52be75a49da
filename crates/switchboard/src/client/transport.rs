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

/// The default transport: hyper's pooled client over plain TCP, speaking HTTP/1.1 or
/// HTTP/2 with prior knowledge (h2c).
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: HyperClient<HttpConnector, Body>,
}

impl HttpTransport {
    /// HTTP/1.1 (bidirectional streams are then half duplex).
    pub fn http1() -> Self {
        HttpTransport::build(false)
    }

    /// HTTP/2 with prior knowledge: one multiplexed connection, full-duplex streams.
    pub fn h2c() -> Self {
        HttpTransport::build(true)
    }

    fn build(http2: bool) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let mut builder = HyperClient::builder(TokioExecutor::new());
        builder.pool_idle_timeout(std::time::Duration::from_secs(90));
        if http2 {
            builder.http2_only(true).http2_adaptive_window(true);
        }
        HttpTransport {
            client: builder.build(connector),
        }
    }

    /// Wraps a hyper client you configured yourself.
    pub fn from_client(client: HyperClient<HttpConnector, Body>) -> Self {
        HttpTransport { client }
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
