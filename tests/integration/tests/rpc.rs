//! Every RPC kind, codec, compression, GET, timeouts, errors and metadata, over real sockets
//! with HTTP/1.1 and h2c.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use http::HeaderValue;
use switchboard::client::{Client, ClientConfig};
use switchboard::codec::Codec;
use switchboard::compression::{CompressionPolicy, CompressionRegistry};
use switchboard::interceptor::{BoxFuture, CallInfo, Direction, EndSummary, Hooks};
use switchboard::server::ServerConfig;
use switchboard::{Code, Request};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start;

fn client(url: &str, h2c: bool, config: ClientConfig) -> TestServiceClient {
    let base = if h2c {
        Client::h2c(url)
    } else {
        Client::http1(url)
    }
    .expect("client");
    TestServiceClient::new(base.with_config(config))
}

fn req(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

const TRANSPORTS: [bool; 2] = [false, true];
const CODECS: [Codec; 2] = [Codec::Proto, Codec::Json];

#[tokio::test]
async fn every_rpc_kind_over_each_http_version_and_codec() {
    let server = start(ServerConfig::default()).await;
    for h2c in TRANSPORTS {
        for codec in CODECS {
            let what = format!("h2c={h2c} codec={codec:?}");
            let client = client(&server.url(), h2c, ClientConfig::default().codec(codec));

            let unary = client.echo(req("hello")).await.expect(&what);
            assert_eq!(unary.message().text, "hello", "{what}");

            let mut stream = client
                .server_stream(EchoRequest {
                    repeat: 3,
                    ..req("s")
                })
                .await
                .expect(&what)
                .into_message();
            let mut counts = Vec::new();
            while let Some(item) = stream.message().await.expect(&what) {
                counts.push(item.count);
            }
            assert_eq!(counts, vec![0, 1, 2], "{what}");

            let upload = futures_util::stream::iter(vec![req("a"), req("b"), req("c")]);
            let total = client
                .client_stream(Request::new(upload))
                .await
                .expect(&what);
            assert_eq!(total.message().text, "abc", "{what}");
            assert_eq!(total.message().count, 3, "{what}");

            let chat = futures_util::stream::iter(vec![req("x"), req("y")]);
            let replies: Vec<_> = client
                .bidi(Request::new(chat))
                .await
                .expect(&what)
                .into_message()
                .map(|r| r.expect("bidi reply").text)
                .collect()
                .await;
            assert_eq!(replies, vec!["x", "y"], "{what}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn bidi_is_full_duplex_over_h2c() {
    let server = start(ServerConfig::default()).await;
    let client = client(&server.url(), true, ClientConfig::default());
    let (tx, rx) = tokio::sync::mpsc::channel::<EchoRequest>(1);
    let requests =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    tx.send(req("ping-1")).await.unwrap();
    let mut replies = client
        .bidi(Request::new(requests))
        .await
        .expect("bidi")
        .into_message();
    // The first reply arrives while the request stream is still open.
    assert_eq!(replies.message().await.unwrap().unwrap().text, "ping-1");
    tx.send(req("ping-2")).await.unwrap();
    assert_eq!(replies.message().await.unwrap().unwrap().text, "ping-2");
    drop(tx);
    assert!(replies.message().await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn every_compression_round_trips() {
    let server =
        start(ServerConfig::default().compression_policy(CompressionPolicy { min_bytes: 0 })).await;
    let registry = CompressionRegistry::with_defaults();
    for name in registry.names() {
        for h2c in TRANSPORTS {
            let only = CompressionRegistry::with_defaults();
            let mut only_this = CompressionRegistry::empty();
            only_this.register_arc(only.get(name).unwrap().clone());
            let config = ClientConfig::default()
                .accept_compression(only_this)
                .send_compression(name)
                .compression_policy(CompressionPolicy { min_bytes: 0 });
            let client = client(&server.url(), h2c, config);
            let big = EchoRequest {
                payload: vec![7; 64 * 1024],
                response_size: 64 * 1024,
                ..req(name)
            };
            let unary = client
                .echo(big.clone())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(unary.message().payload.len(), 64 * 1024);
            let stream: Vec<_> = client
                .server_stream(EchoRequest {
                    repeat: 2,
                    ..big.clone()
                })
                .await
                .unwrap()
                .into_message()
                .collect()
                .await;
            assert_eq!(stream.len(), 2);
            assert!(
                stream
                    .iter()
                    .all(|r| r.as_ref().unwrap().payload.len() == 64 * 1024)
            );
            let upload = futures_util::stream::iter(vec![big.clone(), big]);
            assert_eq!(
                client
                    .client_stream(Request::new(upload))
                    .await
                    .unwrap()
                    .message()
                    .count,
                2
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn unary_get_for_side_effect_free_methods() {
    let server = start(ServerConfig::default()).await;
    for codec in CODECS {
        for compress in [false, true] {
            let mut config = ClientConfig::default().codec(codec).use_get(true);
            if compress {
                config = config
                    .send_compression("gzip")
                    .compression_policy(CompressionPolicy { min_bytes: 0 });
            }
            let client = client(&server.url(), false, config);
            let response = client.echo(req("via get")).await.expect("GET");
            assert_eq!(response.message().text, "via get");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn deadlines_are_sent_enforced_and_visible() {
    let server = start(ServerConfig::default()).await;
    for h2c in TRANSPORTS {
        let client = client(&server.url(), h2c, ClientConfig::default());
        let slow = Request::new(EchoRequest {
            sleep_ms: 2_000,
            ..req("slow")
        })
        .with_timeout(Duration::from_millis(150));
        let err = client.echo(slow).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");

        let seen = client
            .echo(Request::new(req("fast")).with_timeout(Duration::from_secs(5)))
            .await
            .unwrap();
        let ms = seen.message().timeout_ms;
        assert!(ms > 0 && ms <= 5_000, "handler saw {ms} ms");
        assert_eq!(
            client.echo(req("none")).await.unwrap().message().timeout_ms,
            -1
        );

        let stream = Request::new(EchoRequest {
            repeat: 50,
            sleep_ms: 50,
            ..req("slow stream")
        })
        .with_timeout(Duration::from_millis(300));
        let mut messages = client.server_stream(stream).await.unwrap().into_message();
        let mut got = 0;
        let err = loop {
            match messages.message().await {
                Ok(Some(_)) => got += 1,
                Ok(None) => panic!("stream should not end cleanly"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
        assert!(got < 50);
    }
    server.stop().await;
}

#[tokio::test]
async fn errors_with_details_and_metadata_round_trip() {
    let server = start(ServerConfig::default()).await;
    for h2c in TRANSPORTS {
        for codec in CODECS {
            let client = client(&server.url(), h2c, ClientConfig::default().codec(codec));
            let failing = EchoRequest {
                fail_code: Code::NotFound.as_i32(),
                fail_message: "no such thing".into(),
                fail_with_detail: true,
                ..req("x")
            };
            let check = |err: switchboard::Error| {
                assert_eq!(err.code(), Code::NotFound);
                assert_eq!(err.message(), "no such thing");
                assert!(err.is_wire());
                let detail: prost_types::Duration = err.details()[0].to_message().unwrap().unwrap();
                assert_eq!(
                    detail,
                    prost_types::Duration {
                        seconds: 42,
                        nanos: 7
                    }
                );
                assert_eq!(err.metadata().get("x-error-meta").unwrap(), "yes");
            };
            check(client.echo(failing.clone()).await.unwrap_err());
            let mut stream = client
                .server_stream(failing.clone())
                .await
                .unwrap()
                .into_message();
            check(stream.message().await.unwrap_err());
            let after = EchoRequest {
                repeat: 2,
                fail_after_stream: true,
                ..failing.clone()
            };
            let mut stream = client.server_stream(after).await.unwrap().into_message();
            assert!(stream.message().await.unwrap().is_some());
            assert!(stream.message().await.unwrap().is_some());
            check(stream.message().await.unwrap_err());
            let upload = futures_util::stream::iter(vec![failing.clone()]);
            check(
                client
                    .client_stream(Request::new(upload))
                    .await
                    .unwrap_err(),
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn headers_and_trailers_travel_both_ways() {
    let server = start(ServerConfig::default()).await;
    for h2c in TRANSPORTS {
        let client = client(&server.url(), h2c, ClientConfig::default());
        let mut message = req("meta");
        message.response_headers.insert("x-head".into(), "h".into());
        message
            .response_trailers
            .insert("x-tail".into(), "t".into());
        let request = Request::new(message.clone())
            .with_header("x-custom".parse().unwrap(), HeaderValue::from_static("c"));
        let response = client.echo(request).await.unwrap();
        assert_eq!(
            response
                .message()
                .request_headers
                .get("x-custom")
                .map(String::as_str),
            Some("c")
        );
        assert_eq!(response.headers().get("x-head").unwrap(), "h");
        assert_eq!(response.trailers().get("x-tail").unwrap(), "t");

        let streamed = client
            .server_stream(EchoRequest {
                repeat: 1,
                ..message.clone()
            })
            .await
            .unwrap();
        assert_eq!(streamed.headers().get("x-head").unwrap(), "h");
        let mut stream = streamed.into_message();
        while stream.message().await.unwrap().is_some() {}
        assert_eq!(stream.trailers().unwrap().get("x-tail").unwrap(), "t");

        let upload = futures_util::stream::iter(vec![message]);
        let response = client.client_stream(Request::new(upload)).await.unwrap();
        assert_eq!(response.trailers().get("x-tail").unwrap(), "t");
    }
    server.stop().await;
}

#[tokio::test]
async fn over_limit_messages_are_resource_exhausted_and_the_server_keeps_serving() {
    let server = start(ServerConfig::default().read_max_bytes(1024)).await;
    for h2c in TRANSPORTS {
        let client = client(&server.url(), h2c, ClientConfig::default());
        let big = EchoRequest {
            payload: vec![1; 4096],
            ..req("big")
        };
        assert_eq!(
            client.echo(big.clone()).await.unwrap_err().code(),
            Code::ResourceExhausted
        );
        let upload = futures_util::stream::iter(vec![big]);
        assert_eq!(
            client
                .client_stream(Request::new(upload))
                .await
                .unwrap_err()
                .code(),
            Code::ResourceExhausted
        );
        assert_eq!(
            client.echo(req("still here")).await.unwrap().message().text,
            "still here"
        );

        let small_reader = self::client(
            &server.url(),
            h2c,
            ClientConfig::default().read_max_bytes(100),
        );
        let err = small_reader
            .echo(EchoRequest {
                response_size: 1000,
                ..req("")
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
    }
    server.stop().await;
}

/// Records what it sees, and refuses calls carrying `x-deny`.
#[derive(Default)]
struct Recorder {
    starts: AtomicUsize,
    messages: AtomicUsize,
    ends: std::sync::Mutex<Vec<Option<Code>>>,
}

struct Shared(Arc<Recorder>);

impl Hooks for Shared {
    fn on_start<'a>(
        &'a self,
        info: &'a CallInfo,
        headers: &'a mut http::HeaderMap,
    ) -> BoxFuture<'a, Result<(), switchboard::Error>> {
        Box::pin(async move {
            assert!(
                info.spec
                    .procedure()
                    .starts_with("/switchboard.test.v1.TestService/")
            );
            self.0.starts.fetch_add(1, Ordering::SeqCst);
            if headers.contains_key("x-deny") {
                return Err(switchboard::Error::new(Code::PermissionDenied, "denied"));
            }
            headers.insert("x-intercepted", HeaderValue::from_static("1"));
            Ok(())
        })
    }

    fn on_message(
        &self,
        _info: &CallInfo,
        _direction: Direction,
        message: &(dyn std::any::Any + Send),
    ) -> Result<(), switchboard::Error> {
        assert!(
            message.downcast_ref::<EchoRequest>().is_some()
                || message.downcast_ref::<EchoResponse>().is_some()
        );
        self.0.messages.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn on_end<'a>(&'a self, _info: &'a CallInfo, end: &'a EndSummary) -> BoxFuture<'a, ()> {
        self.0
            .ends
            .lock()
            .unwrap()
            .push(end.error.as_ref().map(|e| e.code()));
        Box::pin(async {})
    }
}

#[tokio::test]
async fn interceptors_see_calls_messages_and_ends_on_both_sides() {
    let server_side = Arc::new(Recorder::default());
    let server = start(ServerConfig::default().hooks(Shared(server_side.clone()))).await;
    let client_side = Arc::new(Recorder::default());
    let client = client(
        &server.url(),
        true,
        ClientConfig::default().hooks(Shared(client_side.clone())),
    );

    let response = client.echo(req("seen")).await.unwrap();
    assert_eq!(
        response
            .message()
            .request_headers
            .get("x-intercepted")
            .map(String::as_str),
        Some("1")
    );
    let denied = Request::new(req("no"))
        .with_header("x-deny".parse().unwrap(), HeaderValue::from_static("1"));
    // The client's interceptor refuses before sending.
    assert_eq!(
        client.echo(denied).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let stream: Vec<_> = client
        .server_stream(EchoRequest {
            repeat: 3,
            ..req("s")
        })
        .await
        .unwrap()
        .into_message()
        .collect()
        .await;
    assert_eq!(stream.len(), 3);
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert_eq!(server_side.starts.load(Ordering::SeqCst), 2);
    // unary: 1 in + 1 out; stream: 1 in + 3 out
    assert_eq!(server_side.messages.load(Ordering::SeqCst), 6);
    assert_eq!(*server_side.ends.lock().unwrap(), vec![None, None]);
    assert_eq!(client_side.starts.load(Ordering::SeqCst), 3);
    assert_eq!(client_side.messages.load(Ordering::SeqCst), 6);
    let ends = client_side.ends.lock().unwrap().clone();
    assert_eq!(ends.len(), 3);
    assert!(ends.contains(&Some(Code::PermissionDenied)));
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight() {
    let server = start(ServerConfig::default()).await;
    let url = server.url();
    let client = client(&url, true, ClientConfig::default());
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .echo(EchoRequest {
                    sleep_ms: 400,
                    ..req("finishing")
                })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    let finished = in_flight.await.unwrap().expect("in-flight call completes");
    assert_eq!(finished.message().text, "finishing");
    let fresh = self::client(&url, false, ClientConfig::default());
    assert_eq!(
        fresh.echo(req("late")).await.unwrap_err().code(),
        Code::Unavailable
    );
}

#[tokio::test]
async fn send_limits_fail_locally_and_remotely() {
    let server = start(ServerConfig::default().send_max_bytes(1000)).await;
    let client = client(&server.url(), true, ClientConfig::default());
    // The server refuses to send an over-limit response.
    let err = client
        .echo(EchoRequest {
            response_size: 5000,
            ..req("")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let mut stream = client
        .server_stream(EchoRequest {
            repeat: 2,
            response_size: 5000,
            ..req("")
        })
        .await
        .unwrap()
        .into_message();
    assert_eq!(
        stream.message().await.unwrap_err().code(),
        Code::ResourceExhausted
    );
    // The client refuses to send an over-limit request.
    let small = self::client(
        &server.url(),
        true,
        ClientConfig::default().send_max_bytes(100),
    );
    let err = small
        .echo(EchoRequest {
            payload: vec![0; 500],
            ..req("")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(!err.is_wire(), "refused locally, before sending");
    server.stop().await;
}

#[tokio::test]
async fn binary_metadata_round_trips_in_headers_and_trailers() {
    use switchboard::metadata::BinaryMetadata as _;
    let server = start(ServerConfig::default()).await;
    for h2c in TRANSPORTS {
        let client = client(&server.url(), h2c, ClientConfig::default());
        let mut message = req("bin");
        // base64 of [0, 255, 1] is "AP8B"; the server copies it into a trailer as given.
        message
            .response_trailers
            .insert("x-raw-bin".into(), "AP8B".into());
        message
            .response_headers
            .insert("x-head-bin".into(), "AP8B".into());
        let mut request = Request::new(message.clone());
        request
            .headers_mut()
            .append_bin("x-req-bin", &[1, 2, 3])
            .unwrap();
        let response = client.echo(request).await.unwrap();
        assert_eq!(
            response
                .message()
                .request_headers
                .get("x-req-bin")
                .map(String::as_str),
            Some("AQID")
        );
        assert_eq!(
            response.headers().get_all_bin("x-head-bin").unwrap(),
            vec![vec![0u8, 255, 1]]
        );
        assert_eq!(
            response.trailers().get_all_bin("x-raw-bin").unwrap(),
            vec![vec![0u8, 255, 1]]
        );
        let mut stream = client
            .server_stream(EchoRequest {
                repeat: 1,
                ..message
            })
            .await
            .unwrap()
            .into_message();
        while stream.message().await.unwrap().is_some() {}
        assert_eq!(
            stream.trailers().unwrap().get_all_bin("x-raw-bin").unwrap(),
            vec![vec![0u8, 255, 1]]
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_gives_up_on_streams_after_the_grace_period() {
    use switchboard::server::{Router, Server};
    use switchboard_integration_tests::TestServer;
    let router = Router::new().add_service(TestServiceServer::new(TestServer));
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new(router)
            .shutdown_grace(Duration::from_millis(300))
            .serve_with_shutdown(listener, async {
                let _ = stopped.await;
            }),
    );
    let client = client(&format!("http://{addr}"), true, ClientConfig::default());
    // A stream that would run for 100 s.
    let mut stream = client
        .server_stream(EchoRequest {
            repeat: 1000,
            sleep_ms: 100,
            ..req("long")
        })
        .await
        .unwrap()
        .into_message();
    assert!(stream.message().await.unwrap().is_some());
    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The stream is cut off, not ended cleanly.
    let end = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(end.is_err(), "{end:?}");
}
