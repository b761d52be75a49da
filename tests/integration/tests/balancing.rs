//! Client-side balancing over real sockets: calls spread over the endpoints, an endpoint that
//! refuses connections is ejected without failing calls, endpoints come and go through
//! discovery, health checks keep replicas that are up but not serving out, and DNS endpoints
//! over TLS verify the certificate against the host name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchboard::client::{Balanced, Client, ClientConfig, HttpTransport, RetryPolicy};
use switchboard::server::{Router, Server};
use switchboard::tower::discover::Change;
use switchboard::{Error, Protocol, Request, Response};
use switchboard_health::HealthReporter;
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, start_router};

/// Answers with its name.
#[derive(Clone)]
struct Named(&'static str);

impl TestService for Named {
    async fn echo(&self, _request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        Ok(Response::new(EchoResponse {
            text: self.0.to_owned(),
            ..Default::default()
        }))
    }
}

async fn replica(name: &'static str) -> Running {
    start_router(Router::new().add_service(TestServiceServer::new(Named(name)))).await
}

/// A loopback URL where nothing listens: connections are refused.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// Who answered `calls` calls, by name; panics on a failed call.
async fn answers(client: &TestServiceClient<Balanced>, calls: usize) -> HashMap<String, usize> {
    let mut by_name = HashMap::new();
    for i in 0..calls {
        let reply = client
            .echo(EchoRequest::default())
            .await
            .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        *by_name.entry(reply.into_message().text).or_insert(0) += 1;
    }
    by_name
}

#[tokio::test]
async fn calls_spread_over_every_endpoint() {
    let replicas = [replica("a").await, replica("b").await, replica("c").await];
    let urls: Vec<String> = replicas.iter().map(Running::url).collect();
    let balanced = Balanced::builder(HttpTransport::h2c())
        .endpoints(urls.iter().map(String::as_str))
        .unwrap()
        .build();
    let client = TestServiceClient::new(Client::new("http://replicas", balanced).unwrap());
    let by_name = answers(&client, 300).await;
    assert_eq!(by_name.len(), 3, "{by_name:?}");
    for (name, count) in &by_name {
        // 100 each on average; p2c among idle endpoints picks at random.
        assert!(
            *count >= 50,
            "{name} answered only {count} of 300: {by_name:?}"
        );
    }
}

#[tokio::test]
async fn an_endpoint_refusing_connections_is_ejected_and_no_call_fails() {
    let live = [replica("a").await, replica("b").await];
    let mut urls: Vec<String> = live.iter().map(Running::url).collect();
    urls.push(dead_url());
    let balanced = Balanced::builder(HttpTransport::h2c())
        .endpoints(urls.iter().map(String::as_str))
        .unwrap()
        .build();
    let raw = Client::new("http://replicas", balanced).unwrap();
    let client = TestServiceClient::new(raw.clone());
    // No retry policy: the transparent retry of a refused connection is enough.
    let by_name = answers(&client, 200).await;
    assert_eq!(by_name.values().sum::<usize>(), 200);
    assert!(
        by_name.contains_key("a") && by_name.contains_key("b"),
        "{by_name:?}"
    );
    // The dead endpoint cost at most a few transparent retries before it was ejected.
    let transparent = raw.retry_counts().transparent_retries;
    assert!(
        (1..=5).contains(&transparent),
        "{transparent} transparent retries"
    );
}

#[tokio::test]
async fn a_replica_that_goes_away_is_ridden_out_with_retries() {
    let a = replica("a").await;
    let b = replica("b").await;
    let balanced = Balanced::builder(HttpTransport::h2c())
        .endpoints([a.url().as_str(), b.url().as_str()])
        .unwrap()
        .build();
    let config = ClientConfig::default().retry(RetryPolicy::new().max_attempts(5).backoff(
        Duration::from_millis(20),
        Duration::from_millis(100),
        2.0,
    ));
    let client = TestServiceClient::new(
        Client::new("http://replicas", balanced)
            .unwrap()
            .with_config(config),
    );
    let before = answers(&client, 50).await;
    assert_eq!(before.len(), 2, "{before:?}");
    // Replica a shuts down (GOAWAY, then its port refuses connections).
    a.stop().await;
    let after = answers(&client, 100).await;
    assert_eq!(after.get("b"), Some(&100), "{after:?}");
}

#[tokio::test]
async fn endpoints_follow_the_discovery_stream() {
    let a = replica("a").await;
    let b = replica("b").await;
    let (changes, receiver) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|change| (change, receiver))
    });
    let balanced = Balanced::builder(HttpTransport::h2c())
        .discover(stream)
        .build();
    let client = TestServiceClient::new(Client::new("http://replicas", balanced).unwrap());
    changes
        .send(Change::Insert("a".to_owned(), a.url()))
        .unwrap();
    assert_eq!(answers(&client, 20).await.get("a"), Some(&20));
    changes
        .send(Change::Insert("b".to_owned(), b.url()))
        .unwrap();
    changes.send(Change::Remove("a".to_owned())).unwrap();
    // The balancer applies changes as calls come; after the first, only b answers.
    let _ = answers(&client, 1).await;
    assert_eq!(answers(&client, 20).await.get("b"), Some(&20));
}

