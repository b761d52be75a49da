//! Client-side load balancing over several endpoints of one service.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use http::Uri;
use http::uri::{Authority, Scheme};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::Change;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower_service::Service;

use super::{Client, ClientConfig, HttpTransport};
use crate::body::{Body, BoxError};
use crate::interceptor::BoxFuture;
use crate::{Code, Error, Idempotency, Protocol, Request, Spec, StreamType};

/// How long an endpoint is left alone after its first failure, unless
/// [`BalancedBuilder::ejection`] says otherwise.
const FIRST_EJECTION: Duration = Duration::from_secs(1);
/// The longest an endpoint is left alone, unless [`BalancedBuilder::ejection`] says otherwise.
const LONGEST_EJECTION: Duration = Duration::from_secs(30);
/// The shortest first ejection [`BalancedBuilder::ejection`] accepts: shorter would probe a
/// failing endpoint in a busy loop.
const SHORTEST_EJECTION: Duration = Duration::from_millis(10);
/// How long a health check may take before the endpoint counts as unhealthy.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// The health check's method.
const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
/// `grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: i32 = 1;
/// Requests waiting for an endpoint (tower's `Buffer` in front of the balancer).
const QUEUE: usize = 1024;

type Response = http::Response<hyper::body::Incoming>;
type Changes = Pin<Box<dyn Stream<Item = Result<Change<String, Balanceable>, Infallible>> + Send>>;
type Balanceable = PendingRequests<Endpoint, CompleteOnResponse>;

/// A transport that spreads calls over the endpoints of a service.
///
/// [`Balanced`] is a [`Transport`](super::Transport): give it to [`Client::new`](super::Client::new)
/// in place of one connection, and every call goes to one of the service's endpoints, picked
/// by tower's power-of-two-choices balancer (`tower::balance::p2c`): two endpoints at random,
/// the one with fewer requests in flight wins. The endpoints come from a static list, a DNS
/// name resolved again on a schedule, or a stream of changes of your own (any service
/// discovery), through tower's `Discover`.
///
/// An endpoint whose transport fails (refused or broken connections) is **ejected**: it takes
/// no calls for a while (1 s, doubling on each failure in a row up to 30 s; see
/// [`BalancedBuilder::ejection`]), then takes one call again as a probe; a success puts it
/// back in full. With [`BalancedBuilder::health_check`], the probe is a `grpc.health.v1`
/// health check instead of a real call, and an endpoint is only put back when its server
/// says it is serving. While every endpoint is ejected, calls wait for the first to come
/// back, within their deadline. Combined with a [`RetryPolicy`](super::RetryPolicy), a call
/// that fails on an endpoint going away is tried again on another.
///
/// The URL given to the [`Client`](super::Client) keeps its path; its scheme and host are
/// replaced by the endpoint's. Endpoints found by [DNS](BalancedBuilder::dns) keep the host
/// name (each connects to its own address), so over TLS the server's certificate is verified
/// against the name, as for a single server.
///
/// ```no_run
/// # async fn example() -> Result<(), switchboard::Error> {
/// use std::time::Duration;
/// use switchboard::Protocol;
/// use switchboard::client::{Balanced, Client, HttpTransport};
///
/// let endpoints = Balanced::builder(HttpTransport::h2c())
///     .endpoints(["http://10.0.0.1:8080", "http://10.0.0.2:8080"])?
///     .dns("http://eliza.internal:8080", Duration::from_secs(30))?
///     .health_check("connectrpc.eliza.v1.ElizaService", Protocol::Grpc)
///     .build();
/// let client = Client::new("http://eliza", endpoints)?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Balanced {
    buffer: Buffer<http::Request<Body>, BoxFuture<'static, Result<Response, BoxError>>>,
}

impl std::fmt::Debug for Balanced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balanced").finish_non_exhaustive()
    }
}

