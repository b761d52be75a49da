//! OpenTelemetry for switchboard: one span per call on servers and clients, W3C trace context
//! carried from client to server, and the RPC metrics.
//!
//! [`OpenTelemetry`] is an [`Interceptor`]: add it to a server's and a client's config and
//! every call (unary and every streaming shape, on Connect, gRPC and gRPC-Web) gets
//!
//! * **a span**, kind `SERVER` or `CLIENT`, named `package.Service/Method`, with the
//!   attributes of the OpenTelemetry RPC conventions: `rpc.system.name` (`grpc` for gRPC and
//!   gRPC-Web, `connectrpc` for Connect), `rpc.method` (`package.Service/Method`),
//!   `rpc.response.status_code`, `error.type` when it failed, `server.address` and
//!   `server.port`, `network.protocol.version` (`1.1`, `2`; on a client from the response,
//!   so it is missing when none arrived), and on servers `network.peer.address` and
//!   `network.peer.port`. The names
//!   of the conventions before their 1.39 revision are written too (`rpc.system` =
//!   `grpc`/`connect_rpc`, `rpc.service`, `rpc.grpc.status_code`,
//!   `rpc.connect_rpc.error_code`), as the conventions' `rpc/dup` migration mode does, so
//!   dashboards built on either keep working;
//! * **an event per message** (`message`, with `message.type` `SENT` or `RECEIVED` and
//!   `message.id` counting from 1 in each direction), which shows a stream's progress on its
//!   span;
//! * **propagation**: a client call made inside a traced context (a handler serving a traced
//!   call, or any span of yours) sends `traceparent`/`tracestate` (W3C Trace Context), and a
//!   server starts its span as the child of what arrives, so one trace spans the whole chain
//!   of services. The handler runs with its span current, so the calls it makes are children
//!   of it;
//! * **metrics**: `rpc.server.call.duration` / `rpc.client.call.duration` (histograms in
//!   seconds, with the conventions' buckets), and the messages per call
//!   (`rpc.server.requests_per_rpc`, `rpc.server.responses_per_rpc` and the client's), and
//!   the size of each message (`rpc.server.request.size`, `rpc.server.response.size` and
//!   the client's, in bytes of its binary protobuf encoding before compression, recorded as
//!   it passes with `rpc.system.name` and `rpc.method`: the status is not known yet). The
//!   conventions deprecated the count and size metrics in their 1.40 revision; they are
//!   kept because dashboards and the gRPC metrics (gRFC A66) still use them.
//!
//! Span status is `Error` on a client for any failure; on a server only for the codes that
//! mean the server failed (`unknown`, `deadline_exceeded`, `unimplemented`, `internal`,
//! `unavailable`, `data_loss`), as the gRPC conventions ask: a caller's mistake
//! (`invalid_argument`, `not_found`, ...) is not the server's error.
//!
//! ```
//! use switchboard::client::ClientConfig;
//! use switchboard::server::ServerConfig;
//! use switchboard_otel::OpenTelemetry;
//!
//! // With the global tracer and meter providers (set them up with the OpenTelemetry SDK):
//! let server = ServerConfig::default().interceptor(OpenTelemetry::new());
//! let client = ClientConfig::default().interceptor(OpenTelemetry::new());
//! # let _ = (server, client);
//! ```

use std::sync::Arc;

use http::HeaderMap;
use opentelemetry::context::FutureExt as _;
use opentelemetry::global::BoxedTracer;
use opentelemetry::metrics::{Histogram, Meter, MeterProvider};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use switchboard::interceptor::{Call, CallEnd, Interceptor, Next, Reply, Side};
use switchboard::{Code, Error, Protocol};

/// The instrumentation scope spans and metrics are recorded under.
const SCOPE: &str = "switchboard";

/// Bucket boundaries of the duration histograms, in seconds (the RPC conventions' advice).
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket boundaries of the messages-per-call histograms.
const COUNT_BUCKETS: [f64; 9] = [
    0.0, 1.0, 2.0, 5.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0,
];

