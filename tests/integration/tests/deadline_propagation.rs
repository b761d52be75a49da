//! A call's deadline follows it down a chain of services: calls a handler makes (with no
//! timeout of their own) are bounded by the deadline of the call it is handling, less the
//! client's margin, so the whole chain gives up when the first caller does.
//!
//! The chain: the test's client -> relay 1 -> relay 2 -> the test service, each over real
//! sockets. A relay forwards the request unchanged and appends to the reply's text the time
//! it had left when its handler ran.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use switchboard::client::{Client, ClientConfig};
use switchboard::server::{Router, ServerConfig};
use switchboard::{Code, Error, Request, Response, ResponseStream};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, start, start_router};

/// Forwards every call to the next service down.
#[derive(Clone)]
struct Relay {
    next: TestServiceClient,
    /// How each forwarded call ended, as this relay saw it: its error code, `None` for a reply.
    seen: Arc<Mutex<Vec<Option<Code>>>>,
}

impl Relay {
    fn to(next: &Running, config: ClientConfig) -> Relay {
        Relay {
            next: TestServiceClient::new(Client::h2c(&next.url()).unwrap().with_config(config)),
            seen: Arc::default(),
        }
    }
}

/// The time left on this handler's deadline, in whole milliseconds (-1: none).
fn left_ms() -> i64 {
    switchboard::deadline::current().map_or(-1, |deadline| {
        deadline
            .saturating_duration_since(std::time::Instant::now())
            .as_millis() as i64
    })
}

impl TestService for Relay {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let mine = left_ms();
        let forwarded = self.next.echo(request.into_message()).await;
        self.seen
            .lock()
            .unwrap()
            .push(forwarded.as_ref().err().map(Error::code));
        let mut reply = forwarded?.into_message();
        reply.text.push_str(&format!("|{mine}"));
        Ok(Response::new(reply))
    }

    /// One reply, made while the response stream is polled (outside the handler's future):
    /// the call it makes downstream is bounded all the same.
    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let next = self.next.clone();
        let message = request.into_message();
        let reply =
            futures_util::stream::once(async move { Ok(next.echo(message).await?.into_message()) });
        Ok(Response::new(
            Box::pin(reply) as ResponseStream<EchoResponse>
        ))
    }
}

/// `(relay 1, relay 2, end)`: each relay's time left and the end's, from a reply's text.
fn times_left(reply: &EchoResponse) -> (i64, i64, i64) {
    let parts: Vec<i64> = reply
        .text
        .split('|')
        .skip(1)
        .map(|p| p.parse().unwrap())
        .collect();
    // The innermost relay appends first.
    (parts[1], parts[0], reply.timeout_ms)
}

async fn chain(config: ClientConfig) -> (Running, Running, Running, Relay, Relay) {
    let end = start(ServerConfig::default()).await;
    let relay2 = Relay::to(&end, config.clone());
    let middle =
        start_router(Router::new().add_service(TestServiceServer::new(relay2.clone()))).await;
    let relay1 = Relay::to(&middle, config);
    let front =
        start_router(Router::new().add_service(TestServiceServer::new(relay1.clone()))).await;
    (front, middle, end, relay1, relay2)
}

fn caller(front: &Running) -> TestServiceClient {
    TestServiceClient::new(Client::h2c(&front.url()).unwrap())
}

#[tokio::test]
async fn each_hop_gets_what_is_left_of_the_first_callers_deadline() {
    let margin = Duration::from_millis(50);
    let (front, _middle, _end, _, _) = chain(ClientConfig::default().deadline_margin(margin)).await;
    let reply = caller(&front)
        .echo(Request::new(EchoRequest::default()).with_timeout(Duration::from_secs(3)))
        .await
        .expect("the chain answers")
        .into_message();
    let (first, second, end) = times_left(&reply);
    assert!(first > 0 && first <= 3000, "relay 1 had {first} ms");
    // Each hop is bounded by the one before it, less the margin.
    assert!(
        second > 0 && second <= first - 50,
        "relay 2 had {second} ms after {first}"
    );
    assert!(
        end > 0 && end <= second - 50,
        "the end had {end} ms after {second}"
    );
    // Nothing was lost on the way either: the margins and the hops took well under a second.
    assert!(end >= 1500, "the end had only {end} ms of 3000");
}

#[tokio::test]
async fn without_propagation_the_hops_have_no_deadline() {
    let (front, _middle, _end, _, _) =
        chain(ClientConfig::default().propagate_deadline(false)).await;
    let reply = caller(&front)
        .echo(Request::new(EchoRequest::default()).with_timeout(Duration::from_secs(3)))
        .await
        .unwrap()
        .into_message();
    let (first, second, end) = times_left(&reply);
    assert!(first > 0, "relay 1 has the caller's own deadline: {first}");
    assert_eq!((second, end), (-1, -1));
}

#[tokio::test]
async fn a_slow_end_of_the_chain_fails_every_hop_with_deadline_exceeded() {
    let margin = Duration::from_millis(100);
    let (front, _middle, _end, relay1, relay2) =
        chain(ClientConfig::default().deadline_margin(margin)).await;
    let started = std::time::Instant::now();
    let error = caller(&front)
        .echo(
            Request::new(EchoRequest {
                sleep_ms: 10_000,
                ..Default::default()
            })
            .with_timeout(Duration::from_millis(600)),
        )
        .await
        .expect_err("the end sleeps past every deadline");
    assert_eq!(error.code(), Code::DeadlineExceeded);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the chain gave up with its caller, not after the end's 10 s sleep"
    );
    // Each relay's own downstream call ended at its inherited deadline, less the margin:
    // before its handler's own deadline, so the relay saw it end.
    for (name, relay) in [("relay 1", &relay1), ("relay 2", &relay2)] {
        let seen = relay.seen.lock().unwrap().clone();
        assert_eq!(seen, [Some(Code::DeadlineExceeded)], "{name}");
    }
}

#[tokio::test]
async fn a_response_stream_makes_its_calls_under_the_deadline_too() {
    let (front, _middle, _end, _, _) = chain(ClientConfig::default()).await;
    let mut replies = caller(&front)
        .server_stream(Request::new(EchoRequest::default()).with_timeout(Duration::from_secs(3)))
        .await
        .unwrap()
        .into_message();
    let reply = replies.next().await.expect("one reply").unwrap();
    // Relay 1's stream called relay 2's echo, which called the end: both bounded.
    let relay2_left: i64 = reply.text.trim_start_matches('|').parse().unwrap();
    assert!(
        relay2_left > 0 && relay2_left <= 3000,
        "relay 2 had {relay2_left} ms"
    );
    assert!(
        reply.timeout_ms > 0 && reply.timeout_ms <= relay2_left,
        "{}",
        reply.timeout_ms
    );
}