impl Balanced {
    /// Starts describing the endpoints; `transport` carries the calls to each of them (its
    /// connection pool is shared, one connection per endpoint; endpoints found by DNS get a
    /// pool of their own with the same settings).
    pub fn builder(transport: HttpTransport) -> BalancedBuilder {
        let (changes, receiver) = mpsc::unbounded_channel();
        BalancedBuilder {
            transport,
            ejection: Ejection::default(),
            health_check: None,
            changes,
            receiver,
            tasks: Vec::new(),
        }
    }
}

impl Service<http::Request<Body>> for Balanced {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.buffer.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(self.buffer.call(request))
    }
}

/// Builds a [`Balanced`] transport from the sources of its endpoints.
///
/// Its settings ([`ejection`](BalancedBuilder::ejection),
/// [`health_check`](BalancedBuilder::health_check)) apply to every endpoint, whichever order
/// the methods are called in.
pub struct BalancedBuilder {
    transport: HttpTransport,
    ejection: Ejection,
    health_check: Option<Arc<HealthCheck>>,
    changes: mpsc::UnboundedSender<Change<String, Target>>,
    receiver: mpsc::UnboundedReceiver<Change<String, Target>>,
    tasks: Vec<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for BalancedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedBuilder")
            .field("ejection", &self.ejection)
            .field("health_check", &self.health_check)
            .finish_non_exhaustive()
    }
}

/// The scheme and host of an endpoint URL (`http://host:port`); its path is ignored.
fn base_of(url: &str) -> Result<(Scheme, Authority), Error> {
    let uri: Uri = url
        .parse()
        .map_err(|e| Error::invalid_argument(format!("invalid endpoint URL {url:?}: {e}")))?;
    match (uri.scheme().cloned(), uri.authority().cloned()) {
        (Some(scheme), Some(authority)) => Ok((scheme, authority)),
        _ => Err(Error::invalid_argument(format!(
            "endpoint URL {url:?} needs a scheme and a host"
        ))),
    }
}

/// An endpoint as its source describes it; [`BalancedBuilder::build`] makes it a
/// [`Balanceable`] with the builder's final settings.
struct Target {
    scheme: Scheme,
    /// What requests name (the Host header, the TLS server name).
    authority: Authority,
    /// Where to connect, when not where `authority` resolves to (an address of a DNS name).
    address: Option<SocketAddr>,
}

impl Target {
    fn of_url(url: &str) -> Result<Self, Error> {
        let (scheme, authority) = base_of(url)?;
        Ok(Target {
            scheme,
            authority,
            address: None,
        })
    }
}

/// What every endpoint of one [`Balanced`] shares, to make endpoints from [`Target`]s.
struct Endpoints {
    transport: HttpTransport,
    ejection: Ejection,
    health_check: Option<Arc<HealthCheck>>,
}

impl Endpoints {
    /// One endpoint as the balancer takes it: the transport aimed at one host, its load the
    /// number of calls in flight.
    fn balanceable(&self, target: Target) -> Balanceable {
        let (transport, authority) = match target.address {
            None => (self.transport.clone(), target.authority),
            Some(address) => match self.transport.pinned_to(address) {
                Some(pinned) => (pinned, target.authority),
                // A hyper client given by the caller cannot be built again around one
                // address: the endpoint is addressed by IP.
                None => {
                    let by_ip = Authority::try_from(address.to_string());
                    (self.transport.clone(), by_ip.unwrap_or(target.authority))
                }
            },
        };
        let endpoint = Endpoint::new(
            transport,
            target.scheme,
            authority,
            self.ejection,
            self.health_check.clone(),
        );
        PendingRequests::new(endpoint, CompleteOnResponse::default())
    }
}