/// The interceptor: spans, propagation and metrics for every call. See the
/// [crate documentation](crate).
pub struct OpenTelemetry {
    tracer: BoxedTracer,
    propagator: Box<dyn TextMapPropagator + Send + Sync>,
    server: Arc<Instruments>,
    client: Arc<Instruments>,
    names: Names,
    message_sizes: bool,
}

impl std::fmt::Debug for OpenTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenTelemetry").finish_non_exhaustive()
    }
}

impl Default for OpenTelemetry {
    fn default() -> Self {
        OpenTelemetry::new()
    }
}

impl OpenTelemetry {
    /// Records with the global tracer and meter providers (`opentelemetry::global`), and
    /// propagates W3C Trace Context.
    pub fn new() -> Self {
        OpenTelemetry::assemble(
            opentelemetry::global::tracer(SCOPE),
            &opentelemetry::global::meter(SCOPE),
        )
    }

    /// Records with these providers instead of the global ones.
    pub fn with_providers<T, M>(tracer_provider: &T, meter_provider: &M) -> Self
    where
        T: TracerProvider,
        T::Tracer: Send + Sync + 'static,
        <T::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
        M: MeterProvider,
    {
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let tracer = BoxedTracer::new(Box::new(tracer_provider.tracer_with_scope(scope.clone())));
        OpenTelemetry::assemble(tracer, &meter_provider.meter_with_scope(scope))
    }

    /// Propagates context with `propagator` (for example B3, or a composite) instead of W3C
    /// Trace Context.
    pub fn with_propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.propagator = Box::new(propagator);
        self
    }

    /// Whether to record the size of every message (on by default). Measuring a message
    /// walks it once more and each record costs a histogram update: off, a unary call costs
    /// about 1,200 instructions less with the no-op providers (see the guide's "Running in
    /// production").
    pub fn message_sizes(mut self, on: bool) -> Self {
        self.message_sizes = on;
        self
    }

    fn assemble(tracer: BoxedTracer, meter: &Meter) -> Self {
        OpenTelemetry {
            tracer,
            propagator: Box::new(TraceContextPropagator::new()),
            server: Arc::new(Instruments::new(meter, "server")),
            client: Arc::new(Instruments::new(meter, "client")),
            names: Names::default(),
            message_sizes: true,
        }
    }
}

/// Bucket boundaries of the message-size histograms, in bytes (those of gRPC's own
/// OpenTelemetry metrics, gRFC A66: 0, 1 KiB, 2 KiB, ... 4 GiB).
const SIZE_BUCKETS: [f64; 14] = [
    0.0,
    1024.0,
    2048.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

/// The histograms of one side.
struct Instruments {
    duration: Histogram<f64>,
    requests: Histogram<u64>,
    responses: Histogram<u64>,
    request_size: Histogram<u64>,
    response_size: Histogram<u64>,
}

impl Instruments {
    fn new(meter: &Meter, side: &str) -> Self {
        Instruments {
            duration: meter
                .f64_histogram(format!("rpc.{side}.call.duration"))
                .with_unit("s")
                .with_description("How long calls took, from start to end.")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            requests: meter
                .u64_histogram(format!("rpc.{side}.requests_per_rpc"))
                .with_unit("{count}")
                .with_description("Request messages per call.")
                .with_boundaries(COUNT_BUCKETS.to_vec())
                .build(),
            responses: meter
                .u64_histogram(format!("rpc.{side}.responses_per_rpc"))
                .with_unit("{count}")
                .with_description("Response messages per call.")
                .with_boundaries(COUNT_BUCKETS.to_vec())
                .build(),
            request_size: size_histogram(meter, side, "request"),
            response_size: size_histogram(meter, side, "response"),
        }
    }
}

/// `rpc.{side}.{direction}.size`: one record per message.
fn size_histogram(meter: &Meter, side: &str, direction: &str) -> Histogram<u64> {
    meter
        .u64_histogram(format!("rpc.{side}.{direction}.size"))
        .with_unit("By")
        .with_description(format!(
            "Size of each {direction} message, uncompressed (its binary protobuf encoding)."
        ))
        .with_boundaries(SIZE_BUCKETS.to_vec())
        .build()
}

/// Records each message's size in `histogram`, under the call's method.
fn record_sizes(
    histogram: Histogram<u64>,
    system_name: &'static str,
    method: &'static str,
) -> impl FnMut(usize) + Send + 'static {
    let labels = [
        KeyValue::new("rpc.system.name", system_name),
        KeyValue::new("rpc.method", method),
    ];
    move |size| histogram.record(size as u64, &labels)
}

