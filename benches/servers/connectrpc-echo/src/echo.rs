//! `bench.v1.EchoService` on connectrpc's generated trait.
//!
//! Requests arrive as buffa views borrowing the request body, so reading them copies
//! nothing; each response is the owned message the codegen generates (`Vec<u8>` payloads),
//! which is how a handler normally answers. Echo therefore copies the payload once — the
//! one payload allocation that prost-based servers make instead while decoding.

use futures_util::StreamExt as _;
use futures_util::stream;

use connectrpc::{
    InboundStream, RequestContext, Response, ServiceRequest, ServiceResult, ServiceStream,
};

use crate::proto::bench::v1::{
    EchoRequest, EchoResponse, EchoService, IngestAck, LogBatch, StreamRequest, StreamSummary,
};

/// The benchmark's echo service; it keeps no state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl EchoService for Echo {
    async fn echo(
        &self,
        _ctx: RequestContext,
        request: ServiceRequest<'_, EchoRequest>,
    ) -> ServiceResult<EchoResponse> {
        Response::ok(EchoResponse {
            payload: request.payload.to_vec(),
            ..Default::default()
        })
    }

    async fn ingest(
        &self,
        _ctx: RequestContext,
        request: ServiceRequest<'_, LogBatch>,
    ) -> ServiceResult<IngestAck> {
        // The view decoded every record (UTF-8 checks included) before the handler ran;
        // summing the message lengths walks each one.
        let mut records = 0u32;
        let mut message_bytes = 0u64;
        for record in request.records.iter() {
            records += 1;
            message_bytes += record.message.len() as u64;
        }
        Response::ok(IngestAck {
            records,
            message_bytes,
            ..Default::default()
        })
    }

    async fn server_stream(
        &self,
        _ctx: RequestContext,
        request: ServiceRequest<'_, StreamRequest>,
    ) -> ServiceResult<ServiceStream<EchoResponse>> {
        // The response stream outlives the borrowed request, so take what it needs now.
        let response = EchoResponse {
            payload: request.payload.to_vec(),
            ..Default::default()
        };
        let count = request.count as usize;
        Response::stream_ok(stream::repeat_with(move || Ok(response.clone())).take(count))
    }

    async fn client_stream(
        &self,
        _ctx: RequestContext,
        mut requests: InboundStream<EchoRequest>,
    ) -> ServiceResult<StreamSummary> {
        let mut summary = StreamSummary::default();
        while let Some(request) = requests.next().await {
            let request = request?;
            summary.messages += 1;
            summary.bytes += request.payload().len() as u64;
        }
        Response::ok(summary)
    }

    async fn bidi(
        &self,
        _ctx: RequestContext,
        requests: InboundStream<EchoRequest>,
    ) -> ServiceResult<ServiceStream<EchoResponse>> {
        // A lazy map: the next request is read only when the transport asks for the next
        // response, i.e. after the previous answer was handed over — one answer per
        // request, in order, while the client keeps sending.
        let answers = requests.map(|request| {
            request.map(|request| EchoResponse {
                payload: request.payload().to_vec(),
                ..Default::default()
            })
        });
        Response::stream_ok(answers)
    }
}