impl BalancedBuilder {
    /// Fixed endpoints, as URLs (`http://10.0.0.1:8080`).
    pub fn endpoints<'u>(self, urls: impl IntoIterator<Item = &'u str>) -> Result<Self, Error> {
        for url in urls {
            let target = Target::of_url(url)?;
            let key = format!("{}://{}", target.scheme, target.authority);
            let _ = self.changes.send(Change::Insert(key, target));
        }
        Ok(self)
    }

    /// Every address the host of `url` resolves to, resolved again every `every` (at least
    /// 100 ms): addresses that appear are added, addresses that disappear are removed (their
    /// calls in flight finish).
    ///
    /// Each address is an endpoint of its own, connecting to that address, but its requests
    /// still name the host of `url`: the Host header (`:authority`) carries it, and over TLS
    /// it is the server name sent and the name the certificate is verified against, so a
    /// certificate for `eliza.internal` works without naming every replica's IP. Each such
    /// endpoint has a connection pool of its own, with the settings (protocols, TLS,
    /// keepalive) of the builder's transport. A transport made with
    /// [`HttpTransport::from_client`] cannot be rebuilt that way: its DNS endpoints are
    /// addressed by IP, so over TLS the certificate must name the IPs.
    pub fn dns(mut self, url: &str, every: Duration) -> Result<Self, Error> {
        let (scheme, authority) = base_of(url)?;
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == Scheme::HTTPS { 443 } else { 80 });
        let changes = self.changes.clone();
        let every = every.max(Duration::from_millis(100));
        self.tasks.push(Box::pin(async move {
            let host = authority.host();
            let mut known: HashSet<SocketAddr> = HashSet::new();
            loop {
                if let Ok(addresses) = tokio::net::lookup_host((host, port)).await {
                    let now: HashSet<_> = addresses.collect();
                    for gone in known.difference(&now) {
                        let _ = changes.send(Change::Remove(format!("{scheme}://{gone}")));
                    }
                    for new in now.difference(&known) {
                        let target = Target {
                            scheme: scheme.clone(),
                            authority: authority.clone(),
                            address: Some(*new),
                        };
                        let insert = Change::Insert(format!("{scheme}://{new}"), target);
                        if changes.send(insert).is_err() {
                            return; // the balancer is gone
                        }
                    }
                    known = now;
                }
                if changes.is_closed() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }));
        Ok(self)
    }

    /// Endpoints from a discovery service of your own: each item adds an endpoint under a key
    /// (`Change::Insert(key, url)`) or removes one (`Change::Remove(key)`).
    pub fn discover<S>(mut self, changes: S) -> Self
    where
        S: Stream<Item = Change<String, String>> + Send + 'static,
    {
        let sender = self.changes.clone();
        self.tasks.push(Box::pin(async move {
            let mut changes = std::pin::pin!(changes);
            while let Some(change) = std::future::poll_fn(|cx| changes.as_mut().poll_next(cx)).await
            {
                let change = match change {
                    Change::Remove(key) => Change::Remove(key),
                    Change::Insert(key, url) => match Target::of_url(&url) {
                        Ok(target) => Change::Insert(key, target),
                        Err(_) => continue,
                    },
                };
                if sender.send(change).is_err() {
                    return;
                }
            }
        }));
        self
    }

    /// How long an endpoint whose transport failed takes no calls: `first` after one failure,
    /// doubling with each failure in a row (a failed probe included), never more than
    /// `longest` (defaults: 1 s and 30 s). Shorter ejections find a recovered replica sooner
    /// and cost more probes of one still down. `first` is at least 10 ms, and `longest` at
    /// least `first`.
    pub fn ejection(mut self, first: Duration, longest: Duration) -> Self {
        let first = first.max(SHORTEST_EJECTION);
        self.ejection = Ejection {
            first,
            longest: longest.max(first),
        };
        self
    }

    /// Probe endpoints with the gRPC health checking protocol (`grpc.health.v1.Health/Check`)
    /// before they take calls: an endpoint that is new or whose [ejection](Self::ejection) has
    /// ended takes no call until its server answers `SERVING` for `service`, so a replica that
    /// is up but not ready (starting, draining, failing a dependency) gets no traffic. Any
    /// other answer (`NOT_SERVING`, `not_found` for a service the server does not know, a
    /// refused connection, no answer within 1 s) ejects the endpoint again, for longer each
    /// time in a row. Off by default: an ejected endpoint is then probed with one real call.
    ///
    /// `service` is the fully-qualified name of the service the calls go to
    /// (`"connectrpc.eliza.v1.ElizaService"`), or `""` for the server as a whole. Like
    /// grpc-go's client-side health checking, a server without the health service (answering
    /// `unimplemented`) is taken as healthy, so turning this on never locks out servers that
    /// do not implement it.
    ///
    /// `protocol` is the protocol of the check, made with a [`Client`] over the endpoint's own
    /// transport (and its connection). [`Protocol::Grpc`] is the one every implementation of
    /// the health service answers (grpc-go, grpc-java, tonic, connect-go, switchboard), but it
    /// needs HTTP/2: choose it with [`HttpTransport::h2c`] or TLS offering HTTP/2. Over
    /// [`HttpTransport::http1`] a gRPC check always fails, so use [`Protocol::Connect`]
    /// (connect-go and switchboard servers answer it) or [`Protocol::GrpcWeb`].
    ///
    /// Only endpoints out of rotation are checked: a serving endpoint is not polled on a
    /// schedule, and one that turns `NOT_SERVING` while its connections work keeps taking
    /// calls until a transport failure ejects it.
    pub fn health_check(mut self, service: &str, protocol: Protocol) -> Self {
        self.health_check = Some(Arc::new(HealthCheck {
            service: service.to_owned(),
            protocol,
        }));
        self
    }

    /// The transport. Must run inside a tokio runtime: the balancer, the discovery and the
    /// health checks run in tasks of their own.
    pub fn build(self) -> Balanced {
        let endpoints = Endpoints {
            transport: self.transport,
            ejection: self.ejection,
            health_check: self.health_check,
        };
        let mut receiver = self.receiver;
        let discover: Changes = Box::pin(futures_util::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx).map(|change| {
                change.map(|change| {
                    Ok(match change {
                        Change::Insert(key, target) => {
                            Change::Insert(key, endpoints.balanceable(target))
                        }
                        Change::Remove(key) => Change::Remove(key),
                    })
                })
            })
        }));
        for task in self.tasks {
            tokio::spawn(task);
        }
        let balance = Balance::new(discover);
        let boxed = MapFuture { inner: balance };
        Balanced {
            buffer: Buffer::new(boxed, QUEUE),
        }
    }
}

