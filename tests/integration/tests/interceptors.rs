//! Interceptors that wrap the call, on both sides, for every stream shape on every protocol.
//!
//! The server stacks a router-wide interceptor (`Stamp`: changes request and response
//! messages, adds a response header, refuses a forbidden message, writes a trailer counted
//! over the whole call and redacts internal errors from its end hook) outside a service-level
//! one (`Authenticate`: bearer token or client certificate to an `Identity` in the handler's
//! extensions, `unauthenticated` otherwise). The health service on the same router needs no
//! token. The client adds the token and changes each request from an interceptor of its own,
//! and records each call's end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use http::HeaderValue;
use switchboard::client::{Client, ClientConfig, HttpTransport};
use switchboard::interceptor::{self, Call, Interceptor, Next, Reply};
use switchboard::server::{Router, Server, ServerConfig};
use switchboard::{Code, Error, Protocol, Request, Response, ResponseStream, Streaming};
use switchboard_health::{HealthCheckRequest, HealthClient, ServingStatus};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, TestServer, mutual_tls, start_router};

/// Who is calling, as `Authenticate` established it.
#[derive(Clone, Debug)]
struct Identity(String);

/// Bearer `token-<name>` or a verified client certificate, else `unauthenticated`.
struct Authenticate;

impl Interceptor for Authenticate {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Error> {
        let from_token = call
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer token-"))
            .map(str::to_owned);
        let from_certificate = call
            .peer()
            .and_then(|peer| peer.certificates())
            .map(|chain| format!("mtls:{}", chain.len()));
        let Some(name) = from_token.or(from_certificate) else {
            return Err(Error::new(Code::Unauthenticated, "who are you?"));
        };
        // A stand-in for an asynchronous lookup.
        tokio::task::yield_now().await;
        call.extensions_mut().insert(Identity(name));
        next.run(call).await
    }
}

/// Router-wide: transforms messages both ways, stamps the reply, counts the whole call into
/// a trailer, refuses "forbidden" messages and redacts internal errors.
struct Stamp;

impl Interceptor for Stamp {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Error> {
        call.on_message(|message| {
            if let Some(request) = message.downcast_mut::<EchoRequest>() {
                if request.text.ends_with("forbidden") {
                    return Err(Error::new(Code::PermissionDenied, "a forbidden message"));
                }
                request.text = request.text.to_uppercase();
            }
            Ok(())
        });
        call.on_end(|end| {
            let (received, sent) = end.messages();
            if let Some(trailers) = end.trailers_mut() {
                let value = HeaderValue::from_str(&format!("{received}/{sent}")).unwrap();
                trailers.insert("x-messages", value);
            }
            if end.error().is_some_and(|e| e.code() == Code::Internal) {
                end.set_error(Some(Error::new(Code::Unknown, "redacted")));
            }
        });
        let mut reply = next.run(call).await?;
        reply
            .headers_mut()
            .insert("x-stamp", HeaderValue::from_static("outer"));
        reply.on_headers(|headers| {
            headers.insert("x-stamp-hook", HeaderValue::from_static("1"));
        });
        reply.on_message(|message| {
            if let Some(response) = message.downcast_mut::<EchoResponse>() {
                response.text.push('!');
            }
            Ok(())
        });
        Ok(reply)
    }
}

/// The test service, answering with the caller's identity before each text; counts the calls
/// that reached it.
#[derive(Clone)]
struct Guarded(Arc<AtomicUsize>);

impl Guarded {
    fn identity<T>(&self, request: &Request<T>) -> Result<String, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        request
            .extensions()
            .get::<Identity>()
            .map(|identity| identity.0.clone())
            .ok_or_else(|| Error::internal("no identity in the extensions"))
    }
}

fn signed<T>(
    who: &str,
    mut response: Response<T>,
    text: impl Fn(&mut T) -> &mut String,
) -> Response<T> {
    let text = text(response.message_mut());
    *text = format!("{who}:{text}");
    response
}

