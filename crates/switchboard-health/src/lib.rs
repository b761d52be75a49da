//! # switchboard-health
//!
//! The [gRPC health checking protocol] (`grpc.health.v1.Health`) for switchboard servers, so
//! load balancers, Kubernetes gRPC probes, `grpc-health-probe` and client-side health checking
//! can ask whether the server, and each of its services, takes calls. Like every switchboard
//! service it answers Connect, gRPC and gRPC-Web.
//!
//! [`health()`] makes the two halves: a [`HealthReporter`] the application keeps to set
//! statuses, and a [`HealthService`] to mount on a [`Router`](switchboard::server::Router).
//!
//! ```
//! use switchboard_health::ServingStatus;
//!
//! let (reporter, service) = switchboard_health::health();
//! let router = switchboard::server::Router::new().add_service(service);
//! assert!(router.procedures().any(|p| p == "/grpc.health.v1.Health/Check"));
//!
//! // The server as a whole, under the empty name, is SERVING from the start.
//! assert_eq!(reporter.status(""), Some(ServingStatus::Serving));
//!
//! // Report each service by its fully-qualified name; clones share the statuses.
//! let store = reporter.clone();
//! store.set_serving("acme.store.v1.StoreService");
//! assert_eq!(
//!     reporter.status("acme.store.v1.StoreService"),
//!     Some(ServingStatus::Serving)
//! );
//! store.set_not_serving("acme.store.v1.StoreService");
//! assert_eq!(
//!     reporter.status("acme.store.v1.StoreService"),
//!     Some(ServingStatus::NotServing)
//! );
//!
//! // A cleared service is unknown again: Check answers NOT_FOUND, Watch SERVICE_UNKNOWN.
//! store.clear("acme.store.v1.StoreService");
//! assert_eq!(reporter.status("acme.store.v1.StoreService"), None);
//! ```
//!
//! The methods:
//!
//! - `Check` answers with the status of the service asked about, or a `not_found` error for a
//!   service the reporter does not know.
//! - `Watch` sends the current status at once (`SERVICE_UNKNOWN`, not an error, for a service
//!   the reporter does not know), then one message each time that status changes, until the
//!   client ends the call. A status set to the value it already has sends nothing; changes in
//!   quick succession may reach a watcher as only the latest one, as the protocol allows.
//!   Nothing runs in the background: a watch is a stream the server polls, and it is gone
//!   when the client goes away (see [`HealthReporter::watchers`]).
//! - `List` answers with every known status, or a `resource_exhausted` error past
//!   [`MAX_LISTED_SERVICES`].
//!
//! Open `Watch` calls last as long as their clients want, so a server's graceful shutdown
//! would wait for them: call [`HealthReporter::shutdown`] when shutting down to report every
//! service `NOT_SERVING` and end the watches.
//!
//! [gRPC health checking protocol]: https://github.com/grpc/grpc/blob/master/doc/health-checking.md

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use switchboard::server::{Routes, RpcService};
use switchboard::{Code, Error, Request, Response, ResponseStream};
use tokio::sync::watch;

/// Generated messages, service trait, server and client of `grpc.health.v1`.
#[allow(missing_docs)]
pub mod proto {
    switchboard::include_proto!("grpc.health.v1");
}

pub use proto::health_check_response::ServingStatus;
pub use proto::{
    Health, HealthCheckRequest, HealthCheckResponse, HealthClient, HealthListRequest,
    HealthListResponse, HealthServer,
};

/// The fully-qualified name of the health service, `grpc.health.v1.Health`.
pub const SERVICE_NAME: &str = proto::HEALTH_NAME;

/// The most services `List` answers with; past it, `List` fails with `resource_exhausted`
/// (as grpc-go's health server does).
pub const MAX_LISTED_SERVICES: usize = 100;

/// A reporter and the service it feeds: mount the service on a router and keep the reporter
/// to change statuses. The server as a whole (the empty name `""`) starts `SERVING`.
///
/// ```
/// let (reporter, service) = switchboard_health::health();
/// reporter.set_serving("connectrpc.eliza.v1.ElizaService");
/// let router = switchboard::server::Router::new().add_service(service);
/// # let _ = router;
/// ```
pub fn health() -> (HealthReporter, HealthService) {
    let reporter = HealthReporter::new();
    let service = reporter.service();
    (reporter, service)
}