/// The balancer with its future boxed (a nameable type for the buffer).
struct MapFuture<S> {
    inner: S,
}

impl<S> Service<http::Request<Body>> for MapFuture<S>
where
    S: Service<http::Request<Body>, Response = Response, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(self.inner.call(request))
    }
}

/// How long endpoints are ejected (see [`BalancedBuilder::ejection`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ejection {
    first: Duration,
    longest: Duration,
}

impl Default for Ejection {
    fn default() -> Self {
        Ejection {
            first: FIRST_EJECTION,
            longest: LONGEST_EJECTION,
        }
    }
}

impl Ejection {
    /// The ejection after `failures_in_a_row` failures (at least one): `first`, doubled for
    /// each failure after the first, up to `longest`.
    fn after(self, failures_in_a_row: u32) -> Duration {
        let doublings = failures_in_a_row.saturating_sub(1).min(31);
        self.first.saturating_mul(1 << doublings).min(self.longest)
    }
}

/// What [`BalancedBuilder::health_check`] asks.
#[derive(Debug)]
struct HealthCheck {
    service: String,
    protocol: Protocol,
}

/// `grpc.health.v1.HealthCheckRequest`. Defined here rather than taken from
/// `switchboard-health`, which depends on this crate.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; `status` is the `ServingStatus` enum (an int32 on
/// the wire).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// Asks the server at `base` over `transport` whether it serves `check.service`: `true` for
/// `SERVING`, or for a server without the health service (`unimplemented`).
async fn healthy(transport: HttpTransport, base: String, check: Arc<HealthCheck>) -> bool {
    let config = ClientConfig::default()
        .protocol(check.protocol)
        .timeout(HEALTH_CHECK_TIMEOUT)
        // A health check is not made on behalf of the call that happened to start it.
        .propagate_deadline(false);
    let answer = async {
        let client = Client::new(&base, transport)?.with_config(config);
        let spec = Spec::new(HEALTH_CHECK, StreamType::Unary, Idempotency::Unknown);
        let request = Request::new(HealthCheckRequest {
            service: check.service.clone(),
        });
        client
            .unary::<HealthCheckRequest, HealthCheckResponse>(spec, request)
            .await
    }
    .await;
    match answer {
        Ok(response) if response.message().status == SERVING => true,
        Ok(response) => {
            let status = response.message().status;
            tracing::debug!(%base, service = %check.service, status, "endpoint not serving");
            false
        }
        Err(error) if error.code() == Code::Unimplemented => {
            tracing::debug!(
                %base,
                "endpoint has no health service (unimplemented): taken as healthy"
            );
            true
        }
        Err(error) => {
            tracing::debug!(%base, %error, "endpoint health check failed");
            false
        }
    }
}