fn signed_stream(
    who: String,
    response: Response<ResponseStream<EchoResponse>>,
) -> Response<ResponseStream<EchoResponse>> {
    response.map(|stream| {
        Box::pin(stream.map(move |item| {
            item.map(|mut message| {
                message.text = format!("{who}:{}", message.text);
                message
            })
        })) as ResponseStream<EchoResponse>
    })
}

impl TestService for Guarded {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let who = self.identity(&request)?;
        let response = TestServer.echo(request).await?;
        Ok(signed(&who, response, |m| &mut m.text))
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let who = self.identity(&request)?;
        Ok(signed_stream(who, TestServer.server_stream(request).await?))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Error> {
        let who = self.identity(&request)?;
        let response = TestServer.client_stream(request).await?;
        Ok(signed(&who, response, |m| &mut m.text))
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let who = self.identity(&request)?;
        Ok(signed_stream(who, TestServer.bidi(request).await?))
    }
}

/// A router with `Stamp` everywhere, `Authenticate` on the test service only, and health.
fn router(entered: Arc<AtomicUsize>) -> Router {
    let (reporter, health) = switchboard_health::health();
    reporter.set_serving("");
    Router::new()
        .with_config(ServerConfig::default().interceptor(Stamp))
        .add_service_with(
            TestServiceServer::new(Guarded(entered)),
            ServerConfig::default().interceptor(Authenticate),
        )
        .add_service(health)
}

/// One call's end on the client: method, code (`None`: completed), (received, sent).
type Ended = (String, Option<Code>, (u64, u64));

/// A client interceptor: the token (when given), a `c` before every request text, and each
/// call's end into `ends`.
fn client_side(token: Option<&'static str>, ends: Arc<Mutex<Vec<Ended>>>) -> impl Interceptor {
    interceptor::from_fn(move |mut call: Call, next: Next| {
        let ends = ends.clone();
        async move {
            if let Some(token) = token {
                let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
                call.headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
            }
            call.on_message(|message| {
                if let Some(request) = message.downcast_mut::<EchoRequest>() {
                    request.text.insert(0, 'c');
                }
                Ok(())
            });
            let method = call
                .spec()
                .procedure()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
            call.on_end(move |end| {
                let code = end.error().map(Error::code);
                ends.lock().unwrap().push((method, code, end.messages()));
            });
            let mut reply = next.run(call).await?;
            // Runs when the headers are known: for bidi, after the call has returned.
            reply.on_headers(|headers| {
                let stamped = if headers.contains_key("x-stamp") {
                    "yes"
                } else {
                    "no"
                };
                headers.insert("x-client-saw-stamp", HeaderValue::from_static(stamped));
            });
            Ok(reply)
        }
    })
}

fn client(
    url: &str,
    protocol: Protocol,
    h2c: bool,
    token: Option<&'static str>,
) -> (TestServiceClient, Arc<Mutex<Vec<Ended>>>) {
    let ends = Arc::new(Mutex::new(Vec::new()));
    let base = if h2c {
        Client::h2c(url)
    } else {
        Client::http1(url)
    }
    .unwrap();
    let config = ClientConfig::default()
        .protocol(protocol)
        .interceptor(client_side(token, ends.clone()));
    (TestServiceClient::new(base.with_config(config)), ends)
}

fn echo(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

fn texts(items: &[&str]) -> Request<futures_util::stream::Iter<std::vec::IntoIter<EchoRequest>>> {
    Request::new(futures_util::stream::iter(
        items.iter().map(|t| echo(t)).collect::<Vec<_>>(),
    ))
}

fn trailer<'a>(trailers: Option<&'a http::HeaderMap>, name: &str) -> Option<&'a str> {
    trailers?.get(name)?.to_str().ok()
}