/// What every reporter and service of one [`health()`] pair share.
#[derive(Debug)]
struct State {
    statuses: HashMap<String, ServingStatus>,
    shut_down: bool,
}

/// Sets the statuses a [`HealthService`] reports. Cheap to clone; clones share the statuses.
///
/// Services are named by their fully-qualified protobuf name
/// (`connectrpc.eliza.v1.ElizaService`); the empty name `""` is the server as a whole.
#[derive(Clone)]
pub struct HealthReporter {
    state: Arc<watch::Sender<State>>,
}

impl Default for HealthReporter {
    fn default() -> Self {
        HealthReporter::new()
    }
}

impl fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("HealthReporter")
            .field("statuses", &state.statuses)
            .field("shut_down", &state.shut_down)
            .field("watchers", &self.state.receiver_count())
            .finish()
    }
}

impl HealthReporter {
    /// A reporter with only the server as a whole (`""`) known, `SERVING`. Mount its
    /// [`HealthReporter::service`]; [`health()`] does both at once.
    pub fn new() -> Self {
        let statuses = HashMap::from([(String::new(), ServingStatus::Serving)]);
        let (sender, _) = watch::channel(State {
            statuses,
            shut_down: false,
        });
        HealthReporter {
            state: Arc::new(sender),
        }
    }

    /// A health service answering with this reporter's statuses; mount it with
    /// `Router::add_service`. Every service made from a reporter or its clones reports the
    /// same statuses.
    pub fn service(&self) -> HealthService {
        HealthService {
            state: Arc::clone(&self.state),
        }
    }

    /// Sets the status of `service` (`""` for the server as a whole); open `Watch` calls on it
    /// hear of the change, and of nothing when the status is unchanged. `SERVICE_UNKNOWN`
    /// (which only `Watch` answers with) is the same as [`HealthReporter::clear`]. Ignored
    /// after [`HealthReporter::shutdown`].
    pub fn set_status(&self, service: &str, status: ServingStatus) {
        if status == ServingStatus::ServiceUnknown {
            self.clear(service);
            return;
        }
        self.state.send_if_modified(|state| {
            if state.shut_down {
                return false;
            }
            match state.statuses.get_mut(service) {
                Some(current) if *current == status => false,
                Some(current) => {
                    *current = status;
                    true
                }
                None => {
                    state.statuses.insert(service.to_owned(), status);
                    true
                }
            }
        });
    }

    /// Reports `service` `SERVING`.
    pub fn set_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::Serving);
    }

    /// Reports `service` `NOT_SERVING`.
    pub fn set_not_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::NotServing);
    }

    /// Forgets `service`: `Check` answers `not_found` for it again and open `Watch` calls on it
    /// receive `SERVICE_UNKNOWN`. Ignored after [`HealthReporter::shutdown`].
    pub fn clear(&self, service: &str) {
        self.state
            .send_if_modified(|state| !state.shut_down && state.statuses.remove(service).is_some());
    }

    /// The status of `service`, `None` when it is not known.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        self.state.borrow().statuses.get(service).copied()
    }

    /// How many `Watch` calls are open now. A call is closed as soon as the server drops its
    /// response stream, which it does when the client goes away.
    pub fn watchers(&self) -> usize {
        self.state.receiver_count()
    }

    /// For a server shutting down: reports every known service `NOT_SERVING`, ends the open
    /// `Watch` calls (each after it has sent `NOT_SERVING`, with an `unavailable` error) so a
    /// graceful shutdown need not wait for them, and ignores every later status change. New
    /// `Watch` calls end the same way after their first message. There is no way back.
    pub fn shutdown(&self) {
        self.state.send_modify(|state| {
            state.shut_down = true;
            state
                .statuses
                .values_mut()
                .for_each(|status| *status = ServingStatus::NotServing);
        });
    }
}

