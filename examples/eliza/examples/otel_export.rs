//! A traced call exported over OTLP: a switchboard client calls a switchboard server, both with
//! `switchboard-otel`, and the OpenTelemetry SDK sends both spans with `opentelemetry-otlp`
//! (OTLP over HTTP, protobuf) to the collector at `--otlp`. Run by `cargo xtask otel`, which
//! starts an OpenTelemetry Collector and checks what reached it.
//!
//! ```text
//! cargo run -p eliza --example otel_export -- --otlp http://127.0.0.1:4318
//! ```

use eliza::proto::{ElizaServiceClient, ElizaServiceServer, SayRequest};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use switchboard::client::{Client, ClientConfig};
use switchboard::server::{Router, Server, ServerConfig, bind};
use switchboard_otel::OpenTelemetry;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = match (args.next().as_deref(), args.next()) {
        (Some("--otlp"), Some(url)) => url,
        _ => return Err("usage: otel_export --otlp http://HOST:PORT".into()),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let meter_provider = SdkMeterProvider::builder().build();
    let traced = || OpenTelemetry::with_providers(&tracer_provider, &meter_provider);

    let router = Router::new()
        .with_config(ServerConfig::default().interceptor(traced()))
        .add_service(ElizaServiceServer::new(eliza::Eliza));
    let (listener, addr) = bind("127.0.0.1:0".parse()?).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(router).serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));

    let client = ElizaServiceClient::new(
        Client::h2c(&format!("http://{addr}"))?
            .with_config(ClientConfig::default().interceptor(traced())),
    );
    let reply = client
        .say(SayRequest {
            sentence: "Is anyone tracing this?".into(),
        })
        .await?;
    println!("eliza said {:?}", reply.message().sentence);

    let _ = stop.send(());
    server.await??;
    // The batch exporter sends what it holds now; a failure to reach the collector shows here.
    tracer_provider.force_flush()?;
    tracer_provider.shutdown()?;
    println!("exported");
    Ok(())
}