/// An endpoint's record of failures: ejected after one, for longer after each in a row.
#[derive(Debug, Default)]
struct Health {
    failures_in_a_row: u32,
    /// While `Some`, the endpoint is out of rotation: before that instant it takes nothing;
    /// after it, its next call (or its health check, when checks are on) decides whether it
    /// is back.
    ejected_until: Option<Instant>,
}

impl Health {
    /// A new endpoint that must pass a health check before its first call.
    fn unchecked() -> Self {
        Health {
            failures_in_a_row: 0,
            ejected_until: Some(Instant::now()),
        }
    }

    fn failed(&mut self, ejection: Ejection) {
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        self.ejected_until = Some(Instant::now() + ejection.after(self.failures_in_a_row));
    }

    fn succeeded(&mut self) {
        self.failures_in_a_row = 0;
        self.ejected_until = None;
    }
}

/// One endpoint: a transport aimed at one host.
struct Endpoint {
    transport: HttpTransport,
    scheme: Scheme,
    authority: Authority,
    health: Arc<Mutex<Health>>,
    ejection: Ejection,
    health_check: Option<Arc<HealthCheck>>,
    /// Wakes the balancer when an ejection ends.
    wake_at: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The health check under way; its completion wakes the balancer.
    check: Option<JoinHandle<bool>>,
}