/// Every shape through both chains; returns the texts seen, for the caller to compare.
async fn every_shape(client: &TestServiceClient, what: &str) {
    let unary = client
        .echo(echo("hi"))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(unary.message().text, "ada:CHI!", "{what}");
    assert_eq!(unary.headers().get("x-stamp").unwrap(), "outer", "{what}");
    assert_eq!(
        unary.headers().get("x-client-saw-stamp").unwrap(),
        "yes",
        "{what}"
    );
    assert_eq!(
        trailer(Some(unary.trailers()), "x-messages"),
        Some("1/1"),
        "{what}"
    );

    let mut request = echo("s");
    request.repeat = 3;
    let response = client.server_stream(request).await.unwrap();
    assert_eq!(
        response.headers().get("x-stamp").unwrap(),
        "outer",
        "{what}"
    );
    let mut stream = response.into_message();
    let mut seen = Vec::new();
    while let Some(item) = stream
        .message()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    {
        seen.push(item.text);
    }
    assert_eq!(seen, ["ada:CS!"; 3], "{what}");
    assert_eq!(
        trailer(stream.trailers(), "x-messages"),
        Some("1/3"),
        "{what}"
    );

    let response = client
        .client_stream(texts(&["a", "b", "c"]))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(response.message().text, "ada:CACBCC!", "{what}");
    assert_eq!(
        response.headers().get("x-stamp").unwrap(),
        "outer",
        "{what}"
    );
    assert_eq!(
        trailer(Some(response.trailers()), "x-messages"),
        Some("3/1"),
        "{what}"
    );

    let mut stream = client
        .bidi(texts(&["a", "b", "c"]))
        .await
        .unwrap()
        .into_message();
    let mut seen = Vec::new();
    while let Some(item) = stream
        .message()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    {
        seen.push(item.text);
    }
    assert_eq!(seen, ["ada:CA!", "ada:CB!", "ada:CC!"], "{what}");
    assert_eq!(
        stream.headers().await.unwrap().get("x-stamp").unwrap(),
        "outer",
        "{what}"
    );
    assert_eq!(
        trailer(stream.trailers(), "x-messages"),
        Some("3/3"),
        "{what}"
    );
}

const PROTOCOLS: [Protocol; 3] = [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb];

#[tokio::test]
async fn every_shape_on_every_protocol_through_both_chains() {
    let entered = Arc::new(AtomicUsize::new(0));
    let server = start_router(router(entered.clone())).await;
    for protocol in PROTOCOLS {
        for h2c in [true, false] {
            if protocol == Protocol::Grpc && !h2c {
                continue;
            }
            let what = format!("{protocol:?} h2c={h2c}");
            let (client, ends) = client(&server.url(), protocol, h2c, Some("token-ada"));
            every_shape(&client, &what).await;
            // Each call ended exactly once, completed, with this side's counts.
            let ends = ends.lock().unwrap().clone();
            let expected: Vec<Ended> = vec![
                ("Echo".into(), None, (1, 1)),
                ("ServerStream".into(), None, (3, 1)),
                ("ClientStream".into(), None, (1, 3)),
                ("Bidi".into(), None, (3, 3)),
            ];
            assert_eq!(ends, expected, "{what}");
        }
    }
    assert_eq!(entered.load(Ordering::SeqCst), 5 * 4);
    server.stop().await;
}