/// Reads propagation fields from request headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes propagation fields into request headers.
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// `rpc.system.name` and the name before the 1.39 conventions (`rpc.system`).
fn system(protocol: Protocol) -> (&'static str, &'static str) {
    match protocol {
        Protocol::Connect => ("connectrpc", "connect_rpc"),
        _ => ("grpc", "grpc"),
    }
}

/// `rpc.response.status_code`: gRPC's code names (`OK`, `UNAVAILABLE`) or Connect's
/// (`ok`, `unavailable`).
fn status_code(protocol: Protocol, code: Option<Code>) -> &'static str {
    let Some(code) = code else {
        return match protocol {
            Protocol::Connect => "ok",
            _ => "OK",
        };
    };
    if protocol == Protocol::Connect {
        return code.as_str();
    }
    match code {
        Code::Canceled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A method's names, made once: `package.Service/Method` (the span name and `rpc.method`)
/// and `package.Service`.
#[derive(Clone, Copy)]
struct MethodNames {
    method: &'static str,
    service: &'static str,
}

/// The names of every method seen, kept for the process's life: one entry per method a
/// router serves or a client calls.
#[derive(Default)]
struct Names {
    known: std::sync::RwLock<std::collections::HashMap<&'static str, MethodNames>>,
}

impl Names {
    fn of(&self, procedure: &str) -> MethodNames {
        let method = procedure.trim_start_matches('/');
        if let Some(names) = self
            .known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(method)
        {
            return *names;
        }
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if let Some(names) = known.get(method) {
            return *names;
        }
        // Leaked once per method, so spans and attributes borrow them with no allocation.
        let method: &'static str = Box::leak(method.to_owned().into_boxed_str());
        let service = method
            .rsplit_once('/')
            .map_or(method, |(service, _)| service);
        let names = MethodNames { method, service };
        known.insert(method, names);
        names
    }
}

/// `network.protocol.version`: the HTTP version as the conventions write it.
fn protocol_version(version: http::Version) -> Option<&'static str> {
    match version {
        http::Version::HTTP_10 => Some("1.0"),
        http::Version::HTTP_11 => Some("1.1"),
        http::Version::HTTP_2 => Some("2"),
        http::Version::HTTP_3 => Some("3"),
        _ => None,
    }
}

/// Whether a server's span records `code` as its own error (the gRPC conventions' list).
fn server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Adds a `message` event to the span in `context` each time a hook runs.
fn message_events(
    context: &Context,
    kind: &'static str,
) -> impl FnMut(&mut (dyn std::any::Any + Send)) -> Result<(), Error> + Send + 'static {
    let context = context.clone();
    let mut count: i64 = 0;
    move |_message| {
        count += 1;
        context.span().add_event(
            "message",
            vec![
                KeyValue::new("message.type", kind),
                KeyValue::new("message.id", count),
            ],
        );
        Ok(())
    }
}

