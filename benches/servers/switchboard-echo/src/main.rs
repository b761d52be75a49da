//! `bench.v1.EchoService` on switchboard: `switchboard-echo --addr 127.0.0.1:PORT`.
//!
//! One handler serves the Connect protocol, gRPC and gRPC-Web, over HTTP/1.1 and h2c on the
//! same port. It is written as any user of the library would write it: the generated trait,
//! a `Router`, the built-in `Server`, with two documented settings the benchmark contract
//! asks for: responses are never compressed, and shutdown waits at most 500 ms for calls in
//! flight. Prints `listening on <addr>` once bound and exits 0 on SIGTERM or SIGINT.
#![deny(unsafe_code)]

use std::time::Duration;

#[cfg(not(feature = "buffa"))]
use futures_util::StreamExt as _;
use switchboard::Error;
use switchboard::compression::CompressionPolicy;
use switchboard::interceptor::{Call, Hooks, Interceptor, Next, Reply};
use switchboard::server::{Router, ServerConfig};
#[cfg(not(feature = "buffa"))]
use switchboard::{Request, Response, ResponseStream, Streaming};

/// The generated `bench.v1` messages and the `EchoService` server trait.
#[allow(missing_docs)]
mod proto {
    switchboard::include_proto!("bench.v1");
}

#[cfg(feature = "buffa")]
use proto::EchoServiceServer;
#[cfg(not(feature = "buffa"))]
use proto::*;

const USAGE: &str = "usage: switchboard-echo [--addr HOST:PORT]   (default 127.0.0.1:8080)";

/// How long shutdown waits for calls in flight: the harness stops its load before it sends
/// SIGTERM, and the process must be gone within a second so profilers can write their output.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The benchmark service: every method does the least work its contract allows.
#[derive(Clone, Copy, Debug, Default)]
struct Echo;

// `switchboard-echo-buffa` serves the same handlers over buffa views (echo_buffa.rs).
#[cfg(feature = "buffa")]
mod echo_buffa;

#[cfg(not(feature = "buffa"))]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let payload = request.into_message().payload;
        Ok(Response::new(EchoResponse { payload }))
    }

    async fn ingest(&self, request: Request<LogBatch>) -> Result<Response<IngestAck>, Error> {
        let batch = request.message();
        let message_bytes = batch.records.iter().map(|r| r.message.len() as u64).sum();
        Ok(Response::new(IngestAck {
            records: batch.records.len() as u32,
            message_bytes,
        }))
    }

    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let StreamRequest { count, payload } = request.into_message();
        let responses = std::iter::repeat_n(payload, count as usize)
            .map(|payload| Ok(EchoResponse { payload }));
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            responses,
        ))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<StreamSummary>, Error> {
        let mut requests = request.into_message();
        let mut summary = StreamSummary::default();
        while let Some(message) = requests.message().await? {
            summary.messages += 1;
            summary.bytes += message.payload.len() as u64;
        }
        Ok(Response::new(summary))
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        // Each response is produced when the body asks for the next one, so it is sent
        // before the next request is read: one answer per message, as it arrives.
        let responses = request
            .into_message()
            .map(|message| message.map(|m| EchoResponse { payload: m.payload }));
        Ok(Response::new(Box::pin(responses)))
    }
}

/// An interceptor that only passes the call on: what wrapping a call costs, measured by
/// running with `SWITCHBOARD_ECHO_INTERCEPTOR=pass` (never in the side-by-side benchmarks).
struct PassThrough;

impl Interceptor for PassThrough {
    async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Error> {
        next.run(call).await
    }
}

/// `interceptor::Hooks` with every method left to its default: the cost of the hook form,
/// with `SWITCHBOARD_ECHO_INTERCEPTOR=hooks`.
struct NoHooks;

impl Hooks for NoHooks {}

/// Spans recorded and batched, then dropped: the SDK's work without an exporter's.
#[cfg(feature = "otel")]
#[derive(Debug)]
struct DropSpans;

#[cfg(feature = "otel")]
impl opentelemetry_sdk::trace::SpanExporter for DropSpans {
    async fn export(
        &self,
        _batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// `switchboard-otel` with the SDK recording every span (always sampled, batched, dropped)
/// and aggregating the metrics (exported to memory once a minute, the SDK's default period):
/// `SWITCHBOARD_ECHO_INTERCEPTOR=otel`.
#[cfg(feature = "otel")]
fn recording_otel() -> switchboard_otel::OpenTelemetry {
    let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(DropSpans)
        .build();
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(
            opentelemetry_sdk::metrics::PeriodicReader::builder(
                opentelemetry_sdk::metrics::InMemoryMetricExporter::default(),
            )
            .build(),
        )
        .build();
    switchboard_otel::OpenTelemetry::with_providers(&tracer, &meter)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = bench_cli::parse_addr(USAGE)?;
    // The benchmark compares uncompressed exchanges, whatever the client offers.
    let mut config = ServerConfig::default().compression_policy(CompressionPolicy {
        min_bytes: usize::MAX,
    });
    match std::env::var("SWITCHBOARD_ECHO_INTERCEPTOR").as_deref() {
        Ok("pass") => config = config.interceptor(PassThrough),
        Ok("hooks") => config = config.hooks(NoHooks),
        #[cfg(feature = "otel")]
        Ok("otel") => config = config.interceptor(recording_otel()),
        // The global providers, never set: OpenTelemetry's no-op API.
        #[cfg(feature = "otel")]
        Ok("otel-noop") => config = config.interceptor(switchboard_otel::OpenTelemetry::new()),
        // The same, without the message-size metrics.
        #[cfg(feature = "otel")]
        Ok("otel-noop-no-sizes") => {
            config = config.interceptor(switchboard_otel::OpenTelemetry::new().message_sizes(false))
        }
        Ok(other) => {
            return Err(format!(
                "SWITCHBOARD_ECHO_INTERCEPTOR={other:?}: use pass, hooks, otel, otel-noop or \
                 otel-noop-no-sizes (the otel ones need SWITCHBOARD_ECHO_FEATURES=otel)"
            )
            .into());
        }
        Err(_) => {}
    }
    let router = Router::new()
        .with_config(config)
        .add_service(EchoServiceServer::new(Echo));
    let (listener, local) = switchboard::server::bind(addr).await?;
    let shutdown = bench_cli::shutdown_signal()?;
    println!("listening on {local}");
    std::io::Write::flush(&mut std::io::stdout())?;
    let server = switchboard::server::Server::new(router).shutdown_grace(SHUTDOWN_GRACE);
    #[cfg(feature = "http3")]
    let server = with_http3(server)?;
    server.serve_with_shutdown(listener, shutdown).await?;
    Ok(())
}

/// `switchboard-echo-h3`: TLS with the certificate and key that `SWITCHBOARD_ECHO_TLS_CERT`
/// and `SWITCHBOARD_ECHO_TLS_KEY` name, and HTTP/3 on the same port number.
#[cfg(feature = "http3")]
fn with_http3(
    server: switchboard::server::Server,
) -> Result<switchboard::server::Server, Box<dyn std::error::Error>> {
    let read = |variable: &str| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let path = std::env::var(variable).map_err(|_| format!("{variable} is not set"))?;
        std::fs::read(&path).map_err(|e| format!("{variable}={path}: {e}").into())
    };
    let tls = switchboard::server::tls::server_config(
        &read("SWITCHBOARD_ECHO_TLS_CERT")?,
        &read("SWITCHBOARD_ECHO_TLS_KEY")?,
        None,
    )?;
    Ok(server.with_tls(tls).http3())
}