#[tokio::test]
async fn a_refusal_before_next_is_each_protocols_error_and_the_handler_never_runs() {
    let entered = Arc::new(AtomicUsize::new(0));
    let server = start_router(router(entered.clone())).await;
    for protocol in PROTOCOLS {
        let what = format!("{protocol:?}");
        let (client, ends) = client(&server.url(), protocol, true, None);
        let unary = client.echo(echo("hi")).await.unwrap_err();
        assert_eq!(unary.code(), Code::Unauthenticated, "{what}: {unary}");
        assert_eq!(unary.message(), "who are you?", "{what}");
        let error = match client.server_stream(echo("s")).await {
            Err(error) => error,
            Ok(response) => response.into_message().message().await.unwrap_err(),
        };
        assert_eq!(error.code(), Code::Unauthenticated, "{what}: {error}");
        let error = client.client_stream(texts(&["a"])).await.unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated, "{what}: {error}");
        let mut bidi = client.bidi(texts(&["a"])).await.unwrap().into_message();
        let error = bidi.message().await.unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated, "{what}: {error}");
        let codes: Vec<_> = ends.lock().unwrap().iter().map(|e| e.1).collect();
        assert_eq!(codes, [Some(Code::Unauthenticated); 4], "{what}");

        // Health is on the same router, outside `Authenticate`'s scope.
        let health = HealthClient::new(
            Client::h2c(&server.url())
                .unwrap()
                .with_config(ClientConfig::default().protocol(protocol)),
        );
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("{what}: health needs no token: {e}"));
        assert_eq!(status.message().status(), ServingStatus::Serving);
    }
    assert_eq!(entered.load(Ordering::SeqCst), 0, "no handler ran");
    server.stop().await;
}

