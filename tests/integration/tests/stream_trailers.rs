//! Trailers computed from a stream, set after its last message, reach the client on every
//! protocol: gRPC HTTP trailers, the gRPC-Web trailer frame, Connect's end-of-stream message.

use futures_util::StreamExt as _;
use http::HeaderValue;
use switchboard::client::{Client, ClientConfig};
use switchboard::server::Router;
use switchboard::{Error, Protocol, Request, Response, ResponseStream, StreamTrailers};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start_router;

/// Streams `repeat` replies and, once the last is out, trailers with their count and the sum
/// of their lengths; a trailer set before the stream is replaced by the late one.
struct Counting;

impl TestService for Counting {
    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let repeat = request.message().repeat;
        let trailers = StreamTrailers::new();
        let tally = trailers.clone();
        let mut count = 0u32;
        let mut total = 0usize;
        let replies = futures_util::stream::iter(0..repeat).map(move |i| {
            let text = "x".repeat(i as usize + 1);
            count += 1;
            total += text.len();
            tally.insert("x-count", HeaderValue::from(count));
            tally.insert("x-total-len", HeaderValue::from(total));
            Ok(EchoResponse {
                text,
                ..Default::default()
            })
        });
        Ok(
            Response::new(Box::pin(replies) as ResponseStream<EchoResponse>)
                .with_trailer(
                    http::HeaderName::from_static("x-count"),
                    HeaderValue::from_static("not yet"),
                )
                .with_trailer(
                    http::HeaderName::from_static("x-early"),
                    HeaderValue::from_static("kept"),
                )
                .with_stream_trailers(trailers),
        )
    }
}

#[tokio::test]
async fn trailers_set_after_the_last_message_reach_the_client() {
    let router = Router::new().add_service(TestServiceServer::new(Counting));
    let server = start_router(router).await;
    for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
        for h2c in [true, false] {
            if protocol == Protocol::Grpc && !h2c {
                continue; // gRPC needs HTTP/2
            }
            let what = format!("{protocol:?} h2c={h2c}");
            let base = if h2c {
                Client::h2c(&server.url())
            } else {
                Client::http1(&server.url())
            }
            .unwrap();
            let client = TestServiceClient::new(
                base.with_config(ClientConfig::default().protocol(protocol)),
            );
            let mut stream = client
                .server_stream(EchoRequest {
                    repeat: 4,
                    ..Default::default()
                })
                .await
                .expect(&what)
                .into_message();
            let mut received = 0;
            while stream.message().await.expect(&what).is_some() {
                received += 1;
            }
            assert_eq!(received, 4, "{what}");
            let trailers = stream.trailers().expect("trailers at the end");
            assert_eq!(trailers["x-count"], "4", "{what}");
            assert_eq!(trailers["x-total-len"], "10", "{what}");
            assert_eq!(trailers["x-early"], "kept", "{what}");
            assert_eq!(trailers.get_all("x-count").iter().count(), 1, "{what}");
        }
    }
    server.stop().await;
}
