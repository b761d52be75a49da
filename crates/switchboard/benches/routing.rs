//! Routing end to end, in process: `http::Request`s with whole bodies go through `Router` as a
//! `tower::Service` (no sockets) to a trivial echo handler, and the response body is read
//! back. That times routing, protocol negotiation, envelope framing and the codec together:
//!
//! * a unary Connect call in protobuf and in JSON, and a unary gRPC call, each carrying a
//!   64-byte payload, on a router with one procedure;
//! * the same Connect and gRPC calls on a router with 200 procedures, and a call to an
//!   unknown procedure (lookup miss, `unimplemented` answer) there: the route lookup is a
//!   hash-map lookup inside the router that the public API does not expose alone, so its
//!   cost shows as the difference between the two router sizes.

mod common;

use std::convert::Infallible;
use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use switchboard::codec::Codec;
use switchboard::server::{Router, Routes, RpcService};
use switchboard::{Error, Idempotency, Request, Response, Spec, StreamType};
use tower::ServiceExt;

use common::{EchoRequest, EchoResponse};

const ECHO: &str = "/bench.v1.EchoService/Echo";

/// `bench.v1.EchoService` with only `Echo`, plus `fillers` more procedures on another service
/// so the router holds `fillers + 1` routes.
struct EchoService {
    echo: Spec,
    fillers: usize,
}

async fn echo(request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
    Ok(Response::new(EchoResponse {
        payload: request.into_message().payload,
    }))
}

impl RpcService for EchoService {
    fn name(&self) -> &'static str {
        "bench.v1.EchoService"
    }

    fn register(self, routes: &mut Routes) {
        routes.unary(self.echo, echo);
        for i in 0..self.fillers {
            let spec = Spec::new(
                format!("/bench.v1.FillerService/Method{i:03}"),
                StreamType::Unary,
                Idempotency::Unknown,
            );
            routes.unary(spec, echo);
        }
    }
}

fn router(fillers: usize) -> Router {
    let pool = common::pool();
    let echo = Spec::from_descriptor(common::method_descriptor(&pool, "Echo"));
    let router = Router::new().add_service(EchoService { echo, fillers });
    assert_eq!(router.procedures().count(), fillers + 1);
    router
}

/// One prepared call: how to build its request, and what its answer must be.
struct Call {
    content_type: &'static str,
    grpc: bool,
    path: &'static str,
    body: Bytes,
}

impl Call {
    fn request(&self) -> http::Request<Full<Bytes>> {
        let mut builder = http::Request::builder()
            .method(Method::POST)
            .uri(self.path)
            .header(http::header::CONTENT_TYPE, self.content_type);
        builder = if self.grpc {
            builder.header("te", "trailers")
        } else {
            builder.header("connect-protocol-version", "1")
        };
        builder
            .body(Full::new(self.body.clone()))
            .expect("valid request")
    }
}

fn connect(codec: Codec, path: &'static str, message: &EchoRequest) -> Call {
    let pool = common::pool();
    let descriptor = common::message_descriptor(&pool, "bench.v1.EchoRequest");
    let mut body = BytesMut::new();
    codec.encode(message, Some(&descriptor), &mut body).unwrap();
    Call {
        content_type: match codec {
            Codec::Proto => "application/proto",
            Codec::Json => "application/json",
            other => panic!("no content type for {other:?} in this bench"),
        },
        grpc: false,
        path,
        body: body.freeze(),
    }
}

fn grpc(path: &'static str, message: &EchoRequest) -> Call {
    let mut payload = BytesMut::new();
    Codec::Proto.encode(message, None, &mut payload).unwrap();
    let body = switchboard::__bench::frame(0, &payload).unwrap();
    Call {
        content_type: "application/grpc",
        grpc: true,
        path,
        body,
    }
}

/// Sends one request through the router as a tower service and reads the whole answer.
async fn send(
    router: &Router,
    request: http::Request<Full<Bytes>>,
) -> (StatusCode, HeaderMap, Bytes, Option<HeaderMap>) {
    let response: Result<_, Infallible> = router.clone().oneshot(request).await;
    let (parts, body) = response.expect("infallible").into_parts();
    let collected = body.collect().await.expect("in-memory body");
    let trailers = collected.trailers().cloned();
    (parts.status, parts.headers, collected.to_bytes(), trailers)
}

/// Checks an answer once, outside the timed loop: an echo of `expected`, in the call's
/// protocol and codec.
fn check(call: &Call, answer: (StatusCode, HeaderMap, Bytes, Option<HeaderMap>), expected: &Bytes) {
    let (status, headers, body, trailers) = answer;
    assert_eq!(status, StatusCode::OK, "{}: {body:?}", call.content_type);
    let content_type = headers[http::header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with(call.content_type),
        "{content_type}"
    );
    assert!(
        !headers.contains_key(http::header::CONTENT_ENCODING),
        "never compressed"
    );
    if call.grpc {
        let trailers = trailers.expect("gRPC status travels in trailers");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(body, call.body, "the echo's envelope is the request's");
    } else {
        let pool = common::pool();
        let descriptor = common::message_descriptor(&pool, "bench.v1.EchoResponse");
        let codec = if call.content_type.ends_with("json") {
            Codec::Json
        } else {
            Codec::Proto
        };
        let echoed: EchoResponse = codec.decode(body, Some(&descriptor)).unwrap();
        assert_eq!(&echoed.payload, expected);
    }
}

fn routing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let message = common::echo_request(64);
    let calls = [
        ("connect_proto", connect(Codec::Proto, ECHO, &message)),
        ("connect_json", connect(Codec::Json, ECHO, &message)),
        ("grpc_proto", grpc(ECHO, &message)),
    ];

    for (routes, router) in [(1, router(0)), (200, router(199))] {
        let mut group = c.benchmark_group(format!("routing/unary_64B/{routes}_routes"));
        for (label, call) in &calls {
            if routes > 1 && *label == "connect_json" {
                continue;
            }
            check(
                call,
                runtime.block_on(send(&router, call.request())),
                &message.payload,
            );
            group.bench_function(*label, |b| {
                b.to_async(&runtime)
                    .iter(|| send(&router, black_box(call.request())))
            });
        }
        if routes > 1 {
            // A miss: the route lookup fails and Connect answers `unimplemented` (404).
            let miss = connect(Codec::Proto, "/bench.v1.EchoService/Nope", &message);
            let (status, ..) = runtime.block_on(send(&router, miss.request()));
            assert_eq!(status, StatusCode::NOT_FOUND);
            group.bench_function("connect_unknown_procedure", |b| {
                b.to_async(&runtime)
                    .iter(|| send(&router, black_box(miss.request())))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, routing);
criterion_main!(benches);
