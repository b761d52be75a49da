//! The router: a `tower::Service` that maps procedures to handlers and protocols to
//! requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::Either;

use crate::Error;
use crate::body::{Body, BoxError, box_body};
use crate::codec::Message;
use crate::config::ServerConfig;
use crate::envelope::{BodyReader, Side, UnreadBody};
use crate::interceptor::{BoxFuture, Chain};
use crate::protocol::{ServerExchange, classify};
use crate::request::{Request, Response};
use crate::server::handler::{ErasedHandler, Handler, Many, One, ServerCall};
use crate::spec::{Peer, PeerCertificates, RemoteAddr, Spec};
use crate::stream::{ResponseStream, Streaming};

/// A service generated from a `.proto` `service`, ready to be mounted on a [`Router`].
///
/// Generated code implements this; users rarely do by hand.
pub trait RpcService: Send + 'static {
    /// The fully-qualified service name, e.g. `connectrpc.eliza.v1.ElizaService`.
    fn name(&self) -> &'static str;

    /// The encoded `FileDescriptorSet` holding the service's file and all its dependencies,
    /// for server reflection; `None` when unknown.
    fn file_descriptor_set(&self) -> Option<&'static [u8]> {
        None
    }

    /// Adds one route per method.
    fn register(self, routes: &mut Routes);
}

#[derive(Clone)]
struct Route {
    spec: Spec,
    handler: Arc<dyn ErasedHandler>,
    /// The settings of the service this route belongs to, when it has its own
    /// ([`Router::add_service_with`]); otherwise the router's.
    config: Option<Arc<ServerConfig>>,
    /// The interceptors that wrap this method's calls (the router's, then the service's);
    /// `None` when there are none, which keeps their cost off the call path.
    chain: Option<Chain>,
}

impl Route {
    fn resolve_chain(&mut self, router: &ServerConfig) {
        self.chain = match &self.config {
            None => router.interceptors.chain_for(None, &self.spec),
            Some(own) => own
                .interceptors
                .chain_for(Some(&router.interceptors), &self.spec),
        };
    }
}

/// The methods of the services being registered; generated code calls the four methods that
/// match each method's stream type.
#[derive(Clone, Default)]
pub struct Routes {
    routes: HashMap<Box<str>, Route>,
    /// The settings of the service being registered, if it has its own.
    scope: Option<Arc<ServerConfig>>,
}

impl Routes {
    fn insert(&mut self, spec: Spec, handler: Arc<dyn ErasedHandler>) {
        let config = self.scope.clone();
        self.routes.insert(
            spec.procedure().into(),
            Route {
                spec,
                handler,
                config,
                chain: None,
            },
        );
    }