#[tokio::test]
async fn a_dns_name_is_resolved_to_its_addresses() {
    let a = replica("a").await;
    let url = format!("http://localhost:{}", a.addr.port());
    let balanced = Balanced::builder(HttpTransport::h2c())
        .dns(&url, Duration::from_secs(30))
        .unwrap()
        .build();
    let client = TestServiceClient::new(Client::new("http://replicas", balanced).unwrap());
    // localhost may also resolve to ::1, where nothing listens: that address is ejected.
    assert_eq!(answers(&client, 20).await.get("a"), Some(&20));
}

/// Answers with its name and counts its calls.
#[derive(Clone)]
struct Counting {
    name: &'static str,
    calls: Arc<AtomicUsize>,
}

impl Counting {
    fn new(name: &'static str) -> Self {
        Counting {
            name,
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TestService for Counting {
    async fn echo(&self, _request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(EchoResponse {
            text: self.name.to_owned(),
            ..Default::default()
        }))
    }
}

/// A replica that can be stopped and started again on the same port.
struct Replica {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    /// Serves `service`, with the health service of `health` when given, on `addr` (port 0:
    /// any free port).
    async fn start(service: Counting, health: Option<&HealthReporter>, addr: SocketAddr) -> Self {
        let mut router = Router::new().add_service(TestServiceServer::new(service));
        if let Some(health) = health {
            router = router.add_service(health.service());
        }
        let (listener, addr) = switchboard::server::bind(addr).await.expect("bind");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            Server::new(router)
                .serve_with_shutdown(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Replica { addr, stop, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it (its port then refuses connections); returns the address to start again on.
    async fn stop(self) -> SocketAddr {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.addr
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Calls once every 10 ms for `duration`; panics on a failed call.
async fn calls_for(client: &TestServiceClient<Balanced>, duration: Duration) {
    let end = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < end {
        let _ = answers(client, 1).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Calls until `counting` has answered one more call, for at most `limit`; whether it did.
async fn until_it_answers(
    client: &TestServiceClient<Balanced>,
    counting: &Counting,
    limit: Duration,
) -> bool {
    let before = counting.calls();
    let end = tokio::time::Instant::now() + limit;
    while counting.calls() == before && tokio::time::Instant::now() < end {
        let _ = answers(client, 1).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    counting.calls() > before
}

/// A balanced client of `urls` with short ejections (100 ms doubling to 400 ms), retries, a
/// 5 s timeout, and health checks when `health_check` names a service and protocol.
fn balanced_client(
    transport: HttpTransport,
    urls: &[String],
    health_check: Option<(&str, Protocol)>,
) -> TestServiceClient<Balanced> {
    let mut builder = Balanced::builder(transport)
        .endpoints(urls.iter().map(String::as_str))
        .unwrap()
        .ejection(Duration::from_millis(100), Duration::from_millis(400));
    if let Some((service, protocol)) = health_check {
        builder = builder.health_check(service, protocol);
    }
    let config = ClientConfig::default()
        .retry(RetryPolicy::new().max_attempts(5).backoff(
            Duration::from_millis(20),
            Duration::from_millis(100),
            2.0,
        ))
        // A call waiting for an endpoint that never comes back fails rather than hangs.
        .timeout(Duration::from_secs(5));
    let client = Client::new("http://replicas", builder.build()).unwrap();
    TestServiceClient::new(client.with_config(config))
}

#[tokio::test]
async fn a_replica_back_but_not_serving_takes_no_calls_until_its_health_check_passes() {
    let (a, b, c) = (Counting::new("a"), Counting::new("b"), Counting::new("c"));
    let health = [
        HealthReporter::new(),
        HealthReporter::new(),
        HealthReporter::new(),
    ];
    let ra = Replica::start(a.clone(), Some(&health[0]), any_port()).await;
    let rb = Replica::start(b.clone(), Some(&health[1]), any_port()).await;
    let rc = Replica::start(c.clone(), Some(&health[2]), any_port()).await;
    let urls = [ra.url(), rb.url(), rc.url()];
    let client = balanced_client(HttpTransport::h2c(), &urls, Some(("", Protocol::Grpc)));
    calls_for(&client, Duration::from_millis(300)).await;
    let calls = [a.calls(), b.calls(), c.calls()];
    assert!(
        calls.iter().all(|n| *n > 0),
        "every replica serves: {calls:?}"
    );

    // b goes away: its endpoint is ejected, its health checks are refused.
    let b_addr = rb.stop().await;
    let by_name = answers(&client, 30).await;
    assert_eq!(by_name.get("b"), None, "{by_name:?}");

    // b is back on its port, up but not serving. Over 1.2 s its ejection (100 ms, doubling to
    // 400 ms) ends several times; each time the health check says NOT_SERVING.
    let b_again = Counting::new("b");
    let b_health = HealthReporter::new();
    b_health.set_not_serving("");
    let _rb = Replica::start(b_again.clone(), Some(&b_health), b_addr).await;
    calls_for(&client, Duration::from_millis(1200)).await;
    assert_eq!(b_again.calls(), 0, "b took calls while not serving");

    // Control: without health checks the same replica takes calls (its handler works), so
    // it was the health check that kept it out.
    let unchecked = balanced_client(HttpTransport::h2c(), &urls, None);
    let by_name = answers(&unchecked, 60).await;
    assert!(by_name.contains_key("b"), "{by_name:?}");

    // Serving again: the next health check (within the longest ejection, 400 ms) puts it back.
    b_health.set_serving("");
    let back = until_it_answers(&client, &b_again, Duration::from_secs(3)).await;
    assert!(back, "b never taken back");
    let by_name = answers(&client, 60).await;
    assert_eq!(by_name.len(), 3, "{by_name:?}");
}

#[tokio::test]
async fn health_checks_ask_for_the_service_and_admit_servers_without_the_health_service() {
    const SERVICE: &str = "switchboard.test.v1.TestService";
    let (a, b, c) = (Counting::new("a"), Counting::new("b"), Counting::new("c"));
    // a serves the service; b has no health service (its checks are unimplemented); c is
    // serving as a whole ("") but not the service asked about.
    let a_health = HealthReporter::new();
    a_health.set_serving(SERVICE);
    let c_health = HealthReporter::new();
    c_health.set_not_serving(SERVICE);
    let ra = Replica::start(a.clone(), Some(&a_health), any_port()).await;
    let rb = Replica::start(b.clone(), None, any_port()).await;
    let rc = Replica::start(c.clone(), Some(&c_health), any_port()).await;
    let urls = [ra.url(), rb.url(), rc.url()];
    // Connect, so HTTP/1.1 works.
    let client = balanced_client(
        HttpTransport::http1(),
        &urls,
        Some((SERVICE, Protocol::Connect)),
    );
    calls_for(&client, Duration::from_millis(500)).await;
    assert!(a.calls() > 0);
    assert!(
        b.calls() > 0,
        "b has no health service and is taken as healthy"
    );
    assert_eq!(c.calls(), 0, "c does not serve {SERVICE}");

    // b goes away and comes back, still without a health service: its check after the
    // ejection is unimplemented again, and it is readmitted.
    let b_addr = rb.stop().await;
    let _ = answers(&client, 20).await;
    let b_again = Counting::new("b");
    let _rb = Replica::start(b_again.clone(), None, b_addr).await;
    let back = until_it_answers(&client, &b_again, Duration::from_secs(3)).await;
    assert!(back, "b never readmitted");
    assert_eq!(c.calls(), 0);
}

/// Answers with the authority its request named (`:authority`, or Host over HTTP/1.1).
#[derive(Clone)]
struct Authority;

impl TestService for Authority {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let from_uri = request
            .uri()
            .and_then(|uri| uri.authority())
            .map(ToString::to_string);
        let from_host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|host| host.to_str().ok())
            .map(str::to_owned);
        Ok(Response::new(EchoResponse {
            text: from_uri.or(from_host).unwrap_or_default(),
            ..Default::default()
        }))
    }
}

#[tokio::test]
async fn dns_endpoints_over_tls_verify_the_certificate_against_the_host_name() {
    // A certificate for the name "localhost" only: an endpoint addressed by IP fails
    // verification.
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let server_tls = switchboard::server::tls::server_config(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        None,
    )
    .unwrap();
    let client_tls =
        switchboard::client::tls::client_config(Some(ca.pem().as_bytes()), None).unwrap();
    let router = Router::new().add_service(TestServiceServer::new(Authority));
    let server = Running::serve(Server::new(router).with_tls(server_tls)).await;
    let port = server.addr.port();

    let balanced = Balanced::builder(HttpTransport::tls(client_tls.clone()))
        .dns(
            &format!("https://localhost:{port}"),
            Duration::from_secs(30),
        )
        .unwrap()
        .ejection(Duration::from_millis(50), Duration::from_millis(200))
        .build();
    let client = TestServiceClient::new(Client::new("https://replicas", balanced).unwrap());
    // localhost may also resolve to ::1, where nothing listens: that address is ejected.
    for i in 0..20 {
        let reply = client
            .echo(EchoRequest::default())
            .await
            .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        // The name, not the address, is what the request says it is for.
        assert_eq!(reply.into_message().text, format!("localhost:{port}"));
    }

    // Control: the same server addressed by IP fails certificate verification.
    let by_ip = Balanced::builder(HttpTransport::tls(client_tls))
        .endpoints([format!("https://127.0.0.1:{port}").as_str()])
        .unwrap()
        .ejection(Duration::from_millis(50), Duration::from_millis(200))
        .build();
    let client = TestServiceClient::new(Client::new("https://replicas", by_ip).unwrap());
    let error = client
        .echo(EchoRequest::default())
        .await
        .expect_err("the certificate does not name 127.0.0.1");
    assert!(
        format!("{error:?}").contains("NotValidForName"),
        "{error:?}"
    );
}
