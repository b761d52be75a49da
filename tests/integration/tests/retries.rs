//! Retries over real sockets, on every protocol: a flaky service fails the first calls with a
//! code it chooses, and the client's policy decides what is tried again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use http::{HeaderName, HeaderValue};
use switchboard::client::{Client, ClientConfig, RetryBudget, RetryPolicy};
use switchboard::server::Router;
use switchboard::{Code, Error, Protocol, Request, Response, ResponseStream};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, start_router};

/// The request's `grpc-previous-rpc-attempts`, if it has one.
fn previous_attempts<T>(request: &Request<T>) -> Option<String> {
    request
        .headers()
        .get("grpc-previous-rpc-attempts")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Each attempt's `grpc-previous-rpc-attempts` and when it arrived.
type Attempts = Arc<Mutex<Vec<(Option<String>, Instant)>>>;

/// Fails calls while `failures` lasts, with `code` and the `pushback` header if any.
#[derive(Clone)]
struct Flaky {
    failures: Arc<AtomicU32>,
    code: Code,
    pushback: Option<&'static str>,
    attempts: Attempts,
}

impl Flaky {
    fn new(failures: u32, code: Code) -> Flaky {
        Flaky {
            failures: Arc::new(AtomicU32::new(failures)),
            code,
            pushback: None,
            attempts: Arc::default(),
        }
    }

    /// Records an attempt.
    fn record<T>(&self, request: &Request<T>) {
        let previous = previous_attempts(request);
        self.attempts
            .lock()
            .unwrap()
            .push((previous, Instant::now()));
    }

    /// Uses up one failure, if any is left.
    fn take_failure(&self) -> bool {
        self.failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    fn attempt<T>(&self, request: &Request<T>) -> Result<(), Error> {
        self.record(request);
        if !self.take_failure() {
            return Ok(());
        }
        let mut error = Error::new(self.code, "flaking");
        if let Some(pushback) = self.pushback {
            error = error.with_metadata(
                HeaderName::from_static("grpc-retry-pushback-ms"),
                HeaderValue::from_static(pushback),
            );
        }
        Err(error)
    }

    fn previous_attempts(&self) -> Vec<Option<String>> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

impl TestService for Flaky {
    /// Reads every message, then fails (while failures last) or answers their texts joined.
    async fn client_stream(
        &self,
        request: Request<switchboard::Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Error> {
        let previous = previous_attempts(&request);
        let mut messages = request.into_message();
        let mut texts = Vec::new();
        while let Some(message) = messages.message().await? {
            texts.push(message.text);
        }
        self.attempts
            .lock()
            .unwrap()
            .push((previous, Instant::now()));
        if self.take_failure() {
            return Err(Error::new(self.code, "flaking"));
        }
        Ok(Response::new(EchoResponse {
            text: texts.join(" "),
            ..Default::default()
        }))
    }

    /// Echoes every message. Messages up to one saying "go" are held back, then (while
    /// failures last) the call fails with none answered, or they are all answered. A message
    /// saying "fail-after-reply" is answered and then fails the call (while failures last).
    async fn bidi(
        &self,
        request: Request<switchboard::Streaming<EchoRequest>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        self.record(&request);
        let flaky = self.clone();
        let mut messages = request.into_message();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let echo = |text: String| {
            Ok(EchoResponse {
                text,
                ..Default::default()
            })
        };
        tokio::spawn(async move {
            let mut held = Vec::new();
            let mut going = false;
            loop {
                let message = match messages.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(error) => {
                        let _ = tx.send(Err(error));
                        return;
                    }
                };
                if message.text == "fail-after-reply" {
                    let _ = tx.send(echo(message.text));
                    if flaky.take_failure() {
                        let _ = tx.send(Err(Error::new(flaky.code, "flaking")));
                        return;
                    }
                } else if going {
                    let _ = tx.send(echo(message.text));
                } else {
                    let go = message.text == "go";
                    held.push(message.text);
                    if go {
                        if flaky.take_failure() {
                            let _ = tx.send(Err(Error::new(flaky.code, "flaking")));
                            return;
                        }
                        going = true;
                        for text in held.drain(..) {
                            let _ = tx.send(echo(text));
                        }
                    }
                }
            }
            for text in held {
                let _ = tx.send(echo(text));
            }
        });
        let replies = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(
            Box::pin(replies) as ResponseStream<EchoResponse>
        ))
    }

    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        self.attempt(&request)?;
        Ok(Response::new(EchoResponse {
            text: request.message().text.clone(),
            ..Default::default()
        }))
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        self.attempt(&request)?;
        let reply = EchoResponse {
            text: request.message().text.clone(),
            ..Default::default()
        };
        Ok(Response::new(
            Box::pin(futures_util::stream::iter([Ok(reply)])) as ResponseStream<EchoResponse>,
        ))
    }
}

async fn serve(flaky: &Flaky) -> Running {
    start_router(Router::new().add_service(TestServiceServer::new(flaky.clone()))).await
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy::new().max_attempts(4).backoff(
        Duration::from_millis(10),
        Duration::from_millis(50),
        2.0,
    )
}

fn connect(
    server: &Running,
    protocol: Protocol,
    config: ClientConfig,
) -> (Client, TestServiceClient) {
    let client = Client::h2c(&server.url())
        .unwrap()
        .with_config(config.protocol(protocol));
    (client.clone(), TestServiceClient::new(client))
}

fn hello() -> EchoRequest {
    EchoRequest {
        text: "hello".into(),
        ..Default::default()
    }
}

const PROTOCOLS: [Protocol; 3] = [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb];

#[tokio::test]
async fn unavailable_is_retried_until_it_succeeds_with_the_attempt_count_sent() {
    for protocol in PROTOCOLS {
        let flaky = Flaky::new(2, Code::Unavailable);
        let server = serve(&flaky).await;
        let (raw, client) = connect(
            &server,
            protocol,
            ClientConfig::default().retry(fast_policy()),
        );
        let reply = client
            .echo(hello())
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert_eq!(reply.message().text, "hello");
        assert_eq!(
            flaky.previous_attempts(),
            [None, Some("1".to_owned()), Some("2".to_owned())],
            "{protocol:?}"
        );
        let counts = raw.retry_counts();
        assert_eq!((counts.calls, counts.retries), (1, 2), "{protocol:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_server_stream_is_retried_when_it_fails_before_its_first_message() {
    for protocol in [Protocol::Grpc, Protocol::GrpcWeb, Protocol::Connect] {
        let flaky = Flaky::new(1, Code::Unavailable);
        let server = serve(&flaky).await;
        let (_, client) = connect(
            &server,
            protocol,
            ClientConfig::default().retry(fast_policy()),
        );
        let mut replies = client
            .server_stream(hello())
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"))
            .into_message();
        let first = replies.next().await.expect("a reply");
        assert_eq!(
            first.unwrap_or_else(|e| panic!("{protocol:?}: {e}")).text,
            "hello"
        );
        assert_eq!(flaky.previous_attempts().len(), 2, "{protocol:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn other_codes_and_calls_without_a_policy_are_not_retried() {
    for protocol in PROTOCOLS {
        let flaky = Flaky::new(5, Code::Internal);
        let server = serve(&flaky).await;
        let (_, with_policy) = connect(
            &server,
            protocol,
            ClientConfig::default().retry(fast_policy()),
        );
        let error = with_policy.echo(hello()).await.unwrap_err();
        assert_eq!(error.code(), Code::Internal);
        let (_, without) = connect(&server, protocol, ClientConfig::default());
        let flaky_unavailable = Flaky::new(5, Code::Unavailable);
        let other = serve(&flaky_unavailable).await;
        let (_, without_policy) = connect(&other, protocol, ClientConfig::default());
        assert_eq!(
            without_policy.echo(hello()).await.unwrap_err().code(),
            Code::Unavailable
        );
        drop(without);
        assert_eq!(flaky.previous_attempts().len(), 1, "{protocol:?}: internal");
        assert_eq!(
            flaky_unavailable.previous_attempts().len(),
            1,
            "{protocol:?}: no policy"
        );
        server.stop().await;
        other.stop().await;
    }
}

#[tokio::test]
async fn a_policy_for_one_method_wins_over_the_clients() {
    let flaky = Flaky::new(1, Code::Unavailable);
    let server = serve(&flaky).await;
    let config = ClientConfig::default()
        .retry(fast_policy())
        .retry_for("switchboard.test.v1.TestService/Echo", None);
    let (_, client) = connect(&server, Protocol::Connect, config);
    assert_eq!(
        client.echo(hello()).await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(flaky.previous_attempts().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn server_pushback_sets_the_delay_or_refuses_the_retry() {
    for protocol in PROTOCOLS {
        let mut wait = Flaky::new(1, Code::Unavailable);
        wait.pushback = Some("300");
        let server = serve(&wait).await;
        let (_, client) = connect(
            &server,
            protocol,
            ClientConfig::default().retry(fast_policy()),
        );
        client.echo(hello()).await.unwrap();
        let times: Vec<Instant> = wait
            .attempts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(times.len(), 2, "{protocol:?}");
        let waited = times[1] - times[0];
        assert!(
            waited >= Duration::from_millis(300),
            "{protocol:?}: retried after {waited:?}"
        );
        server.stop().await;

        let mut refuse = Flaky::new(1, Code::Unavailable);
        refuse.pushback = Some("-1");
        let server = serve(&refuse).await;
        let (raw, client) = connect(
            &server,
            protocol,
            ClientConfig::default().retry(fast_policy()),
        );
        assert_eq!(
            client.echo(hello()).await.unwrap_err().code(),
            Code::Unavailable
        );
        assert_eq!(refuse.previous_attempts().len(), 1, "{protocol:?}");
        assert_eq!(raw.retry_counts().pushed_back, 1, "{protocol:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn retries_end_with_the_calls_deadline() {
    let flaky = Flaky::new(u32::MAX, Code::Unavailable);
    let server = serve(&flaky).await;
    let policy = RetryPolicy::new().max_attempts(5).backoff(
        Duration::from_millis(150),
        Duration::from_millis(150),
        1.0,
    );
    let (_, client) = connect(
        &server,
        Protocol::Grpc,
        ClientConfig::default().retry(policy),
    );
    let started = Instant::now();
    let error = client
        .echo(Request::new(hello()).with_timeout(Duration::from_millis(400)))
        .await
        .unwrap_err();
    assert!(
        matches!(error.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{error}"
    );
    // 150 ms apart, times a factor in [0.8, 1.2): 120 ms at least, so within 400 ms no more
    // than 4 attempts can start (5 are allowed: the deadline is what stops them).
    let attempts = flaky.previous_attempts().len();
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
    assert!(started.elapsed() < Duration::from_secs(3));
    server.stop().await;
}

#[tokio::test]
async fn the_budget_stops_a_retry_storm() {
    let flaky = Flaky::new(u32::MAX, Code::Unavailable);
    let server = serve(&flaky).await;
    // Retries may add 10% to the calls, none for free.
    let config = ClientConfig::default()
        .retry(fast_policy())
        .retry_budget(RetryBudget::new(Duration::from_secs(10), 0, 0.1));
    let (raw, client) = connect(&server, Protocol::Connect, config);
    for _ in 0..100 {
        assert!(client.echo(hello()).await.is_err());
    }
    let counts = raw.retry_counts();
    assert_eq!(counts.calls, 100);
    assert!(counts.retries <= 10, "{counts:?}");
    assert!(counts.throttled >= 90, "{counts:?}");
    assert_eq!(flaky.previous_attempts().len() as u64, 100 + counts.retries);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_connection_is_retried_once_transparently() {
    // A port nobody listens on: the connection is refused, so the call never reached a server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let raw = Client::h2c(&format!("http://127.0.0.1:{port}")).unwrap();
    let client = TestServiceClient::new(raw.clone());
    let error = client.echo(hello()).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(raw.retry_counts().transparent_retries, 1);
}

/// The first call hangs (its cancellation is recorded); later calls answer at once, or fail
/// with `first_code` first when it is set.
#[derive(Clone, Default)]
struct SlowFirst {
    calls: Arc<AtomicU32>,
    first_cancelled: Arc<std::sync::atomic::AtomicBool>,
    fail_first_with: Option<Code>,
}

/// Sets its flag when dropped before it is disarmed.
struct OnDrop(Arc<std::sync::atomic::AtomicBool>, bool);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

impl TestService for SlowFirst {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            if let Some(code) = self.fail_first_with {
                return Err(Error::new(code, "first attempt fails"));
            }
            let mut guard = OnDrop(self.first_cancelled.clone(), true);
            tokio::time::sleep(Duration::from_secs(10)).await;
            guard.1 = false;
        }
        let previous = previous_attempts(&request).unwrap_or_default();
        Ok(Response::new(EchoResponse {
            text: format!("answered by attempt after {previous:?}"),
            ..Default::default()
        }))
    }
}

#[tokio::test]
async fn a_hedged_copy_answers_for_a_slow_replica_and_the_slow_one_is_cancelled() {
    use switchboard::client::HedgingPolicy;
    for protocol in PROTOCOLS {
        let service = SlowFirst::default();
        let server =
            start_router(Router::new().add_service(TestServiceServer::new(service.clone()))).await;
        let policy = HedgingPolicy::new().delay(Duration::from_millis(50));
        let (raw, client) = connect(&server, protocol, ClientConfig::default().hedge(policy));
        let started = Instant::now();
        let reply = client
            .echo(hello())
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{protocol:?}: waited for the slow copy"
        );
        assert_eq!(
            reply.message().text,
            "answered by attempt after \"1\"",
            "{protocol:?}"
        );
        assert_eq!(raw.retry_counts().hedges, 1, "{protocol:?}");
        // The slow copy's stream was reset, and its handler dropped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !service.first_cancelled.load(Ordering::SeqCst) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            service.first_cancelled.load(Ordering::SeqCst),
            "{protocol:?}: slow copy kept running"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn hedging_stops_at_a_fatal_code_and_moves_on_at_a_non_fatal_one() {
    use switchboard::client::HedgingPolicy;
    let policy = HedgingPolicy::new().delay(Duration::from_secs(5));
    for (first, expect_ok) in [(Code::Internal, false), (Code::Unavailable, true)] {
        let service = SlowFirst {
            fail_first_with: Some(first),
            ..Default::default()
        };
        let server =
            start_router(Router::new().add_service(TestServiceServer::new(service.clone()))).await;
        let (_, client) = connect(
            &server,
            Protocol::Connect,
            ClientConfig::default().hedge(policy.clone()),
        );
        let started = Instant::now();
        let result = client.echo(hello()).await;
        // Neither case waits for the 5 s hedging delay.
        assert!(started.elapsed() < Duration::from_secs(4), "{first:?}");
        assert_eq!(result.is_ok(), expect_ok, "{first:?}: {result:?}");
        if !expect_ok {
            assert_eq!(result.unwrap_err().code(), Code::Internal);
            assert_eq!(service.calls.load(Ordering::SeqCst), 1);
        }
        server.stop().await;
    }
}

/// What a raw HTTP/2 server does with the first request that reaches it; it answers every
/// other request with a gRPC success naming the attempt and the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum First {
    /// RST_STREAM REFUSED_STREAM: the request never reached any application.
    Refuse,
    /// GOAWAY(last-stream-id 0, NO_ERROR) once the request's HEADERS have arrived but before
    /// h2 decodes them, then the connection closes: the server says it processed no stream.
    GoAwayUnprocessed,
    /// GOAWAY(NO_ERROR) after h2 has decoded the request's HEADERS, so its last-stream-id is
    /// the request's stream, then the connection closes: the request may have been processed.
    GoAwayProcessed,
}

/// What a raw server saw: connections accepted and requests whose HEADERS arrived.
#[derive(Default)]
struct Seen {
    connections: AtomicU32,
    attempts: AtomicU32,
}

impl Seen {
    fn counts(&self) -> (u32, u32) {
        (
            self.connections.load(Ordering::SeqCst),
            self.attempts.load(Ordering::SeqCst),
        )
    }
}

/// A raw HTTP/2 (h2c) server doing `first` to the first request it gets.
async fn raw_h2_server(first: First) -> (std::net::SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counted = seen.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let seen = counted.clone();
            tokio::spawn(async move {
                let connection = seen.connections.fetch_add(1, Ordering::SeqCst) + 1;
                serve_raw_connection(socket, connection, first, &seen).await;
            });
        }
    });
    (addr, seen)
}

async fn serve_raw_connection(
    socket: tokio::net::TcpStream,
    connection: u32,
    first: First,
    seen: &Seen,
) {
    if connection == 1 && first == First::GoAwayUnprocessed {
        wait_for_headers(&socket).await;
        seen.attempts.fetch_add(1, Ordering::SeqCst);
        let mut h2 = h2::server::handshake(socket).await.unwrap();
        // h2 has read the preface only: the GOAWAY names the last stream it decoded, none.
        h2.abrupt_shutdown(h2::Reason::NO_ERROR);
        assert!(h2.accept().await.is_none(), "h2 decoded the request");
        return hold_open(h2).await;
    }
    let mut h2 = h2::server::handshake(socket).await.unwrap();
    let mut kept = Vec::new();
    while let Some(Ok((request, mut respond))) = h2.accept().await {
        let attempt = seen.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        match first {
            First::Refuse if attempt == 1 => respond.send_reset(h2::Reason::REFUSED_STREAM),
            First::GoAwayProcessed if attempt == 1 => {
                h2.abrupt_shutdown(h2::Reason::NO_ERROR);
                kept.push((request, respond));
            }
            _ => {
                let text = format!("attempt {attempt} on connection {connection}");
                tokio::spawn(answer(request, respond, text));
            }
        }
    }
    hold_open((h2, kept)).await
}

/// Keeps a closed connection's socket until the test ends: dropping it with the request
/// unread would reset the TCP connection, and the client could lose the GOAWAY before
/// reading it.
async fn hold_open<T>(_connection: T) {
    std::future::pending::<()>().await
}

/// Waits, reading nothing, until `socket` holds the client's preface and a whole HEADERS
/// frame: the request has reached this server and h2 has not decoded it.
async fn wait_for_headers(socket: &tokio::net::TcpStream) {
    const PREFACE: usize = 24;
    const HEADERS: u8 = 0x1;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = socket.peek(&mut buf).await.unwrap();
        assert!(n > 0, "the client closed the connection");
        let mut at = PREFACE;
        while at + 9 <= n {
            let length = usize::from(buf[at]) << 16
                | usize::from(buf[at + 1]) << 8
                | usize::from(buf[at + 2]);
            if buf[at + 3] == HEADERS && at + 9 + length <= n {
                return;
            }
            at += 9 + length;
        }
        assert!(n < buf.len(), "no HEADERS frame in the first {n} bytes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads the request to its end and answers it with a gRPC success carrying `text`.
async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    text: String,
) {
    use prost::Message as _;
    let mut body = request.into_body();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let message = EchoResponse {
        text,
        ..Default::default()
    }
    .encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let head = http::Response::builder()
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let Ok(mut stream) = respond.send_response(head, false) else {
        return;
    };
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let _ = stream.send_data(frame.into(), false);
    let _ = stream.send_trailers(trailers);
}

/// A gRPC client of `addr` with no retry policy.
fn raw_client(addr: std::net::SocketAddr) -> (Client, TestServiceClient) {
    let raw = Client::h2c(&format!("http://{addr}"))
        .unwrap()
        .with_config(ClientConfig::default().protocol(Protocol::Grpc));
    (raw.clone(), TestServiceClient::new(raw))
}

#[tokio::test]
async fn a_refused_stream_is_retried_once_transparently() {
    let (addr, seen) = raw_h2_server(First::Refuse).await;
    let (raw, client) = raw_client(addr);
    // No retry policy: the refused stream is retried anyway, on the same connection, and the
    // second attempt's answer is the call's.
    let reply = client.echo(hello()).await.unwrap();
    assert_eq!(reply.message().text, "attempt 2 on connection 1");
    assert_eq!(seen.counts(), (1, 2));
    let counts = raw.retry_counts();
    assert_eq!((counts.calls, counts.transparent_retries), (0, 1));
}

#[tokio::test]
async fn a_stream_cut_by_goaway_before_processing_is_retried_once_transparently() {
    let (addr, seen) = raw_h2_server(First::GoAwayUnprocessed).await;
    let (raw, client) = raw_client(addr);
    // No retry policy: the server's GOAWAY says it processed no stream, so the request, sent
    // and received, is retried on a new connection.
    let reply = client.echo(hello()).await.unwrap();
    assert_eq!(reply.message().text, "attempt 2 on connection 2");
    assert_eq!(seen.counts(), (2, 2));
    let counts = raw.retry_counts();
    assert_eq!(
        (counts.calls, counts.retries, counts.transparent_retries),
        (0, 0, 1)
    );
}

#[tokio::test]
async fn a_stream_the_goaway_says_was_processed_is_not_retried() {
    let (addr, seen) = raw_h2_server(First::GoAwayProcessed).await;
    let (raw, client) = raw_client(addr);
    // The GOAWAY covers the request's stream, then the connection closes under it: the
    // service may have run, so the failure is the call's.
    let error = client.echo(hello()).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert_eq!(seen.counts(), (1, 1));
    assert_eq!(raw.retry_counts().transparent_retries, 0);
}

fn words() -> impl futures_util::Stream<Item = EchoRequest> + Send + 'static {
    futures_util::stream::iter(["every", "message", "again"].map(text))
}

#[tokio::test]
async fn a_client_stream_is_replayed_whole_on_a_retry() {
    for protocol in PROTOCOLS {
        let flaky = Flaky::new(1, Code::Unavailable);
        let server = serve(&flaky).await;
        let (raw, client) = connect(
            &server,
            protocol,
            ClientConfig::default().retry(fast_policy()),
        );
        let reply = client
            .client_stream(Request::new(words()))
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        // The second attempt got every message of the stream again.
        assert_eq!(reply.message().text, "every message again", "{protocol:?}");
        assert_eq!(
            flaky.previous_attempts(),
            [None, Some("1".to_owned())],
            "{protocol:?}"
        );
        assert_eq!(raw.retry_counts().retries, 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_client_stream_larger_than_the_replay_limit_is_not_retried() {
    let flaky = Flaky::new(1, Code::Unavailable);
    let server = serve(&flaky).await;
    // The three messages take more than 8 bytes encoded.
    let policy = fast_policy().max_replay_bytes(8);
    let (_, client) = connect(
        &server,
        Protocol::Grpc,
        ClientConfig::default().retry(policy),
    );
    let error = client
        .client_stream(Request::new(words()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(flaky.previous_attempts().len(), 1);
    server.stop().await;
}

/// A request stream the test feeds as it goes.
fn fed() -> (
    tokio::sync::mpsc::UnboundedSender<EchoRequest>,
    impl futures_util::Stream<Item = EchoRequest> + Send + 'static,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    (
        tx,
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)),
    )
}

fn text(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_bidi_stream_is_replayed_when_it_fails_before_its_first_reply_and_then_goes_on() {
    for protocol in PROTOCOLS {
        let flaky = Flaky::new(1, Code::Unavailable);
        let server = serve(&flaky).await;
        let (raw, client) = connect(
            &server,
            protocol,
            ClientConfig::default().retry(fast_policy()),
        );
        let (requests, stream) = fed();
        // The call is handed back at once; the caller then talks in turns.
        let mut replies = client
            .bidi(Request::new(stream))
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"))
            .into_message();
        for word in ["every", "message", "go"] {
            requests.send(text(word)).unwrap();
        }
        // The first attempt failed after reading all three; the second got them again.
        for word in ["every", "message", "go"] {
            let reply = replies.next().await.unwrap();
            assert_eq!(reply.unwrap().text, word, "{protocol:?}");
        }
        // The committed stream goes on with what is sent after the retry.
        requests.send(text("again")).unwrap();
        assert_eq!(replies.next().await.unwrap().unwrap().text, "again");
        drop(requests);
        assert!(replies.next().await.is_none(), "{protocol:?}");
        assert_eq!(
            flaky.previous_attempts(),
            [None, Some("1".to_owned())],
            "{protocol:?}"
        );
        assert_eq!(raw.retry_counts().retries, 1, "{protocol:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_bidi_stream_is_not_retried_after_its_first_reply() {
    for protocol in PROTOCOLS {
        let flaky = Flaky::new(1, Code::Unavailable);
        let server = serve(&flaky).await;
        let (raw, client) = connect(
            &server,
            protocol,
            ClientConfig::default().retry(fast_policy()),
        );
        let mut replies = client
            .bidi(Request::new(futures_util::stream::iter([text(
                "fail-after-reply",
            )])))
            .await
            .unwrap()
            .into_message();
        // Committed by the first reply: the failure after it is the caller's to see.
        let reply = replies.next().await.unwrap();
        assert_eq!(reply.unwrap().text, "fail-after-reply", "{protocol:?}");
        let error = replies.next().await.unwrap().unwrap_err();
        assert_eq!(error.code(), Code::Unavailable, "{protocol:?}");
        assert_eq!(flaky.previous_attempts(), [None], "{protocol:?}");
        assert_eq!(raw.retry_counts().retries, 0, "{protocol:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_bidi_stream_without_a_policy_or_over_the_replay_limit_is_not_retried() {
    let policies = [None, Some(fast_policy().max_replay_bytes(8))];
    for policy in policies {
        let flaky = Flaky::new(1, Code::Unavailable);
        let server = serve(&flaky).await;
        let config = match &policy {
            Some(policy) => ClientConfig::default().retry(policy.clone()),
            None => ClientConfig::default(),
        };
        let (_, client) = connect(&server, Protocol::Grpc, config);
        // "every", "message" and "go" take more than 8 bytes encoded.
        let words = ["every", "message", "go"].map(text);
        let mut replies = client
            .bidi(Request::new(futures_util::stream::iter(words)))
            .await
            .unwrap()
            .into_message();
        let error = replies.next().await.unwrap().unwrap_err();
        assert_eq!(error.code(), Code::Unavailable, "{policy:?}");
        assert_eq!(flaky.previous_attempts().len(), 1, "{policy:?}");
        server.stop().await;
    }
}
