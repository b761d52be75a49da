//! Client-side load balancing over several endpoints of one service.

use std::collections::HashSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use http::Uri;
use http::uri::{Authority, Scheme};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::Change;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower_service::Service;

use super::HttpTransport;
use crate::Error;
use crate::body::{Body, BoxError};
use crate::interceptor::BoxFuture;

/// How long an endpoint is left alone after its first failure.
const FIRST_EJECTION: Duration = Duration::from_secs(1);
/// The longest an endpoint is left alone.
const LONGEST_EJECTION: Duration = Duration::from_secs(30);
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
/// no calls for a while (1 s, doubling on each failure in a row up to 30 s), then takes one
/// call again as a probe; a success puts it back in full. While every endpoint is ejected,
/// calls wait for the first to come back, within their deadline. Combined with a
/// [`RetryPolicy`](super::RetryPolicy), a call that fails on an endpoint going away is tried
/// again on another.
///
/// The URL given to the [`Client`](super::Client) keeps its path; its scheme and host are
/// replaced by the endpoint's.
///
/// ```no_run
/// # async fn example() -> Result<(), switchboard::Error> {
/// use std::time::Duration;
/// use switchboard::client::{Balanced, Client, HttpTransport};
///
/// let endpoints = Balanced::builder(HttpTransport::h2c())
///     .endpoints(["http://10.0.0.1:8080", "http://10.0.0.2:8080"])?
///     .dns("http://eliza.internal:8080", Duration::from_secs(30))?
///     .build();
/// let client = Client::new("http://eliza", endpoints)?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
///
/// Limits, for now: DNS-resolved endpoints are addressed by IP, so over TLS the server's
/// certificate must name the IP (static `https://` URLs with host names verify as usual);
/// ejected endpoints are probed with a real call, not `grpc.health.v1`.
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
    /// connection pool is shared, one connection per endpoint).
    pub fn builder(transport: HttpTransport) -> BalancedBuilder {
        let (changes, receiver) = mpsc::unbounded_channel();
        BalancedBuilder {
            transport,
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
pub struct BalancedBuilder {
    transport: HttpTransport,
    changes: mpsc::UnboundedSender<Change<String, Balanceable>>,
    receiver: mpsc::UnboundedReceiver<Change<String, Balanceable>>,
    tasks: Vec<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for BalancedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedBuilder").finish_non_exhaustive()
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

/// One endpoint as the balancer takes it: the transport aimed at one host, its load the
/// number of calls in flight.
fn balanceable(transport: &HttpTransport, scheme: Scheme, authority: Authority) -> Balanceable {
    PendingRequests::new(
        Endpoint::new(transport.clone(), scheme, authority),
        CompleteOnResponse::default(),
    )
}

impl BalancedBuilder {
    fn insert(&self, key: String, scheme: Scheme, authority: Authority) {
        let endpoint = balanceable(&self.transport, scheme, authority);
        let _ = self.changes.send(Change::Insert(key, endpoint));
    }

    /// Fixed endpoints, as URLs (`http://10.0.0.1:8080`).
    pub fn endpoints<'u>(self, urls: impl IntoIterator<Item = &'u str>) -> Result<Self, Error> {
        for url in urls {
            let (scheme, authority) = base_of(url)?;
            self.insert(format!("{scheme}://{authority}"), scheme, authority);
        }
        Ok(self)
    }

    /// Every address the host of `url` resolves to, resolved again every `every`: addresses
    /// that appear are added, addresses that disappear are removed (their calls in flight
    /// finish).
    pub fn dns(mut self, url: &str, every: Duration) -> Result<Self, Error> {
        let (scheme, authority) = base_of(url)?;
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == Scheme::HTTPS { 443 } else { 80 });
        let host = authority.host().to_owned();
        let transport = self.transport.clone();
        let changes = self.changes.clone();
        let every = every.max(Duration::from_millis(100));
        self.tasks.push(Box::pin(async move {
            let mut known: HashSet<std::net::SocketAddr> = HashSet::new();
            loop {
                if let Ok(addresses) = tokio::net::lookup_host((host.as_str(), port)).await {
                    let now: HashSet<_> = addresses.collect();
                    for gone in known.difference(&now) {
                        let _ = changes.send(Change::Remove(format!("{scheme}://{gone}")));
                    }
                    for new in now.difference(&known) {
                        let Ok(authority) = Authority::try_from(new.to_string()) else {
                            continue;
                        };
                        let insert = Change::Insert(
                            format!("{scheme}://{new}"),
                            balanceable(&transport, scheme.clone(), authority),
                        );
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
        let transport = self.transport.clone();
        let sender = self.changes.clone();
        self.tasks.push(Box::pin(async move {
            let mut changes = std::pin::pin!(changes);
            while let Some(change) = std::future::poll_fn(|cx| changes.as_mut().poll_next(cx)).await
            {
                let change = match change {
                    Change::Remove(key) => Change::Remove(key),
                    Change::Insert(key, url) => match base_of(&url) {
                        Ok((scheme, authority)) => {
                            Change::Insert(key, balanceable(&transport, scheme, authority))
                        }
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

    /// The transport. Must run inside a tokio runtime: the balancer and the discovery run in
    /// tasks of their own.
    pub fn build(self) -> Balanced {
        let mut receiver = self.receiver;
        let discover: Changes = Box::pin(futures_util::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx).map(|change| change.map(Ok))
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

/// An endpoint's record of failures: ejected after one, for longer after each in a row.
#[derive(Debug, Default)]
struct Health {
    failures_in_a_row: u32,
    ejected_until: Option<Instant>,
}

impl Health {
    fn failed(&mut self) {
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        let doublings = self.failures_in_a_row.saturating_sub(1).min(5);
        let ejection = (FIRST_EJECTION * 2u32.pow(doublings)).min(LONGEST_EJECTION);
        self.ejected_until = Some(Instant::now() + ejection);
    }

    fn succeeded(&mut self) {
        self.failures_in_a_row = 0;
        self.ejected_until = None;
    }
}

/// One endpoint: the shared transport, aimed at one host.
struct Endpoint {
    transport: HttpTransport,
    scheme: Scheme,
    authority: Authority,
    health: Arc<Mutex<Health>>,
    /// Wakes the balancer when an ejection ends.
    wake_at: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Endpoint {
    fn new(transport: HttpTransport, scheme: Scheme, authority: Authority) -> Self {
        Endpoint {
            transport,
            scheme,
            authority,
            health: Arc::default(),
            wake_at: None,
        }
    }
}

impl Service<http::Request<Body>> for Endpoint {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let ejected_until = self
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ejected_until;
        if let Some(until) = ejected_until {
            if Instant::now() < until {
                let sleep = self
                    .wake_at
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
                sleep.as_mut().reset(until);
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        }
        self.wake_at = None;
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
        let response = self.transport.call(request);
        Box::pin(async move {
            let result = response.await;
            let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
            match &result {
                Ok(_) => health.succeeded(),
                Err(_) => health.failed(),
            }
            result.map_err(Into::into)
        })
    }
}

use std::future::Future as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejection_doubles_with_each_failure_in_a_row_up_to_the_cap() {
        let mut health = Health::default();
        let start = Instant::now();
        let mut lengths = Vec::new();
        for _ in 0..8 {
            health.failed();
            lengths.push((health.ejected_until.unwrap() - start).as_secs());
        }
        assert_eq!(&lengths[..6], &[1, 2, 4, 8, 16, 30]);
        assert_eq!(lengths[7], 30);
        health.succeeded();
        assert_eq!(health.ejected_until, None);
        assert_eq!(health.failures_in_a_row, 0);
    }

    #[test]
    fn endpoint_urls_need_a_scheme_and_a_host() {
        assert!(base_of("http://10.0.0.1:8080/ignored").is_ok());
        assert!(base_of("10.0.0.1:8080").is_err());
        assert!(base_of("/path").is_err());
    }
}
