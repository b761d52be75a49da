//! `bench.v1.EchoService` on tonic: `tonic-echo --addr 127.0.0.1:PORT`.
//!
//! gRPC over h2c, and gRPC-Web (binary and text) over HTTP/1.1 or h2c through tonic-web's
//! `GrpcWebLayer`, which passes plain gRPC requests through untouched. Everything else is
//! tonic's default. Prints `listening on <addr>` once bound and exits 0 on SIGTERM or SIGINT,
//! after tonic's graceful shutdown or a 500 ms grace period, whichever ends first.
#![deny(unsafe_code)]

use std::pin::Pin;
use std::time::Duration;

use tokio_stream::{Stream, StreamExt as _};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// The generated `bench.v1` messages and the `EchoService` server.
#[allow(missing_docs)]
mod proto {
    tonic::include_proto!("bench.v1");
}

use proto::echo_service_server::{EchoService, EchoServiceServer};
use proto::*;

const USAGE: &str = "usage: tonic-echo [--addr HOST:PORT]   (default 127.0.0.1:8080)";

/// How long shutdown waits for calls in flight: the harness stops its load before it sends
/// SIGTERM, and the process must be gone within a second so profilers can write their output.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The stream type of both streaming responses.
type EchoStream = Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send + 'static>>;

/// The benchmark service: every method does the least work its contract allows.
#[derive(Clone, Copy, Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let payload = request.into_inner().payload;
        Ok(Response::new(EchoResponse { payload }))
    }

    async fn ingest(&self, request: Request<LogBatch>) -> Result<Response<IngestAck>, Status> {
        let batch = request.get_ref();
        let message_bytes = batch.records.iter().map(|r| r.message.len() as u64).sum();
        Ok(Response::new(IngestAck {
            records: batch.records.len() as u32,
            message_bytes,
        }))
    }

    type ServerStreamStream = EchoStream;

    async fn server_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let StreamRequest { count, payload } = request.into_inner();
        let responses = std::iter::repeat_n(payload, count as usize)
            .map(|payload| Ok(EchoResponse { payload }));
        Ok(Response::new(Box::pin(tokio_stream::iter(responses))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<StreamSummary>, Status> {
        let mut requests = request.into_inner();
        let mut summary = StreamSummary::default();
        while let Some(message) = requests.message().await? {
            summary.messages += 1;
            summary.bytes += message.payload.len() as u64;
        }
        Ok(Response::new(summary))
    }

    type BidiStream = EchoStream;

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStream>, Status> {
        // Each response is produced when the body asks for the next one, so it is sent
        // before the next request is read: one answer per message, as it arrives.
        let responses = request
            .into_inner()
            .map(|message| message.map(|m| EchoResponse { payload: m.payload }));
        Ok(Response::new(Box::pin(responses)))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = bench_cli::parse_addr(USAGE)?;
    // Bound here rather than by `serve` so the banner can name the port actually bound.
    // `serve` would set TCP_NODELAY itself (tonic's default); with our own listener we ask.
    let incoming = TcpIncoming::bind(addr)?.with_nodelay(Some(true));
    let local = incoming.local_addr()?;
    let signal = bench_cli::shutdown_signal()?;
    println!("listening on {local}");
    std::io::Write::flush(&mut std::io::stdout())?;
    // tonic's graceful shutdown waits for every connection to close, with no time limit; a
    // peer that keeps a stream open (or never acknowledges the GOAWAY ping) would keep the
    // process alive. So the signal also starts a grace period, after which main returns and
    // the runtime drops what is left.
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        signal.await;
        let _ = stopping.send(());
    };
    let serve = Server::builder()
        // gRPC-Web clients may speak HTTP/1.1; gRPC ones use h2c on the same port.
        .accept_http1(true)
        .layer(tonic_web::GrpcWebLayer::new())
        .add_service(EchoServiceServer::new(Echo))
        .serve_with_incoming_shutdown(incoming, shutdown);
    let grace_over = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = serve => served?,
        () = grace_over => {}
    }
    Ok(())
}
