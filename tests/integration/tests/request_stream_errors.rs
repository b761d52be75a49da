//! A client request stream that cannot send a message fails: the request body ends with an
//! error (HTTP/2 RST_STREAM, an aborted HTTP/1.1 connection), never as a complete shorter
//! stream, so the server's handler sees an error after the messages that did go out; and the
//! caller gets the local error (`resource_exhausted` for the send limit, `internal` for a
//! compression failure) whatever the server answered.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use switchboard::client::{Client, ClientConfig};
use switchboard::compression::{
    CompressionPolicy, CompressionRegistry, Compressor, DecompressError,
};
use switchboard::server::{Router, ServerConfig};
use switchboard::{Code, Error, Protocol, Request, Response, ResponseStream, Streaming};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start_router;

/// What a handler saw of its request stream: the texts received, then how it ended.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Message(String),
    CleanEnd,
    Error,
}

/// Records what the client-stream and bidi handlers receive.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    done: Arc<tokio::sync::Notify>,
    /// Told when the handler has received its second message, so the client sends the third
    /// only then: a reset HTTP/2 stream discards data still queued, and the test is about
    /// what the server makes of messages that did arrive.
    second_arrived: Arc<tokio::sync::Notify>,
}

impl Recorder {
    async fn drain(&self, mut messages: Streaming<EchoRequest>) -> Result<u32, Error> {
        let mut count = 0;
        let outcome = loop {
            match messages.message().await {
                Ok(Some(message)) => {
                    count += 1;
                    self.seen.lock().unwrap().push(Seen::Message(message.text));
                    if count == 2 {
                        self.second_arrived.notify_one();
                    }
                }
                Ok(None) => break Ok(count),
                Err(error) => break Err(error),
            }
        };
        self.seen.lock().unwrap().push(match &outcome {
            Ok(_) => Seen::CleanEnd,
            Err(_) => Seen::Error,
        });
        self.done.notify_one();
        outcome
    }

    /// Waits until the handler has seen the end of its request stream, then takes the record.
    async fn take(&self) -> Vec<Seen> {
        loop {
            let notified = self.done.notified();
            {
                let mut seen = self.seen.lock().unwrap();
                if matches!(seen.last(), Some(Seen::CleanEnd | Seen::Error)) {
                    return std::mem::take(&mut *seen);
                }
            }
            notified.await;
        }
    }
}

impl TestService for Recorder {
    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Error> {
        let count = self.drain(request.into_message()).await?;
        Ok(Response::new(EchoResponse {
            count,
            ..Default::default()
        }))
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let recorder = self.clone();
        let messages = request.into_message();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(recorder.drain(messages).await);
        });
        // One reply once the request stream has ended, cleanly or not.
        let reply = futures_util::stream::once(async move {
            let count = rx.await.map_err(|_| Error::internal("recorder gone"))??;
            Ok(EchoResponse {
                count,
                ..Default::default()
            })
        });
        Ok(Response::new(
            Box::pin(reply) as ResponseStream<EchoResponse>
        ))
    }
}

/// A compressor that refuses any message containing `FAIL` and otherwise copies bytes.
#[derive(Debug)]
struct Flaky;

impl Compressor for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
        if input.windows(4).any(|w| w == b"FAIL") {
            return Err(std::io::Error::other(
                "flaky compressor refused the message",
            ));
        }
        out.extend_from_slice(input);
        Ok(())
    }

    fn decompress(&self, input: &[u8], _limit: usize) -> Result<Bytes, DecompressError> {
        Ok(Bytes::copy_from_slice(input))
    }
}

fn text(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

/// (protocol, h2c): gRPC needs HTTP/2; bidi over HTTP/1.1 is half duplex but still streams
/// the request.
const CASES: [(Protocol, bool); 5] = [
    (Protocol::Connect, true),
    (Protocol::Connect, false),
    (Protocol::Grpc, true),
    (Protocol::GrpcWeb, true),
    (Protocol::GrpcWeb, false),
];

/// The three messages every case sends: the third, which cannot go out, once the server has
/// received the first two.
fn three(
    recorder: &Recorder,
    third: EchoRequest,
) -> impl futures_util::Stream<Item = EchoRequest> + Send + 'static {
    let second_arrived = recorder.second_arrived.clone();
    futures_util::stream::iter(vec![text("one"), text("two")]).chain(futures_util::stream::once(
        async move {
            second_arrived.notified().await;
            third
        },
    ))
}

async fn exercise(
    server_config: ServerConfig,
    client_config: impl Fn(Protocol) -> ClientConfig,
    third: EchoRequest,
    expected: Code,
) {
    let recorder = Recorder::default();
    let router = Router::new()
        .with_config(server_config)
        .add_service(TestServiceServer::new(recorder.clone()));
    let server = start_router(router).await;
    for (protocol, h2c) in CASES {
        let base = if h2c {
            Client::h2c(&server.url())
        } else {
            Client::http1(&server.url())
        }
        .unwrap();
        let client = TestServiceClient::new(base.with_config(client_config(protocol)));
        let expected_seen = vec![
            Seen::Message("one".into()),
            Seen::Message("two".into()),
            Seen::Error,
        ];

        let what = format!("client stream {protocol:?} h2c={h2c}");
        let error = client
            .client_stream(Request::new(three(&recorder, third.clone())))
            .await
            .expect_err(&what);
        assert_eq!(error.code(), expected, "{what}: {error}");
        assert!(!error.is_wire(), "{what}: a local error, not the server's");
        assert_eq!(recorder.take().await, expected_seen, "{what}");

        let what = format!("bidi {protocol:?} h2c={h2c}");
        let outcome = match client
            .bidi(Request::new(three(&recorder, third.clone())))
            .await
        {
            Err(error) => Err(error),
            Ok(response) => {
                let mut replies = response.into_message();
                let mut outcome = Ok(());
                while let Some(reply) = replies.next().await {
                    if let Err(error) = reply {
                        outcome = Err(error);
                        break;
                    }
                }
                outcome
            }
        };
        let error = outcome.expect_err(&what);
        assert_eq!(error.code(), expected, "{what}: {error}");
        assert!(!error.is_wire(), "{what}: a local error, not the server's");
        assert_eq!(recorder.take().await, expected_seen, "{what}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_message_over_the_send_limit_fails_the_request_stream() {
    let big = EchoRequest {
        payload: vec![7u8; 4096],
        ..text("three")
    };
    exercise(
        ServerConfig::default(),
        |protocol| {
            ClientConfig::default()
                .protocol(protocol)
                .send_max_bytes(1024)
        },
        big,
        Code::ResourceExhausted,
    )
    .await;
}

#[tokio::test]
async fn a_compression_failure_fails_the_request_stream() {
    let registry = CompressionRegistry::with_defaults().with(Flaky);
    exercise(
        ServerConfig::default().compression(registry.clone()),
        |protocol| {
            ClientConfig::default()
                .protocol(protocol)
                .accept_compression(registry.clone())
                .send_compression("flaky")
                .compression_policy(CompressionPolicy { min_bytes: 0 })
        },
        text("FAIL"),
        Code::Internal,
    )
    .await;
}