#[tokio::test]
async fn a_message_hook_refusing_the_third_message_fails_the_call() {
    let server = start_router(router(Arc::default())).await;
    for protocol in PROTOCOLS {
        let what = format!("{protocol:?}");
        let (client, _) = client(&server.url(), protocol, true, Some("token-ada"));
        let error = client
            .client_stream(texts(&["a", "b", "forbidden", "d"]))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::PermissionDenied, "{what}: {error}");
        let mut stream = client
            .bidi(texts(&["a", "b", "forbidden", "d"]))
            .await
            .unwrap()
            .into_message();
        assert_eq!(stream.message().await.unwrap().unwrap().text, "ada:CA!");
        assert_eq!(stream.message().await.unwrap().unwrap().text, "ada:CB!");
        let error = stream.message().await.unwrap_err();
        assert_eq!(error.code(), Code::PermissionDenied, "{what}: {error}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_end_hook_changes_the_status_the_peer_receives() {
    let server = start_router(router(Arc::default())).await;
    for protocol in PROTOCOLS {
        let what = format!("{protocol:?}");
        let (client, _) = client(&server.url(), protocol, true, Some("token-ada"));
        let mut request = echo("hi");
        request.fail_code = Code::Internal as i32;
        request.fail_message = "secret stack trace".into();
        let error = client.echo(request.clone()).await.unwrap_err();
        assert_eq!(
            (error.code(), error.message()),
            (Code::Unknown, "redacted"),
            "{what}"
        );

        request.repeat = 2;
        request.fail_after_stream = true;
        let mut stream = client.server_stream(request).await.unwrap().into_message();
        assert_eq!(stream.message().await.unwrap().unwrap().text, "ada:CHI!");
        assert_eq!(stream.message().await.unwrap().unwrap().text, "ada:CHI!");
        let error = stream.message().await.unwrap_err();
        assert_eq!(
            (error.code(), error.message()),
            (Code::Unknown, "redacted"),
            "{what}"
        );
    }
    server.stop().await;
}

/// Three interceptors logging each step: the order is an onion.
#[tokio::test]
async fn interceptors_nest_in_the_order_added() {
    type Log = Arc<Mutex<Vec<String>>>;
    fn logging(name: &'static str, log: Log) -> impl Interceptor {
        interceptor::from_fn(move |mut call: Call, next: Next| {
            let log = log.clone();
            async move {
                let note = |what: &str| log.lock().unwrap().push(format!("{name} {what}"));
                note("before");
                let (request_log, end_log) = (log.clone(), log.clone());
                call.on_message(move |_| {
                    request_log.lock().unwrap().push(format!("{name} request"));
                    Ok(())
                });
                call.on_end(move |_| end_log.lock().unwrap().push(format!("{name} end")));
                let mut reply = next.run(call).await?;
                note("after");
                let response_log = log.clone();
                reply.on_message(move |_| {
                    response_log
                        .lock()
                        .unwrap()
                        .push(format!("{name} response"));
                    Ok(())
                });
                Ok(reply)
            }
        })
    }
    for side in ["server", "client"] {
        let log = Log::default();
        let chained = |config: ServerConfig| {
            config
                .interceptor(logging("A", log.clone()))
                .interceptor(logging("B", log.clone()))
        };
        let (server, client_config) = if side == "server" {
            (
                start_router(
                    Router::new()
                        .with_config(chained(ServerConfig::default()))
                        .add_service(TestServiceServer::new(TestServer)),
                )
                .await,
                ClientConfig::default(),
            )
        } else {
            (
                start_router(Router::new().add_service(TestServiceServer::new(TestServer))).await,
                ClientConfig::default()
                    .interceptor(logging("A", log.clone()))
                    .interceptor(logging("B", log.clone())),
            )
        };
        let client = TestServiceClient::new(
            Client::h2c(&server.url())
                .unwrap()
                .with_config(client_config),
        );
        client.echo(echo("hi")).await.unwrap();
        let log = log.lock().unwrap().clone();
        let expected = [
            "A before",
            "B before",
            "A request",
            "B request",
            "B after",
            "A after",
            "B response",
            "A response",
            "B end",
            "A end",
        ];
        assert_eq!(log, expected, "{side}");
        server.stop().await;
    }
}

#[tokio::test]
async fn an_interceptor_can_answer_without_next() {
    let entered = Arc::new(AtomicUsize::new(0));
    let server = start_router(router(entered.clone())).await;
    let cache = interceptor::from_fn(|mut call: Call, next: Next| async move {
        let cached = call
            .message_mut::<EchoRequest>()
            .is_some_and(|request| request.text == "cached");
        if cached {
            return Ok(Reply::new(EchoResponse {
                text: "from the cache".into(),
                ..Default::default()
            }));
        }
        next.run(call).await
    });
    let client = TestServiceClient::new(
        Client::h2c(&server.url())
            .unwrap()
            .with_config(ClientConfig::default().interceptor(cache)),
    );
    let response = client.echo(echo("cached")).await.unwrap();
    assert_eq!(response.message().text, "from the cache");
    // A one-message answer to a streaming call is a bug in the interceptor, said plainly.
    let error = client.server_stream(echo("cached")).await.unwrap_err();
    assert_eq!(error.code(), Code::Internal, "{error}");
    assert_eq!(
        entered.load(Ordering::SeqCst),
        0,
        "the server was never called"
    );

    // The same on the server: Stamp still wraps the cached answer.
    let answering = Router::new().add_service_with(
        TestServiceServer::new(Guarded(entered.clone())),
        ServerConfig::default().interceptor(interceptor::from_fn(
            |_call: Call, _next: Next| async {
                Ok(Reply::new(EchoResponse {
                    text: "canned".into(),
                    ..Default::default()
                }))
            },
        )),
    );
    let canned =
        start_router(answering.with_config(ServerConfig::default().interceptor(Stamp))).await;
    let client = TestServiceClient::new(Client::h2c(&canned.url()).unwrap());
    assert_eq!(
        client.echo(echo("x")).await.unwrap().message().text,
        "canned!"
    );
    assert_eq!(entered.load(Ordering::SeqCst), 0);
    server.stop().await;
    canned.stop().await;
}

#[tokio::test]
async fn interceptors_run_under_the_deadline_and_the_end_is_seen_once() {
    let ends: Arc<Mutex<Vec<Option<Code>>>> = Arc::default();
    let recorded = ends.clone();
    let slow = interceptor::from_fn(move |mut call: Call, next: Next| {
        let recorded = recorded.clone();
        async move {
            call.on_end(move |end| recorded.lock().unwrap().push(end.error().map(Error::code)));
            tokio::time::sleep(Duration::from_secs(5)).await;
            next.run(call).await
        }
    });
    let server = start_router(
        Router::new()
            .with_config(ServerConfig::default().interceptor(slow))
            .add_service(TestServiceServer::new(TestServer)),
    )
    .await;
    // The deadline travels as the protocol's header, and only the server enforces it here
    // (the client sets no timeout of its own), so the end is the server's doing.
    let client = TestServiceClient::new(Client::h2c(&server.url()).unwrap());
    let request = Request::new(echo("hi")).with_header(
        http::HeaderName::from_static("connect-timeout-ms"),
        HeaderValue::from_static("200"),
    );
    let error = client.echo(request).await.unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error}");
    // The end ran before the reply was written: already recorded, once.
    assert_eq!(*ends.lock().unwrap(), [Some(Code::DeadlineExceeded)]);
    server.stop().await;
}