/// The `grpc.health.v1.Health` service, answering with the statuses of the
/// [`HealthReporter`] it was made from. Mount it with `Router::add_service` (it is an
/// [`RpcService`]) or wrap it in a [`HealthServer`] yourself. Cheap to clone.
#[derive(Clone)]
pub struct HealthService {
    state: Arc<watch::Sender<State>>,
}

impl fmt::Debug for HealthService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthService").finish_non_exhaustive()
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status.into(),
    }
}

/// Where a watch stands between messages.
struct Watch {
    updates: watch::Receiver<State>,
    service: String,
    /// What the client was last sent; `None` before the first message.
    sent: Option<ServingStatus>,
    done: bool,
}

impl Watch {
    /// The next message: the status once it differs from the last one sent, or the end.
    async fn next(mut self) -> Option<(Result<HealthCheckResponse, Error>, Watch)> {
        loop {
            if self.done {
                return None;
            }
            let (status, shut_down) = {
                let state = self.updates.borrow_and_update();
                let status = state.statuses.get(&self.service).copied();
                (
                    status.unwrap_or(ServingStatus::ServiceUnknown),
                    state.shut_down,
                )
            };
            if self.sent != Some(status) {
                self.sent = Some(status);
                return Some((Ok(response(status)), self));
            }
            if shut_down {
                self.done = true;
                let error = Error::new(Code::Unavailable, "the server is shutting down");
                return Some((Err(error), self));
            }
            if self.updates.changed().await.is_err() {
                // Every reporter and service is gone: nothing can change any more.
                return None;
            }
        }
    }
}

impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Error> {
        let service = &request.message().service;
        let status = self.state.borrow().statuses.get(service).copied();
        match status {
            Some(status) => Ok(Response::new(response(status))),
            None => Err(Error::new(
                Code::NotFound,
                format!("unknown service {service:?}"),
            )),
        }
    }

    async fn list(
        &self,
        _request: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Error> {
        let state = self.state.borrow();
        if state.statuses.len() > MAX_LISTED_SERVICES {
            return Err(Error::resource_exhausted(format!(
                "{} services are more than the {MAX_LISTED_SERVICES} List answers with",
                state.statuses.len()
            )));
        }
        let statuses = state
            .statuses
            .iter()
            .map(|(name, status)| (name.clone(), response(*status)))
            .collect();
        Ok(Response::new(HealthListResponse { statuses }))
    }

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<ResponseStream<HealthCheckResponse>>, Error> {
        let watch = Watch {
            updates: self.state.subscribe(),
            service: request.into_message().service,
            sent: None,
            done: false,
        };
        let stream = futures_util::stream::unfold(watch, Watch::next);
        Ok(Response::new(Box::pin(stream)))
    }
}

