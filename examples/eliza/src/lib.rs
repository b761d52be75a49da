//! The Connect Eliza demo on switchboard: the `connectrpc.eliza.v1.ElizaService` schema of
//! Connect's public demo, so clients written for that demo work unchanged.

pub mod doctor;

/// Generated messages, service trait, server and client.
#[allow(missing_docs)]
pub mod proto {
    switchboard::include_proto!("connectrpc.eliza.v1");
}

use futures_util::StreamExt as _;
use proto::*;
use switchboard::{Error, Request, Response, ResponseStream, Streaming};

/// The Eliza service.
#[derive(Clone, Debug, Default)]
pub struct Eliza;

impl ElizaService for Eliza {
    async fn say(&self, request: Request<SayRequest>) -> Result<Response<SayResponse>, Error> {
        let (sentence, _) = doctor::reply(&request.message().sentence);
        Ok(Response::new(SayResponse { sentence }))
    }

    async fn converse(
        &self,
        request: Request<Streaming<ConverseRequest>>,
    ) -> Result<Response<ResponseStream<ConverseResponse>>, Error> {
        let mut requests = request.into_message();
        let replies = async_stream(move |tx| async move {
            while let Some(next) = requests.next().await {
                match next {
                    Ok(message) => {
                        let (sentence, done) = doctor::reply(&message.sentence);
                        if tx.send(Ok(ConverseResponse { sentence })).await.is_err() || done {
                            break;
                        }
                    }
                    Err(error) => {
                        let _ = tx.send(Err(error)).await;
                        break;
                    }
                }
            }
        });
        Ok(Response::new(replies))
    }

    async fn introduce(
        &self,
        request: Request<IntroduceRequest>,
    ) -> Result<Response<ResponseStream<IntroduceResponse>>, Error> {
        let sentences = doctor::introduction(&request.message().name)
            .into_iter()
            .map(|sentence| Ok(IntroduceResponse { sentence }));
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            sentences,
        ))))
    }
}

/// A response stream fed by a task: the producer runs concurrently with the response body,
/// so a bidirectional conversation can answer each message as it arrives.
fn async_stream<T, F, Fut>(produce: F) -> ResponseStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// The router with the Eliza service mounted.
pub fn router() -> switchboard::server::Router {
    switchboard::server::Router::new().add_service(ElizaServiceServer::new(Eliza))
}
