//! `on_end` fires exactly once for every call, on the server and on the client: completed,
//! failed, cancelled by the caller, cut off mid-stream, past its deadline, and cut off by a
//! server shutting down. Where the library knows the end, interceptors see it before the
//! other side does, so those checks read the event at once (no sleeps); an abandoned call
//! ends from a task of its own, and those checks wait for the one event.

use std::time::Duration;

use futures_util::StreamExt as _;
use switchboard::client::{Client, ClientConfig};
use switchboard::interceptor::{Call, Interceptor, Next, Reply};
use switchboard::server::{Router, Server, ServerConfig};
use switchboard::{Code, Request};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, TestServer};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// One call's end: the method name, and the code (`None`: completed).
type Ended = (String, Option<Code>);

/// Sends every call's end to a channel, from an end hook of a wrapping interceptor.
struct EndRecorder(UnboundedSender<Ended>);

impl Interceptor for EndRecorder {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, switchboard::Error> {
        let method = call
            .spec()
            .procedure()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let ends = self.0.clone();
        call.on_end(move |end| {
            let _ = ends.send((method, end.error().map(|e| e.code())));
        });
        next.run(call).await
    }
}

/// A running server whose calls end into `ends`, with a short shutdown grace period.
async fn server() -> (Running, UnboundedReceiver<Ended>) {
    let (tx, ends) = unbounded_channel();
    let router = Router::new()
        .with_config(ServerConfig::default().interceptor(EndRecorder(tx)))
        .add_service(TestServiceServer::new(TestServer));
    let server = Server::new(router).shutdown_grace(Duration::from_millis(200));
    (Running::serve(server).await, ends)
}

fn client(url: &str, h2c: bool) -> (TestServiceClient, UnboundedReceiver<Ended>) {
    let (tx, ends) = unbounded_channel();
    let base = if h2c {
        Client::h2c(url)
    } else {
        Client::http1(url)
    }
    .unwrap();
    let config = ClientConfig::default().interceptor(EndRecorder(tx));
    (TestServiceClient::new(base.with_config(config)), ends)
}

fn echo(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

/// The one event already recorded: the end ran before the caller or peer saw it.
#[track_caller]
fn ended_now(ends: &mut UnboundedReceiver<Ended>) -> Ended {
    ends.try_recv()
        .expect("on_end ran before the end was visible")
}

/// The next event, for calls that end from a task of their own (abandoned calls). The timeout
/// only turns a missing event into a failure instead of a hang.
async fn ended_soon(ends: &mut UnboundedReceiver<Ended>) -> Ended {
    tokio::time::timeout(Duration::from_secs(20), ends.recv())
        .await
        .expect("on_end ran for the abandoned call")
        .expect("recorder alive")
}

fn ended(method: &str, code: Option<Code>) -> Ended {
    (method.to_owned(), code)
}

#[tokio::test]
async fn completed_and_failed_calls_end_once_before_the_other_side_sees_the_end() {
    let (server, mut server_ends) = server().await;
    for h2c in [true, false] {
        let (client, mut client_ends) = client(&server.url(), h2c);

        client.echo(echo("ok")).await.unwrap();
        assert_eq!(ended_now(&mut server_ends), ended("Echo", None));
        assert_eq!(ended_now(&mut client_ends), ended("Echo", None));

        let failing = EchoRequest {
            fail_code: Code::NotFound as i32,
            ..echo("no")
        };
        let error = client.echo(failing).await.unwrap_err();
        assert_eq!(error.code(), Code::NotFound);
        assert_eq!(
            ended_now(&mut server_ends),
            ended("Echo", Some(Code::NotFound))
        );
        assert_eq!(
            ended_now(&mut client_ends),
            ended("Echo", Some(Code::NotFound))
        );

        let stream = client
            .server_stream(EchoRequest {
                repeat: 3,
                ..echo("s")
            })
            .await
            .unwrap()
            .into_message();
        let replies: Vec<_> = stream.collect().await;
        assert_eq!(replies.len(), 3);
        assert!(replies.iter().all(Result::is_ok));
        assert_eq!(ended_now(&mut server_ends), ended("ServerStream", None));
        assert_eq!(ended_now(&mut client_ends), ended("ServerStream", None));

        let failing_stream = EchoRequest {
            repeat: 2,
            fail_code: Code::Aborted as i32,
            fail_after_stream: true,
            ..echo("f")
        };
        let mut stream = client
            .server_stream(failing_stream)
            .await
            .unwrap()
            .into_message();
        assert!(stream.message().await.unwrap().is_some());
        assert!(stream.message().await.unwrap().is_some());
        assert_eq!(stream.message().await.unwrap_err().code(), Code::Aborted);
        assert_eq!(
            ended_now(&mut server_ends),
            ended("ServerStream", Some(Code::Aborted))
        );
        assert_eq!(
            ended_now(&mut client_ends),
            ended("ServerStream", Some(Code::Aborted))
        );

        let upload = futures_util::stream::iter(vec![echo("a"), echo("b")]);
        client.client_stream(Request::new(upload)).await.unwrap();
        assert_eq!(ended_now(&mut server_ends), ended("ClientStream", None));
        assert_eq!(ended_now(&mut client_ends), ended("ClientStream", None));

        let chat = futures_util::stream::iter(vec![echo("x"), echo("y")]);
        let replies: Vec<_> = client
            .bidi(Request::new(chat))
            .await
            .unwrap()
            .into_message()
            .collect()
            .await;
        assert_eq!(replies.len(), 2);
        assert_eq!(ended_now(&mut server_ends), ended("Bidi", None));
        assert_eq!(ended_now(&mut client_ends), ended("Bidi", None));

        assert!(
            client_ends.try_recv().is_err(),
            "no second end on the client"
        );
    }
    assert!(
        server_ends.try_recv().is_err(),
        "no second end on the server"
    );
    server.stop().await;
}

/// Reads `stream` until it fails; a clean end fails the test with `clean_end`.
async fn first_error(
    stream: &mut switchboard::Streaming<EchoResponse>,
    clean_end: &str,
) -> switchboard::Error {
    loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("{clean_end}"),
            Err(error) => return error,
        }
    }
}