/// Fifty concurrent streams on one connection, each with its own count.
#[tokio::test]
async fn concurrent_streams_keep_their_own_state() {
    let server = start_router(router(Arc::default())).await;
    let (client, ends) = client(&server.url(), Protocol::Grpc, true, Some("token-ada"));
    let calls = (0..50).map(|i| {
        let client = client.clone();
        async move {
            let n = i % 5 + 1;
            let items: Vec<_> = (0..n).map(|j| echo(&format!("{i}.{j}"))).collect();
            let mut stream = client
                .bidi(Request::new(futures_util::stream::iter(items)))
                .await
                .unwrap()
                .into_message();
            let mut seen = 0;
            while let Some(item) = stream.message().await.unwrap() {
                assert_eq!(item.text, format!("ada:C{i}.{seen}!"));
                seen += 1;
            }
            assert_eq!(seen, n);
            let expected = format!("{n}/{n}");
            assert_eq!(trailer(stream.trailers(), "x-messages"), Some(&*expected));
        }
    });
    futures_util::future::join_all(calls).await;
    assert_eq!(ends.lock().unwrap().len(), 50);
    server.stop().await;
}

#[tokio::test]
async fn the_identity_comes_from_the_client_certificate_on_every_protocol() {
    let (tls, roots) = mutual_tls();
    let server = Running::serve(Server::new(router(Arc::default())).with_tls(tls)).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    for protocol in PROTOCOLS {
        let base = Client::new(&url, HttpTransport::tls(roots.clone()))
            .unwrap()
            .with_config(ClientConfig::default().protocol(protocol));
        let client = TestServiceClient::new(base);
        let response = client.echo(echo("hi")).await.unwrap();
        assert_eq!(response.message().text, "mtls:1:HI!", "{protocol:?}");
        let mut stream = client.bidi(texts(&["a"])).await.unwrap().into_message();
        assert_eq!(stream.message().await.unwrap().unwrap().text, "mtls:1:A!");
    }
    server.stop().await;
}

/// `applies_to` narrows an interceptor to some methods: on the server once per method when the
/// service is added, on the client on every call.
#[tokio::test]
async fn applies_to_narrows_an_interceptor_to_methods() {
    struct OnlyEcho(&'static str);
    impl Interceptor for OnlyEcho {
        async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Error> {
            let mut reply = next.run(call).await?;
            reply
                .headers_mut()
                .insert(self.0, HeaderValue::from_static("1"));
            Ok(reply)
        }
        fn applies_to(&self, spec: &switchboard::Spec) -> bool {
            spec.procedure().ends_with("/Echo")
        }
    }
    let server = start_router(
        Router::new()
            .with_config(ServerConfig::default().interceptor(OnlyEcho("x-server")))
            .add_service(TestServiceServer::new(TestServer)),
    )
    .await;
    let config = ClientConfig::default().interceptor(OnlyEcho("x-client"));
    let client = TestServiceClient::new(Client::h2c(&server.url()).unwrap().with_config(config));
    let unary = client.echo(echo("hi")).await.unwrap();
    assert!(unary.headers().contains_key("x-server"));
    assert!(unary.headers().contains_key("x-client"));
    let stream = client.server_stream(echo("s")).await.unwrap();
    assert!(!stream.headers().contains_key("x-server"));
    assert!(!stream.headers().contains_key("x-client"));
    server.stop().await;
}
