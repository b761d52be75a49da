//! OpenTelemetry over real sockets, recorded with the SDK's in-memory exporters: one trace
//! across a client, a relay and a service, the RPC attributes and statuses, message events,
//! and the duration, message-count and message-size histograms.

use std::time::Duration;

use futures_util::StreamExt as _;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use switchboard::client::{Client, ClientConfig};
use switchboard::server::{Router, ServerConfig};
use switchboard::{Code, Error, Protocol, Request, Response};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{Running, TestServer, start_router};
use switchboard_otel::OpenTelemetry;

/// Providers that keep what they record in memory.
struct Recorder {
    spans: InMemorySpanExporter,
    tracer_provider: SdkTracerProvider,
    metrics: InMemoryMetricExporter,
    meter_provider: SdkMeterProvider,
}

impl Recorder {
    fn new() -> Recorder {
        let spans = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let metrics = InMemoryMetricExporter::default();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metrics.clone()).build())
            .build();
        Recorder {
            spans,
            tracer_provider,
            metrics,
            meter_provider,
        }
    }

    fn interceptor(&self) -> OpenTelemetry {
        OpenTelemetry::with_providers(&self.tracer_provider, &self.meter_provider)
    }

    /// The spans ended so far, waiting briefly for the ones still ending.
    async fn spans(&self, at_least: usize) -> Vec<SpanData> {
        for _ in 0..200 {
            let spans = self.spans.get_finished_spans().unwrap();
            if spans.len() >= at_least {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.spans.get_finished_spans().unwrap()
    }

    fn metrics(&self) -> Vec<ResourceMetrics> {
        self.meter_provider.force_flush().unwrap();
        self.metrics.get_finished_metrics().unwrap()
    }
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn string(span: &SpanData, key: &str) -> String {
    attribute(span, key)
        .map(|v| v.as_str().into_owned())
        .unwrap_or_else(|| panic!("{} has no {key}: {:?}", span.name, span.attributes))
}

/// Forwards echo to the next service with a client of its own.
#[derive(Clone)]
struct Relay {
    next: TestServiceClient,
}

impl TestService for Relay {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let reply = self.next.echo(request.into_message()).await?;
        Ok(Response::new(reply.into_message()))
    }
}

async fn traced_service(recorder: &Recorder) -> Running {
    let router = Router::new()
        .with_config(ServerConfig::default().interceptor(recorder.interceptor()))
        .add_service(TestServiceServer::new(TestServer));
    start_router(router).await
}

fn traced_client(recorder: &Recorder, server: &Running, protocol: Protocol) -> TestServiceClient {
    let config = ClientConfig::default()
        .protocol(protocol)
        .interceptor(recorder.interceptor());
    TestServiceClient::new(Client::h2c(&server.url()).unwrap().with_config(config))
}

#[tokio::test]
async fn one_trace_spans_a_client_a_relay_and_a_service() {
    for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
        let recorder = Recorder::new();
        let end = traced_service(&recorder).await;
        let relay = Relay {
            next: traced_client(&recorder, &end, protocol),
        };
        let middle = start_router(
            Router::new()
                .with_config(ServerConfig::default().interceptor(recorder.interceptor()))
                .add_service(TestServiceServer::new(relay)),
        )
        .await;
        traced_client(&recorder, &middle, protocol)
            .echo(EchoRequest {
                text: "traced".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let spans = recorder.spans(4).await;
        assert_eq!(spans.len(), 4, "{protocol:?}: {spans:#?}");
        let trace = spans[0].span_context.trace_id();
        assert!(
            spans.iter().all(|s| s.span_context.trace_id() == trace),
            "{protocol:?}: one trace"
        );
        let by_kind = |kind: SpanKind, parent: SpanId| {
            spans
                .iter()
                .find(|s| s.span_kind == kind && s.parent_span_id == parent)
                .unwrap_or_else(|| panic!("{protocol:?}: no {kind:?} span under {parent:?}"))
        };
        // client -> relay server -> relay's client -> service: each the parent of the next.
        let first = by_kind(SpanKind::Client, SpanId::INVALID);
        let relay_server = by_kind(SpanKind::Server, first.span_context.span_id());
        let relay_client = by_kind(SpanKind::Client, relay_server.span_context.span_id());
        let service = by_kind(SpanKind::Server, relay_client.span_context.span_id());
        assert!(relay_server.parent_span_is_remote && service.parent_span_is_remote);
        let (system, old_system) = match protocol {
            Protocol::Connect => ("connectrpc", "connect_rpc"),
            _ => ("grpc", "grpc"),
        };
        for span in [first, relay_server, relay_client, service] {
            assert_eq!(span.name, "switchboard.test.v1.TestService/Echo");
            assert_eq!(string(span, "rpc.system.name"), system);
            assert_eq!(string(span, "rpc.system"), old_system);
            assert_eq!(
                string(span, "rpc.method"),
                "switchboard.test.v1.TestService/Echo"
            );
            assert_eq!(
                string(span, "rpc.service"),
                "switchboard.test.v1.TestService"
            );
            assert_eq!(string(span, "server.address"), "127.0.0.1");
            assert!(attribute(span, "server.port").is_some());
            let ok = if protocol == Protocol::Connect {
                "ok"
            } else {
                "OK"
            };
            assert_eq!(string(span, "rpc.response.status_code"), ok);
            assert_eq!(span.status, Status::Unset);
            // One message each way.
            let kinds: Vec<String> = span
                .events
                .iter()
                .map(|e| {
                    e.attributes
                        .iter()
                        .find(|kv| kv.key.as_str() == "message.type")
                        .unwrap()
                        .value
                        .as_str()
                        .into_owned()
                })
                .collect();
            assert_eq!(
                kinds.len(),
                2,
                "{protocol:?} {:?}: {kinds:?}",
                span.span_kind
            );
        }
        assert!(attribute(service, "network.peer.address").is_some());
        // The calls went over HTTP/2 (h2c clients): servers know it from the request,
        // clients from the response.
        for span in [first, relay_server, relay_client, service] {
            assert_eq!(string(span, "network.protocol.version"), "2");
        }
        end.stop().await;
        middle.stop().await;
    }
}

#[tokio::test]
async fn failures_set_codes_and_the_error_status_where_the_conventions_say() {
    for (protocol, code_text) in [
        (Protocol::Connect, "invalid_argument"),
        (Protocol::Grpc, "INVALID_ARGUMENT"),
    ] {
        let recorder = Recorder::new();
        let server = traced_service(&recorder).await;
        let error = traced_client(&recorder, &server, protocol)
            .echo(EchoRequest {
                fail_code: Code::InvalidArgument.as_i32(),
                fail_message: "no".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        let spans = recorder.spans(2).await;
        let client = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Client)
            .unwrap();
        let server_span = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Server)
            .unwrap();
        for span in [client, server_span] {
            assert_eq!(string(span, "rpc.response.status_code"), code_text);
            assert_eq!(string(span, "error.type"), code_text);
        }
        // The caller's mistake is an error for the client, not for the server.
        assert!(
            matches!(client.status, Status::Error { .. }),
            "{:?}",
            client.status
        );
        assert_eq!(server_span.status, Status::Unset);
        if protocol == Protocol::Grpc {
            assert_eq!(
                attribute(server_span, "rpc.grpc.status_code"),
                Some(&Value::I64(3))
            );
        } else {
            assert_eq!(
                string(server_span, "rpc.connect_rpc.error_code"),
                "invalid_argument"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn a_stream_has_an_event_per_message_and_the_metrics_count_them() {
    let recorder = Recorder::new();
    let server = traced_service(&recorder).await;
    let client = traced_client(&recorder, &server, Protocol::Grpc);
    let request = EchoRequest {
        text: "sizes are counted".to_owned(),
        repeat: 3,
        ..Default::default()
    };
    let request_size = prost::Message::encoded_len(&request) as f64;
    let mut replies = client.server_stream(request).await.unwrap().into_message();
    let mut received = 0;
    let mut response_bytes = 0.0;
    while let Some(reply) = replies.next().await {
        response_bytes += prost::Message::encoded_len(&reply.unwrap()) as f64;
        received += 1;
    }
    assert_eq!(received, 3);
    assert!(response_bytes > 0.0);
    let spans = recorder.spans(2).await;
    let server_span = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap();
    let events: Vec<(String, i64)> = server_span
        .events
        .iter()
        .map(|e| {
            let get = |k: &str| e.attributes.iter().find(|kv| kv.key.as_str() == k).unwrap();
            let kind = get("message.type").value.as_str().into_owned();
            let Value::I64(id) = get("message.id").value else {
                panic!("message.id is not an integer")
            };
            (kind, id)
        })
        .collect();
    assert_eq!(
        events,
        [
            ("RECEIVED".to_owned(), 1),
            ("SENT".to_owned(), 1),
            ("SENT".to_owned(), 2),
            ("SENT".to_owned(), 3)
        ]
    );

    let metrics = recorder.metrics();
    let histogram = |name: &str| -> (u64, f64) {
        for resource in &metrics {
            for scope in resource.scope_metrics() {
                for metric in scope.metrics() {
                    if metric.name() != name {
                        continue;
                    }
                    match metric.data() {
                        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                            let point = h.data_points().next().unwrap();
                            return (point.count(), point.sum());
                        }
                        AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                            let point = h.data_points().next().unwrap();
                            return (point.count(), point.sum() as f64);
                        }
                        other => panic!("{name} is {other:?}"),
                    }
                }
            }
        }
        panic!("no {name} in {metrics:#?}");
    };
    let (calls, seconds) = histogram("rpc.server.call.duration");
    assert_eq!(calls, 1);
    assert!(seconds > 0.0 && seconds < 10.0);
    assert_eq!(histogram("rpc.server.responses_per_rpc"), (1, 3.0));
    assert_eq!(histogram("rpc.server.requests_per_rpc"), (1, 1.0));
    assert_eq!(histogram("rpc.client.call.duration").0, 1);
    assert_eq!(histogram("rpc.client.responses_per_rpc"), (1, 3.0));
    // One size per message, the binary encoding's, on both sides.
    assert_eq!(histogram("rpc.server.request.size"), (1, request_size));
    assert_eq!(histogram("rpc.client.request.size"), (1, request_size));
    assert_eq!(histogram("rpc.server.response.size"), (3, response_bytes));
    assert_eq!(histogram("rpc.client.response.size"), (3, response_bytes));
    server.stop().await;
}

/// Drops the spans of one method, from what the sampler sees when the span starts.
#[derive(Clone, Debug)]
struct DropMethod(&'static str);

impl opentelemetry_sdk::trace::ShouldSample for DropMethod {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        _trace_id: opentelemetry::trace::TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        attributes: &[opentelemetry::KeyValue],
        _links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        use opentelemetry::trace::TraceContextExt as _;
        let method = attributes
            .iter()
            .find(|kv| kv.key.as_str() == "rpc.method")
            .map(|kv| kv.value.as_str().into_owned());
        let system = attributes
            .iter()
            .any(|kv| kv.key.as_str() == "rpc.system.name");
        let decision = if !system || method.as_deref() == Some(self.0) {
            opentelemetry_sdk::trace::SamplingDecision::Drop
        } else {
            opentelemetry_sdk::trace::SamplingDecision::RecordAndSample
        };
        opentelemetry_sdk::trace::SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: parent_context
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

#[tokio::test]
async fn a_sampler_sees_the_method_and_can_leave_a_method_out() {
    let spans = InMemorySpanExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .with_sampler(DropMethod("switchboard.test.v1.TestService/Echo"))
        .build();
    let meter_provider = SdkMeterProvider::builder().build();
    let interceptor = || OpenTelemetry::with_providers(&tracer_provider, &meter_provider);
    let router = Router::new()
        .with_config(ServerConfig::default().interceptor(interceptor()))
        .add_service(TestServiceServer::new(TestServer));
    let server = start_router(router).await;
    let config = ClientConfig::default()
        .protocol(Protocol::Grpc)
        .interceptor(interceptor());
    let client = TestServiceClient::new(Client::h2c(&server.url()).unwrap().with_config(config));
    client.echo(EchoRequest::default()).await.unwrap();
    let mut replies = client
        .server_stream(EchoRequest {
            repeat: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_message();
    while let Some(reply) = replies.next().await {
        reply.unwrap();
    }
    let mut finished = Vec::new();
    for _ in 0..200 {
        finished = spans.get_finished_spans().unwrap();
        if finished.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The stream's client and server spans, none for Echo.
    let names: Vec<_> = finished.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "switchboard.test.v1.TestService/ServerStream",
            "switchboard.test.v1.TestService/ServerStream"
        ],
        "{names:?}"
    );
    server.stop().await;
}