/// A long, slow server stream.
fn endless() -> EchoRequest {
    EchoRequest {
        repeat: 10_000,
        sleep_ms: 20,
        ..echo("long")
    }
}

#[tokio::test]
async fn a_stream_the_caller_drops_ends_as_cancelled_on_both_sides() {
    let (server, mut server_ends) = server().await;
    for h2c in [true, false] {
        let (client, mut client_ends) = client(&server.url(), h2c);
        let mut stream = client
            .server_stream(endless())
            .await
            .unwrap()
            .into_message();
        assert!(stream.message().await.unwrap().is_some());
        drop(stream);
        assert_eq!(
            ended_soon(&mut client_ends).await,
            ended("ServerStream", Some(Code::Canceled))
        );
        // The reset stream (HTTP/2) or closed connection (HTTP/1.1) reaches the server.
        assert_eq!(
            ended_soon(&mut server_ends).await,
            ended("ServerStream", Some(Code::Canceled)),
            "h2c={h2c}"
        );

        // A unary call whose future the caller drops.
        let slow = EchoRequest {
            sleep_ms: 10_000,
            ..echo("slow")
        };
        let call = client.echo(slow);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), call)
                .await
                .is_err()
        );
        assert_eq!(
            ended_soon(&mut client_ends).await,
            ended("Echo", Some(Code::Canceled))
        );
        assert_eq!(
            ended_soon(&mut server_ends).await,
            ended("Echo", Some(Code::Canceled)),
            "h2c={h2c}"
        );
        assert!(
            client_ends.try_recv().is_err(),
            "no second end on the client"
        );
    }
    assert!(
        server_ends.try_recv().is_err(),
        "no second end on the server"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_deadline_ends_the_call_once_on_each_side() {
    let (server, mut server_ends) = server().await;
    let (client, mut client_ends) = client(&server.url(), true);
    let request = Request::new(endless()).with_timeout(Duration::from_millis(300));
    let mut stream = client.server_stream(request).await.unwrap().into_message();
    let error = first_error(&mut stream, "the endless stream ended").await;
    assert_eq!(error.code(), Code::DeadlineExceeded);
    assert_eq!(
        ended_now(&mut client_ends),
        ended("ServerStream", Some(Code::DeadlineExceeded))
    );
    // The server ends at its own deadline, or sees the client give up a moment earlier.
    let (method, code) = ended_soon(&mut server_ends).await;
    assert_eq!(method, "ServerStream");
    assert!(
        matches!(code, Some(Code::DeadlineExceeded | Code::Canceled)),
        "{code:?}"
    );
    server.stop().await;
    assert!(
        server_ends.try_recv().is_err(),
        "no second end on the server"
    );
    assert!(
        client_ends.try_recv().is_err(),
        "no second end on the client"
    );
}

#[tokio::test]
async fn a_server_shutting_down_ends_the_streams_it_cuts_off() {
    let (server, mut server_ends) = server().await;
    let (client, mut client_ends) = client(&server.url(), true);
    let mut stream = client
        .server_stream(endless())
        .await
        .unwrap()
        .into_message();
    assert!(stream.message().await.unwrap().is_some());
    // Past the grace period the connection is closed under the stream.
    server.stop().await;
    assert_eq!(
        ended_soon(&mut server_ends).await,
        ended("ServerStream", Some(Code::Canceled))
    );
    let error = first_error(&mut stream, "a cut-off stream must not end cleanly").await;
    let (method, code) = ended_now(&mut client_ends);
    assert_eq!(method, "ServerStream");
    assert_eq!(code, Some(error.code()));
    assert!(
        server_ends.try_recv().is_err(),
        "no second end on the server"
    );
}