    /// Routes a unary method.
    pub fn unary<Req, Res, F, Fut>(&mut self, spec: Spec, handler: F)
    where
        Req: Message,
        Res: Message,
        F: Fn(Request<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<Res>, Error>> + Send + 'static,
    {
        let handler = Arc::new(Handler::<One, One, Req, Res, F>::new(&spec, handler));
        self.insert(spec, handler);
    }

    /// Routes a server-streaming method.
    pub fn server_streaming<Req, Res, F, Fut>(&mut self, spec: Spec, handler: F)
    where
        Req: Message,
        Res: Message,
        F: Fn(Request<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<ResponseStream<Res>>, Error>> + Send + 'static,
    {
        let handler = Arc::new(Handler::<One, Many, Req, Res, F>::new(&spec, handler));
        self.insert(spec, handler);
    }

    /// Routes a client-streaming method.
    pub fn client_streaming<Req, Res, F, Fut>(&mut self, spec: Spec, handler: F)
    where
        Req: Message,
        Res: Message,
        F: Fn(Request<Streaming<Req>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<Res>, Error>> + Send + 'static,
    {
        let handler = Arc::new(Handler::<Many, One, Req, Res, F>::new(&spec, handler));
        self.insert(spec, handler);
    }

    /// Routes a bidirectional-streaming method.
    pub fn bidi_streaming<Req, Res, F, Fut>(&mut self, spec: Spec, handler: F)
    where
        Req: Message,
        Res: Message,
        F: Fn(Request<Streaming<Req>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<ResponseStream<Res>>, Error>> + Send + 'static,
    {
        let handler = Arc::new(Handler::<Many, Many, Req, Res, F>::new(&spec, handler));
        self.insert(spec, handler);
    }
}

/// Serves registered services over Connect: a `tower::Service<http::Request<B>>` for any
/// body `B`, so it mounts in hyper, axum or any tower stack. Cheap to clone; configuring a
/// clone (adding services, changing settings) leaves the other clones as they were.
///
/// ```
/// use switchboard::server::{Router, ServerConfig};
/// let router = Router::new().with_config(ServerConfig::default().read_max_bytes(1 << 20));
/// assert!(router.procedures().next().is_none());
/// ```
#[derive(Clone)]
pub struct Router {
    inner: Arc<RouterInner>,
}

#[derive(Clone)]
struct RouterInner {
    routes: Routes,
    config: ServerConfig,
    services: Vec<(&'static str, Option<&'static [u8]>)>,
    /// The REST routes, when transcoding is on ([`Router::rest`]).
    rest: Option<crate::rest::RestTable>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("procedures", &self.inner.routes)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut procedures: Vec<&str> = self.routes.keys().map(|k| &**k).collect();
        procedures.sort_unstable();
        f.debug_list().entries(procedures).finish()
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl Router {
    /// A router with no services and default settings.
    pub fn new() -> Self {
        Router {
            inner: Arc::new(RouterInner {
                routes: Routes::default(),
                config: ServerConfig::default(),
                services: Vec::new(),
                rest: None,
            }),
        }
    }

    /// The router's own routes and settings to change: shared ones (after a clone) are copied
    /// first, so configuring one clone never changes, or panics on, another.
    fn inner_mut(&mut self) -> &mut RouterInner {
        Arc::make_mut(&mut self.inner)
    }

    /// Adds a service's methods.
    pub fn add_service<S: RpcService>(self, service: S) -> Self {
        self.add_scoped(service, None)
    }

    /// Adds a service's methods with settings of their own instead of the router's: its own
    /// interceptors, message limits and compression — e.g. authentication on the API while
    /// health checks and reflection stay open.
    ///
    /// ```
    /// use switchboard::server::{Router, ServerConfig};
    /// # struct Api;
    /// # impl switchboard::server::RpcService for Api {
    /// #     fn name(&self) -> &'static str { "example.v1.Api" }
    /// #     fn register(self, _routes: &mut switchboard::server::Routes) {}
    /// # }
    /// let router = Router::new()
    ///     .add_service_with(Api, ServerConfig::default().read_max_bytes(64 * 1024));
    /// # let _ = router;
    /// ```
    pub fn add_service_with<S: RpcService>(self, service: S, config: ServerConfig) -> Self {
        self.add_scoped(service, Some(Arc::new(config)))
    }

    /// Registers a service's routes, with its own settings or (`None`) the router's.
    fn add_scoped<S: RpcService>(mut self, service: S, config: Option<Arc<ServerConfig>>) -> Self {
        let inner = self.inner_mut();
        inner
            .services
            .push((service.name(), service.file_descriptor_set()));
        inner.routes.scope = config;
        service.register(&mut inner.routes);
        inner.routes.scope = None;
        inner.resolve_chains();
        inner.resolve_rest();
        self
    }

    /// Serves REST too: every method with a `google.api.http` option answers at its HTTP
    /// method and path template, through the same handler and interceptors as its RPC
    /// routes, which keep priority. Applies to the services added before and after.
    ///
    /// # Panics
    ///
    /// When a binding is invalid (a template that does not parse, a field that does not
    /// exist) or two bindings match the same requests: a mistake in the schema, reported at
    /// start-up rather than when a request arrives.
    ///
    /// ```
    /// use switchboard::server::{Rest, Router};
    /// let router = Router::new().rest(Rest::default());
    /// # let _ = router;
    /// ```
    pub fn rest(mut self, settings: crate::rest::Rest) -> Self {
        let inner = self.inner_mut();
        inner.rest = Some(crate::rest::RestTable::new(settings));
        inner.resolve_rest();
        self
    }

    /// Replaces the settings (of every service added without settings of its own; the
    /// interceptors wrap every service).
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        let inner = self.inner_mut();
        inner.config = config;
        inner.resolve_chains();
        self
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Every routed procedure, `/package.Service/Method`.
    pub fn procedures(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.routes.routes.keys().map(|k| &**k)
    }

    /// The registered services with their descriptor sets, for reflection.
    pub fn services(&self) -> impl Iterator<Item = (&'static str, Option<&'static [u8]>)> + '_ {
        self.inner.services.iter().copied()
    }

    /// Handles one HTTP request.
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<Body>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let remote = request.extensions().get::<RemoteAddr>().map(|a| a.0);
        let certificates = request
            .extensions()
            .get::<PeerCertificates>()
            .map(|c| c.0.clone());
        route(self.inner.clone(), request, remote, certificates).await
    }

    /// Handles one HTTP request from a connection whose remote address and TLS certificates
    /// the caller knows: the built-in server's path, which spares two allocations per call
    /// compared with carrying them in the request's extensions.
    pub(crate) fn into_call<B>(
        self,
        request: http::Request<B>,
        remote: SocketAddr,
        certificates: Option<Arc<[bytes::Bytes]>>,
    ) -> impl Future<Output = http::Response<Body>> + Send + 'static
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        route(self.inner, request, Some(remote), certificates)
    }
}

/// The call's future, picked by HTTP version. Not an `async fn`, and owning the router: each
/// layer of async fn keeps its arguments for the whole call, and hyper copies the whole
/// future when it spawns the call, so the HTTP/2 path is the dispatch future itself.
fn route<B>(
    inner: Arc<RouterInner>,
    request: http::Request<B>,
    remote: Option<SocketAddr>,
    certificates: Option<Arc<[bytes::Bytes]>>,
) -> impl Future<Output = http::Response<Body>> + Send + 'static
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    // Wrapped at once: a body left unread by an early answer is drained, so an HTTP/1.1 peer
    // still sending can read the answer and reuse the connection. Over HTTP/2, where streams
    // are independent, that happens in the background.
    let reader = BodyReader::new(box_body(body), Side::Server);
    if parts.version >= http::Version::HTTP_2 {
        Either::Left(inner.dispatch(parts, reader, remote, certificates))
    } else {
        // Over HTTP/1 before the reply (see `UnreadBody`); boxed, to keep the HTTP/2 future
        // as small as it is.
        Either::Right(Box::pin(inner.handle_http1(
            parts,
            reader,
            remote,
            certificates,
        )))
    }
}

/// Who is calling: the protocol, and the connection's address and verified certificates.
fn peer_of(
    protocol: crate::Protocol,
    remote: Option<SocketAddr>,
    certificates: Option<Arc<[bytes::Bytes]>>,
) -> Peer {
    let peer = Peer::new(protocol, remote);
    match certificates {
        Some(certificates) => peer.with_certificates(certificates),
        None => peer,
    }
}

impl RouterInner {
    /// Builds the REST routes again from every routed method (in procedure order, so a
    /// conflict is reported the same way each time).
    fn resolve_rest(&mut self) {
        let Some(rest) = &self.rest else {
            return;
        };
        let mut table = crate::rest::RestTable::new(rest.settings.clone());
        let mut procedures: Vec<&Box<str>> = self.routes.routes.keys().collect();
        procedures.sort();
        for procedure in procedures {
            table.add(procedure, &self.routes.routes[procedure].spec);
        }
        self.rest = Some(table);
    }

