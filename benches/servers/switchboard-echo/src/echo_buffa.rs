//! The benchmark handlers over buffa messages (`switchboard-echo-buffa`): requests arrive as
//! zero-copy views into the request body, responses are owned buffa messages.

use futures_util::StreamExt as _;
use switchboard::buffa::View;
use switchboard::{Error, Request, Response, ResponseStream, Streaming};

use crate::Echo;
use crate::proto::*;

impl EchoService for Echo {
    async fn echo(
        &self,
        request: Request<View<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Error> {
        let payload = request.message().view().payload.to_vec();
        Ok(Response::new(EchoResponse {
            payload,
            ..Default::default()
        }))
    }

    async fn ingest(&self, request: Request<View<LogBatch>>) -> Result<Response<IngestAck>, Error> {
        // Every record, its strings checked as UTF-8, was decoded before the handler ran;
        // the messages are `&str` slices of the request body.
        let batch = request.message().view();
        let message_bytes = batch.records.iter().map(|r| r.message.len() as u64).sum();
        Ok(Response::new(IngestAck {
            records: batch.records.len() as u32,
            message_bytes,
            ..Default::default()
        }))
    }

    async fn server_stream(
        &self,
        request: Request<View<StreamRequest>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let view = request.message().view();
        let response = EchoResponse {
            payload: view.payload.to_vec(),
            ..Default::default()
        };
        let responses = std::iter::repeat_n(response, view.count as usize).map(Ok);
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            responses,
        ))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<View<EchoRequest>>>,
    ) -> Result<Response<StreamSummary>, Error> {
        let mut requests = request.into_message();
        let mut summary = StreamSummary::default();
        while let Some(message) = requests.message().await? {
            summary.messages += 1;
            summary.bytes += message.view().payload.len() as u64;
        }
        Ok(Response::new(summary))
    }

    async fn bidi(
        &self,
        request: Request<Streaming<View<EchoRequest>>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        // One answer per message, produced when the body asks for the next one.
        let responses = request.into_message().map(|message| {
            message.map(|m| EchoResponse {
                payload: m.view().payload.to_vec(),
                ..Default::default()
            })
        });
        Ok(Response::new(Box::pin(responses)))
    }
}
