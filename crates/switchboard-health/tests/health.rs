//! The health service over real sockets: Check and Watch with our generated client over
//! Connect, gRPC and gRPC-Web (binary and text), on h2c and, where the protocol allows,
//! HTTP/1.1; watches end when the client goes away and on shutdown.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard::client::{Client, ClientConfig};
use switchboard::server::Router;
use switchboard::{Code, Protocol, Streaming};
use switchboard_health::{HealthCheckRequest, HealthCheckResponse, HealthClient, ServingStatus};

const ELIZA: &str = "connectrpc.eliza.v1.ElizaService";
const WAIT: Duration = Duration::from_secs(10);

/// (protocol, gRPC-Web text?, h2c?)
const TRANSPORTS: [(Protocol, bool, bool); 6] = [
    (Protocol::Connect, false, true),
    (Protocol::Connect, false, false),
    (Protocol::Grpc, false, true),
    (Protocol::GrpcWeb, false, true),
    (Protocol::GrpcWeb, false, false),
    (Protocol::GrpcWeb, true, true),
];

/// A server on 127.0.0.1 with only the health service, stopped with [`Running::stop`].
struct Running {
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(router: Router) -> Running {
        let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind");
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            switchboard::server::Server::new(router)
                .serve_with_shutdown(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Running {
            addr,
            shutdown,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits for the calls in flight, failing after [`WAIT`].
    async fn stop(self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task ends cleanly");
    }
}

fn client(url: &str, (protocol, text, h2c): (Protocol, bool, bool)) -> HealthClient {
    let base = if h2c {
        Client::h2c(url)
    } else {
        Client::http1(url)
    }
    .expect("client");
    let config = ClientConfig::default()
        .protocol(protocol)
        .grpc_web_text(text);
    HealthClient::new(base.with_config(config))
}

fn what((protocol, text, h2c): (Protocol, bool, bool)) -> String {
    format!("{protocol:?} text={text} h2c={h2c}")
}

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

async fn check(client: &HealthClient, service: &str) -> Result<ServingStatus, Code> {
    client
        .check(request(service))
        .await
        .map(|response| response.message().status())
        .map_err(|error| error.code())
}

async fn next(stream: &mut Streaming<HealthCheckResponse>, what: &str) -> ServingStatus {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .unwrap_or_else(|_| panic!("{what}: no message in time"))
        .unwrap_or_else(|error| panic!("{what}: {error}"))
        .unwrap_or_else(|| panic!("{what}: the watch ended"))
        .status()
}

/// Waits until the reporter counts `want` open watches.
async fn wait_for_watchers(reporter: &switchboard_health::HealthReporter, want: usize, what: &str) {
    let deadline = Instant::now() + WAIT;
    while reporter.watchers() != want {
        assert!(
            Instant::now() < deadline,
            "{what}: {} watches open, want {want}",
            reporter.watchers()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn check_reports_serving_not_serving_and_unknown_in_every_protocol() {
    for transport in TRANSPORTS {
        let what = what(transport);
        let (reporter, service) = switchboard_health::health();
        reporter.set_serving(ELIZA);
        let server = Running::start(Router::new().add_service(service)).await;
        let client = client(&server.url(), transport);

        assert_eq!(
            check(&client, "").await,
            Ok(ServingStatus::Serving),
            "{what}"
        );
        assert_eq!(
            check(&client, ELIZA).await,
            Ok(ServingStatus::Serving),
            "{what}"
        );
        assert_eq!(
            check(&client, "no.Such").await,
            Err(Code::NotFound),
            "{what}"
        );

        reporter.set_not_serving(ELIZA);
        reporter.set_not_serving("");
        assert_eq!(
            check(&client, ELIZA).await,
            Ok(ServingStatus::NotServing),
            "{what}"
        );
        assert_eq!(
            check(&client, "").await,
            Ok(ServingStatus::NotServing),
            "{what}"
        );

        reporter.clear(ELIZA);
        assert_eq!(check(&client, ELIZA).await, Err(Code::NotFound), "{what}");
        server.stop().await;
    }
}

#[tokio::test]
async fn watch_sends_the_current_status_then_each_change_in_every_protocol() {
    for transport in TRANSPORTS {
        let what = what(transport);
        let (reporter, service) = switchboard_health::health();
        let server = Running::start(Router::new().add_service(service)).await;
        let client = client(&server.url(), transport);

        // A service nobody reported yet: SERVICE_UNKNOWN at once, not an error.
        let mut eliza = client
            .watch(request(ELIZA))
            .await
            .unwrap_or_else(|error| panic!("{what}: {error}"))
            .into_message();
        assert_eq!(
            next(&mut eliza, &what).await,
            ServingStatus::ServiceUnknown,
            "{what}"
        );
        let mut overall = client.watch(request("")).await.unwrap().into_message();
        assert_eq!(
            next(&mut overall, &what).await,
            ServingStatus::Serving,
            "{what}"
        );
        wait_for_watchers(&reporter, 2, &what).await;

        reporter.set_serving(ELIZA);
        assert_eq!(
            next(&mut eliza, &what).await,
            ServingStatus::Serving,
            "{what}"
        );
        // Unchanged statuses and other services send nothing: the next message is the change.
        reporter.set_serving(ELIZA);
        reporter.set_serving("other.Service");
        reporter.set_not_serving(ELIZA);
        assert_eq!(
            next(&mut eliza, &what).await,
            ServingStatus::NotServing,
            "{what}"
        );
        reporter.set_serving(ELIZA);
        assert_eq!(
            next(&mut eliza, &what).await,
            ServingStatus::Serving,
            "{what}"
        );
        reporter.clear(ELIZA);
        assert_eq!(
            next(&mut eliza, &what).await,
            ServingStatus::ServiceUnknown,
            "{what}"
        );

        reporter.set_not_serving("");
        assert_eq!(
            next(&mut overall, &what).await,
            ServingStatus::NotServing,
            "{what}"
        );
        reporter.set_serving("");
        assert_eq!(
            next(&mut overall, &what).await,
            ServingStatus::Serving,
            "{what}"
        );

        // The client goes away: the server drops the watches and keeps nothing running.
        drop(eliza);
        wait_for_watchers(&reporter, 1, &what).await;
        drop(overall);
        drop(client);
        wait_for_watchers(&reporter, 0, &what).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn shutdown_ends_watches_so_the_server_can_stop() {
    for transport in TRANSPORTS {
        let what = what(transport);
        let (reporter, service) = switchboard_health::health();
        reporter.set_serving(ELIZA);
        let server = Running::start(Router::new().add_service(service)).await;
        let client = client(&server.url(), transport);
        let mut watch = client.watch(request(ELIZA)).await.unwrap().into_message();
        assert_eq!(
            next(&mut watch, &what).await,
            ServingStatus::Serving,
            "{what}"
        );

        reporter.shutdown();
        assert_eq!(
            next(&mut watch, &what).await,
            ServingStatus::NotServing,
            "{what}"
        );
        let end = tokio::time::timeout(WAIT, watch.message())
            .await
            .expect("the watch ends in time");
        assert_eq!(end.unwrap_err().code(), Code::Unavailable, "{what}");
        assert_eq!(
            check(&client, "").await,
            Ok(ServingStatus::NotServing),
            "{what}"
        );
        wait_for_watchers(&reporter, 0, &what).await;
        server.stop().await;
    }
}