    fn resolve_chains(&mut self) {
        for route in self.routes.routes.values_mut() {
            route.resolve_chain(&self.config);
        }
    }

    /// An HTTP/1 call: the reply waits until a request body left unread is settled, and says
    /// `Connection: close` when it could not be drained.
    async fn handle_http1(
        self: Arc<Self>,
        parts: http::request::Parts,
        reader: BodyReader,
        remote: Option<SocketAddr>,
        certificates: Option<Arc<[bytes::Bytes]>>,
    ) -> http::Response<Body> {
        let unread = UnreadBody::default();
        let reader = reader.with_unread(unread.clone());
        let mut response = self.dispatch(parts, reader, remote, certificates).await;
        if !unread.settle().await {
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        response
    }

    async fn dispatch(
        self: Arc<Self>,
        parts: http::request::Parts,
        reader: BodyReader,
        remote: Option<SocketAddr>,
        certificates: Option<Arc<[bytes::Bytes]>>,
    ) -> http::Response<Body> {
        let protocol = classify(&parts);
        let Some(route) = self.routes.routes.get(parts.uri.path()) else {
            if let Some(rest) = &self.rest {
                if crate::rest::is_rest_request(&parts) {
                    // Boxed: inline, its state would grow every call's future (hyper moves
                    // it when it spawns the call), REST or not.
                    return Box::pin(self.dispatch_rest(rest, parts, reader, remote, certificates))
                        .await;
                }
            }
            return protocol.unimplemented(&parts);
        };
        let config = route.config.as_deref().unwrap_or(&self.config);
        let reader = reader.with_min_rate(config.min_request_rate);
        let (exchange, source) =
            match ServerExchange::start(protocol, &parts, &route.spec, reader, config) {
                Ok(started) => started,
                Err(response) => return *response,
            };
        let peer = peer_of(exchange.protocol(), remote, certificates);
        let deadline = exchange
            .timeout()
            .and_then(|t| Instant::now().checked_add(t));
        let call = ServerCall {
            spec: route.spec.clone(),
            version: parts.version,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            extensions: parts.extensions,
            peer,
            deadline,
            codec: exchange.codec(),
            source,
            chain: route.chain.clone(),
            message_compression: exchange.message_compression().clone(),
        };
        let reply = route.handler.call(call).await;
        exchange.respond(reply, config)
    }

    /// A REST call: the route its path and HTTP method find, then the method's handler.
    async fn dispatch_rest(
        &self,
        rest: &crate::rest::RestTable,
        parts: http::request::Parts,
        reader: BodyReader,
        remote: Option<SocketAddr>,
        certificates: Option<Arc<[bytes::Bytes]>>,
    ) -> http::Response<Body> {
        let config = &self.config;
        let reader = reader.with_min_rate(config.min_request_rate);
        let (call, source) =
            match crate::rest::dispatch(rest, &parts, reader, config.read_max_bytes) {
                Ok(dispatched) => dispatched,
                Err(refusal) => return *refusal,
            };
        let Some(route) = self.routes.routes.get(&*call.route.procedure) else {
            return crate::rest::not_found();
        };
        let peer = peer_of(crate::Protocol::Rest, remote, certificates);
        let server_call = ServerCall {
            spec: route.spec.clone(),
            version: parts.version,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            extensions: parts.extensions,
            peer,
            deadline: None,
            codec: crate::codec::Codec::Proto,
            source,
            chain: route.chain.clone(),
            message_compression: crate::compression::MessageCompression::default(),
        };
        let reply = route.handler.call(server_call).await;
        call.respond(reply).await
    }
}

impl<B> tower_service::Service<http::Request<B>> for Router
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let router = self.clone();
        Box::pin(async move { Ok(router.handle(request).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Idempotency, StreamType};

    struct Named(&'static str);

    impl RpcService for Named {
        fn name(&self) -> &'static str {
            self.0
        }

        fn register(self, routes: &mut Routes) {
            let spec = Spec::new(
                format!("/{}/Get", self.0),
                StreamType::Unary,
                Idempotency::Unknown,
            );
            routes.unary(spec, |_request: Request<()>| async move {
                Ok(Response::new(()))
            });
        }
    }

    #[test]
    fn configuring_a_clone_leaves_the_original_as_it_was() {
        let original = Router::new().add_service(Named("a.v1.A"));
        let served = original.clone();
        let changed = original
            .clone()
            .add_service(Named("b.v1.B"))
            .with_config(ServerConfig::default().read_max_bytes(1024));
        assert_eq!(changed.procedures().count(), 2);
        assert_eq!(changed.config().read_max_bytes, 1024);
        assert_eq!(served.procedures().collect::<Vec<_>>(), ["/a.v1.A/Get"]);
        assert_ne!(served.config().read_max_bytes, 1024);
        assert_eq!(original.procedures().count(), 1);
    }
}