impl RpcService for HealthService {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn file_descriptor_set(&self) -> Option<&'static [u8]> {
        Some(proto::FILE_DESCRIPTOR_SET)
    }

    fn register(self, routes: &mut Routes) {
        HealthServer::new(self).register(routes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    fn request(service: &str) -> Request<HealthCheckRequest> {
        Request::new(HealthCheckRequest {
            service: service.to_owned(),
        })
    }

    async fn watch(service: &HealthService, name: &str) -> ResponseStream<HealthCheckResponse> {
        service.watch(request(name)).await.unwrap().into_message()
    }

    async fn next_status(stream: &mut ResponseStream<HealthCheckResponse>) -> ServingStatus {
        let item = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("a message in time")
            .expect("the stream goes on")
            .expect("a message, not an error");
        item.status()
    }

    /// Whether the stream has nothing to send right now.
    fn quiet(stream: &mut ResponseStream<HealthCheckResponse>) -> bool {
        futures_util::FutureExt::now_or_never(stream.next()).is_none()
    }

    #[tokio::test]
    async fn check_answers_known_services_and_not_found() {
        let (reporter, service) = health();
        let check = |name: &'static str| {
            let service = service.clone();
            async move {
                service
                    .check(request(name))
                    .await
                    .map(|r| r.message().status())
            }
        };
        assert_eq!(check("").await.unwrap(), ServingStatus::Serving);
        assert_eq!(check("a.B").await.unwrap_err().code(), Code::NotFound);
        reporter.set_not_serving("a.B");
        assert_eq!(check("a.B").await.unwrap(), ServingStatus::NotServing);
        reporter.set_status("a.B", ServingStatus::Unknown);
        assert_eq!(check("a.B").await.unwrap(), ServingStatus::Unknown);
        reporter.clear("a.B");
        assert_eq!(check("a.B").await.unwrap_err().code(), Code::NotFound);
        reporter.set_serving("a.B");
        reporter.set_status("a.B", ServingStatus::ServiceUnknown);
        assert_eq!(reporter.status("a.B"), None);
        assert_eq!(check("a.B").await.unwrap_err().code(), Code::NotFound);
    }

    #[tokio::test]
    async fn watch_sends_changes_only() {
        let (reporter, service) = health();
        let mut stream = watch(&service, "a.B").await;
        assert_eq!(reporter.watchers(), 1);
        assert_eq!(
            next_status(&mut stream).await,
            ServingStatus::ServiceUnknown
        );
        assert!(quiet(&mut stream));
        reporter.set_serving("a.B");
        assert_eq!(next_status(&mut stream).await, ServingStatus::Serving);
        reporter.set_serving("a.B");
        reporter.set_serving("other.Service");
        reporter.set_not_serving("");
        assert!(
            quiet(&mut stream),
            "no message for unchanged or other services"
        );
        reporter.set_not_serving("a.B");
        assert_eq!(next_status(&mut stream).await, ServingStatus::NotServing);
        reporter.clear("a.B");
        assert_eq!(
            next_status(&mut stream).await,
            ServingStatus::ServiceUnknown
        );
        // A flip and back before the watcher looks is no change at all.
        reporter.set_serving("a.B");
        reporter.clear("a.B");
        assert!(quiet(&mut stream));
        drop(stream);
        assert_eq!(reporter.watchers(), 0);
    }

    #[tokio::test]
    async fn list_answers_every_status_up_to_the_limit() {
        let (reporter, service) = health();
        reporter.set_not_serving("a.B");
        let list = service
            .list(Request::new(HealthListRequest {}))
            .await
            .unwrap()
            .into_message();
        let mut got: Vec<(String, ServingStatus)> = list
            .statuses
            .into_iter()
            .map(|(name, response)| (name, response.status()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (String::new(), ServingStatus::Serving),
                ("a.B".to_owned(), ServingStatus::NotServing)
            ]
        );
        for i in 0..MAX_LISTED_SERVICES {
            reporter.set_serving(&format!("s.S{i}"));
        }
        let error = service
            .list(Request::new(HealthListRequest {}))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::ResourceExhausted);
    }

    #[tokio::test]
    async fn shutdown_reports_not_serving_and_ends_watches() {
        let (reporter, service) = health();
        reporter.set_serving("a.B");
        let mut known = watch(&service, "a.B").await;
        let mut unknown = watch(&service, "x.Y").await;
        assert_eq!(next_status(&mut known).await, ServingStatus::Serving);
        assert_eq!(
            next_status(&mut unknown).await,
            ServingStatus::ServiceUnknown
        );
        reporter.shutdown();
        assert_eq!(next_status(&mut known).await, ServingStatus::NotServing);
        let end = known.next().await.unwrap().unwrap_err();
        assert_eq!(end.code(), Code::Unavailable);
        assert!(known.next().await.is_none());
        assert_eq!(
            unknown.next().await.unwrap().unwrap_err().code(),
            Code::Unavailable
        );
        assert!(unknown.next().await.is_none());
        reporter.set_serving("a.B");
        assert_eq!(reporter.status("a.B"), Some(ServingStatus::NotServing));
        assert_eq!(reporter.status(""), Some(ServingStatus::NotServing));
        let mut late = watch(&service, "").await;
        assert_eq!(next_status(&mut late).await, ServingStatus::NotServing);
        assert_eq!(
            late.next().await.unwrap().unwrap_err().code(),
            Code::Unavailable
        );
    }
}