impl Endpoint {
    fn new(
        transport: HttpTransport,
        scheme: Scheme,
        authority: Authority,
        ejection: Ejection,
        health_check: Option<Arc<HealthCheck>>,
    ) -> Self {
        let health = if health_check.is_some() {
            Health::unchecked()
        } else {
            Health::default()
        };
        Endpoint {
            transport,
            scheme,
            authority,
            health: Arc::new(Mutex::new(health)),
            ejection,
            health_check,
            wake_at: None,
            check: None,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // A removed endpoint needs no answer.
        if let Some(check) = &self.check {
            check.abort();
        }
    }
}

impl Service<http::Request<Body>> for Endpoint {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            if let Some(check) = self.check.as_mut() {
                let Poll::Ready(outcome) = Pin::new(check).poll(cx) else {
                    return Poll::Pending;
                };
                self.check = None;
                let ejection = self.ejection;
                let mut health = self.health();
                match outcome {
                    Ok(true) => health.succeeded(),
                    Ok(false) | Err(_) => health.failed(ejection),
                }
            }
            let ejected_until = self.health().ejected_until;
            let Some(until) = ejected_until else {
                break;
            };
            if Instant::now() < until {
                let sleep = self
                    .wake_at
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
                sleep.as_mut().reset(until);
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            self.wake_at = None;
            // The ejection is over. Without health checks the next call is the probe.
            let Some(health_check) = &self.health_check else {
                break;
            };
            let base = format!("{}://{}", self.scheme, self.authority);
            let check = healthy(self.transport.clone(), base, health_check.clone());
            self.check = Some(tokio::spawn(check));
        }
        self.transport.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
        let health = self.health.clone();
        let ejection = self.ejection;
        let response = self.transport.call(request);
        Box::pin(async move {
            let result = response.await;
            let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
            match &result {
                Ok(_) => health.succeeded(),
                Err(_) => health.failed(ejection),
            }
            result.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejection_doubles_with_each_failure_in_a_row_up_to_the_cap() {
        let mut health = Health::default();
        let start = Instant::now();
        let mut lengths = Vec::new();
        for _ in 0..8 {
            health.failed(Ejection::default());
            lengths.push((health.ejected_until.unwrap() - start).as_secs());
        }
        assert_eq!(&lengths[..6], &[1, 2, 4, 8, 16, 30]);
        assert_eq!(lengths[7], 30);
        health.succeeded();
        assert_eq!(health.ejected_until, None);
        assert_eq!(health.failures_in_a_row, 0);
    }

    #[test]
    fn ejection_lengths_follow_the_builder() {
        let builder = Balanced::builder(HttpTransport::h2c());
        let ms = Duration::from_millis;
        let ejection = builder.ejection(ms(100), ms(350)).ejection;
        let lengths: Vec<_> = (1..=4).map(|n| ejection.after(n)).collect();
        assert_eq!(lengths, [ms(100), ms(200), ms(350), ms(350)]);
        // Many failures in a row neither overflow nor pass the cap.
        assert_eq!(ejection.after(u32::MAX), ms(350));
        // A zero first ejection would probe in a busy loop; a cap below it is raised to it.
        let builder = Balanced::builder(HttpTransport::h2c());
        let ejection = builder.ejection(Duration::ZERO, Duration::ZERO).ejection;
        assert_eq!(ejection.after(1), SHORTEST_EJECTION);
        assert_eq!(ejection.after(5), SHORTEST_EJECTION);
    }

    #[test]
    fn endpoint_urls_need_a_scheme_and_a_host() {
        assert!(base_of("http://10.0.0.1:8080/ignored").is_ok());
        assert!(base_of("10.0.0.1:8080").is_err());
        assert!(base_of("/path").is_err());
    }

    #[test]
    fn health_messages_have_the_wire_format_of_grpc_health_v1() {
        let request = HealthCheckRequest {
            service: "a.B".to_owned(),
        };
        assert_eq!(
            prost::Message::encode_to_vec(&request),
            [0x0a, 3, b'a', b'.', b'B']
        );
        // status = SERVING (1), field 1 varint.
        let response: HealthCheckResponse = prost::Message::decode(&[0x08, 0x01][..]).unwrap();
        assert_eq!(response.status, SERVING);
    }

    /// Whether the endpoint is ready now (polled once, as the balancer would).
    async fn ready(endpoint: &mut Endpoint) -> bool {
        std::future::poll_fn(|cx| Poll::Ready(endpoint.poll_ready(cx).is_ready())).await
    }

    /// An endpoint where nothing listens, with health checks over gRPC and `ejection`.
    fn unreachable_endpoint(ejection: Ejection) -> Endpoint {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let check = HealthCheck {
            service: String::new(),
            protocol: Protocol::Grpc,
        };
        Endpoint::new(
            HttpTransport::h2c(),
            Scheme::HTTP,
            Authority::try_from(format!("127.0.0.1:{port}")).unwrap(),
            ejection,
            Some(Arc::new(check)),
        )
    }

    #[tokio::test]
    async fn a_failed_health_check_ejects_again_for_longer() {
        let ms = Duration::from_millis;
        let mut endpoint = unreachable_endpoint(Ejection {
            first: ms(50),
            longest: ms(1000),
        });
        // New: not ready before its first check; the refused check ejects it.
        assert!(!ready(&mut endpoint).await);
        assert!(endpoint.check.is_some());
        for failures in 1..=3 {
            let start = Instant::now();
            // Waits on the check, then on the ejection, then on the next check.
            tokio::time::timeout(ms(2000), async {
                while endpoint.health().failures_in_a_row < failures {
                    assert!(!ready(&mut endpoint).await);
                    tokio::time::sleep(ms(5)).await;
                }
            })
            .await
            .expect("the check ends");
            let until = endpoint.health().ejected_until.expect("ejected");
            let length = until - start;
            assert!(length >= ms(50) * 2u32.pow(failures - 1), "{length:?}");
        }
    }
}
