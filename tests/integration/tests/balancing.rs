//! Client-side balancing over real sockets: calls spread over the endpoints, an endpoint that
//! refuses connections is ejected without failing calls, and endpoints come and go through
//! discovery.

use std::collections::HashMap;
use std::time::Duration;

use switchboard::client::{Balanced, Client, ClientConfig, HttpTransport, RetryPolicy};
use switchboard::server::Router;
use switchboard::tower::discover::Change;
use switchboard::{Error, Request, Response};
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