impl Interceptor for OpenTelemetry {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Error> {
        let side = call.side();
        let protocol = call
            .peer()
            .map_or(Protocol::Connect, switchboard::Peer::protocol);
        // The conventions name no RPC system for REST transcoding: its calls are reported as
        // Connect's (JSON over HTTP, Connect's code names).
        let protocol = match protocol {
            Protocol::Rest => Protocol::Connect,
            other => other,
        };
        let names = self.names.of(call.spec().procedure());
        let (system_name, old_system) = system(protocol);
        let (parent, kind) = match side {
            Side::Server => (
                self.propagator
                    .extract_with_context(&Context::new(), &HeaderExtractor(call.headers())),
                SpanKind::Server,
            ),
            Side::Client => (Context::current(), SpanKind::Client),
        };
        // The sampler sees the system and the method (to leave out health checks, say);
        // both are borrowed, so this costs one small allocation.
        let mut span = self
            .tracer
            .span_builder(names.method)
            .with_kind(kind)
            .with_attributes([
                KeyValue::new("rpc.system.name", system_name),
                KeyValue::new("rpc.method", names.method),
            ])
            .start_with_context(&self.tracer, &parent);
        // The other attributes and events only for a span that records (sampled, and a real
        // SDK).
        let recording = span.is_recording();
        if recording {
            let mut attributes = vec![
                KeyValue::new("rpc.system", old_system),
                KeyValue::new("rpc.service", names.service),
            ];
            if let Some(authority) = &call.info().authority {
                attributes.push(KeyValue::new("server.address", authority.host().to_owned()));
                if let Some(port) = authority.port_u16() {
                    attributes.push(KeyValue::new("server.port", i64::from(port)));
                }
            }
            if let Some(version) = call.info().http_version.and_then(protocol_version) {
                attributes.push(KeyValue::new("network.protocol.version", version));
            }
            if side == Side::Server {
                if let Some(addr) = call.peer().and_then(switchboard::Peer::addr) {
                    attributes.push(KeyValue::new("network.peer.address", addr.ip().to_string()));
                    attributes.push(KeyValue::new("network.peer.port", i64::from(addr.port())));
                }
            }
            span.set_attributes(attributes);
        }
        let context = parent.with_span(span);
        if side == Side::Client {
            self.propagator
                .inject_context(&context, &mut HeaderInjector(call.headers_mut()));
        }
        let (sent, received) = match side {
            Side::Server => ("RECEIVED", "SENT"),
            Side::Client => ("SENT", "RECEIVED"),
        };
        if recording {
            call.on_message(message_events(&context, sent));
        }
        let instruments = match side {
            Side::Server => self.server.clone(),
            Side::Client => self.client.clone(),
        };
        let response_sizes = self.message_sizes.then(|| {
            call.on_message_size(record_sizes(
                instruments.request_size.clone(),
                system_name,
                names.method,
            ));
            record_sizes(instruments.response_size.clone(), system_name, names.method)
        });
        let ending = context.clone();
        call.on_end(move |end: &mut CallEnd<'_>| {
            let code = end.error().map(Error::code);
            let status = status_code(protocol, code);
            let span = ending.span();
            if recording {
                match (protocol, code) {
                    (Protocol::Connect, Some(code)) => span
                        .set_attribute(KeyValue::new("rpc.connect_rpc.error_code", code.as_str())),
                    (Protocol::Connect, None) => {}
                    _ => span.set_attribute(KeyValue::new(
                        "rpc.grpc.status_code",
                        i64::from(code.map_or(0, Code::as_i32)),
                    )),
                }
                span.set_attribute(KeyValue::new("rpc.response.status_code", status));
                // A client learns the HTTP version from the response (a server's span has it
                // from the start).
                if side == Side::Client {
                    if let Some(version) = end.http_version().and_then(protocol_version) {
                        span.set_attribute(KeyValue::new("network.protocol.version", version));
                    }
                }
                if let Some(error) = end.error() {
                    span.set_attribute(KeyValue::new("error.type", status));
                    if side == Side::Client || server_fault(error.code()) {
                        span.set_status(Status::error(error.message().to_owned()));
                    }
                }
            }
            span.end();
            let labels = [
                KeyValue::new("rpc.system.name", system_name),
                KeyValue::new("rpc.method", names.method),
                KeyValue::new("rpc.response.status_code", status),
                KeyValue::new("error.type", status),
            ];
            // `error.type` only on failures.
            let labels = if code.is_some() {
                &labels[..]
            } else {
                &labels[..3]
            };
            // Received and sent, from this side's point of view.
            let (received, sent) = end.messages();
            let (requests, responses) = match side {
                Side::Server => (received, sent),
                Side::Client => (sent, received),
            };
            instruments
                .duration
                .record(end.duration().as_secs_f64(), labels);
            instruments.requests.record(requests, labels);
            instruments.responses.record(responses, labels);
        });
        let mut reply = next.run(call).with_context(context.clone()).await?;
        if let Some(response_sizes) = response_sizes {
            reply.on_message_size(response_sizes);
        }
        if recording {
            reply.on_message(message_events(&context, received));
        }
        Ok(reply)
    }
}
