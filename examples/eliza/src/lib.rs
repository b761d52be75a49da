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
use switchboard::{Error, Request, Response, ResponseStream, StreamTrailers, Streaming};

/// The Eliza service.
#[derive(Clone, Debug, Default)]
pub struct Eliza;

impl ElizaService for Eliza {
    async fn say(&self, request: Request<SayRequest>) -> Result<Response<SayResponse>, Error> {
        if request.message().sentence.trim().is_empty() {
            return Err(empty_sentence());
        }
        // Say has no side effects, so its answers may be cached: the ETag names the sentence,
        // and a conditional GET for the same sentence gets `304 Not Modified`.
        let etag = etag_of(&request.message().sentence);
        let mut validators = http::HeaderMap::new();
        validators.insert(http::header::ETAG, etag.clone());
        if request.headers().get(http::header::IF_NONE_MATCH) == Some(&etag) {
            return Err(Error::not_modified(validators));
        }
        let (sentence, _) = doctor::reply(&request.message().sentence);
        let mut response = Response::new(SayResponse { sentence });
        *response.headers_mut() = validators;
        Ok(response)
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
        // A trailer computed from the stream, sent after its last message: how many
        // sentences the introduction had.
        let trailers = StreamTrailers::new();
        let counter = trailers.clone();
        let mut sent = 0u32;
        let sentences = doctor::introduction(&request.message().name)
            .into_iter()
            .map(move |sentence| {
                sent += 1;
                counter.insert("x-sentences", sent.into());
                Ok(IntroduceResponse { sentence })
            });
        Ok(
            Response::new(Box::pin(futures_util::stream::iter(sentences)) as ResponseStream<_>)
                .with_stream_trailers(trailers),
        )
    }
}

/// A strong ETag for the answer to `sentence` (FNV-1a of its bytes).
fn etag_of(sentence: &str) -> http::HeaderValue {
    let hash = sentence
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    http::HeaderValue::try_from(format!("\"{hash:016x}\"")).expect("hex digits are a valid header")
}

/// The error for saying nothing: `invalid_argument` with a standard `google.rpc.BadRequest`
/// detail naming the field, which every gRPC and Connect client can decode.
fn empty_sentence() -> Error {
    use switchboard::error_details::{BadRequest, bad_request::FieldViolation};
    Error::invalid_argument("say something: the sentence is empty").with_detail(
        switchboard::ErrorDetail::new(&BadRequest {
            field_violations: vec![FieldViolation {
                field: "sentence".into(),
                description: "must not be empty".into(),
                ..Default::default()
            }],
        }),
    )
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

/// The router with the Eliza service mounted, and the `grpc.health.v1.Health` service
/// reporting the server (`""`) and Eliza SERVING. Server reflection (`grpc.reflection.v1` and
/// `grpc.reflection.v1alpha`) describes every service, so grpcurl and `buf curl` need no
/// `.proto` files.
pub fn router() -> switchboard::server::Router {
    router_with_health().0
}

/// The router of [`router`] with the reporter of its health service, to change what it
/// reports (the demo's SIGUSR1 toggles the server and Eliza between SERVING and NOT_SERVING).
///
/// ```
/// use switchboard_health::ServingStatus;
///
/// let (router, health) = eliza::router_with_health();
/// assert!(router.procedures().any(|p| p == "/grpc.health.v1.Health/Check"));
/// assert_eq!(health.status(""), Some(ServingStatus::Serving));
/// let eliza = eliza::proto::ELIZA_SERVICE_NAME;
/// assert_eq!(health.status(eliza), Some(ServingStatus::Serving));
/// health.set_not_serving(eliza);
/// assert_eq!(health.status(eliza), Some(ServingStatus::NotServing));
/// ```
pub fn router_with_health() -> (
    switchboard::server::Router,
    switchboard_health::HealthReporter,
) {
    let (reporter, health) = switchboard_health::health();
    reporter.set_serving("");
    reporter.set_serving(ELIZA_SERVICE_NAME);
    let router = switchboard::server::Router::new()
        .add_service(ElizaServiceServer::new(Eliza))
        .add_service(health);
    (with_reflection(router), reporter)
}

/// Mounts server reflection (`grpc.reflection.v1` and `grpc.reflection.v1alpha`) describing
/// every service already on `router`: mount it last.
pub fn with_reflection(router: switchboard::server::Router) -> switchboard::server::Router {
    switchboard_reflection::Reflection::from_router(&router)
        .expect("generated descriptor sets are valid")
        .mount(router)
}

/// The guide's Rust blocks (`docs/guide/`), compiled and run as doctests: they call this
/// crate's generated code, as a user's service would.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../../docs/guide/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../../../docs/guide/streaming.md")]
    pub struct Streaming;
    #[doc = include_str!("../../../docs/guide/errors.md")]
    pub struct Errors;
    #[doc = include_str!("../../../docs/guide/metadata.md")]
    pub struct Metadata;
    #[doc = include_str!("../../../docs/guide/protocols.md")]
    pub struct Protocols;
    #[doc = include_str!("../../../docs/guide/tls.md")]
    pub struct Tls;
    #[doc = include_str!("../../../docs/guide/browsers.md")]
    pub struct Browsers;
    #[doc = include_str!("../../../docs/guide/deployment.md")]
    pub struct Deployment;
    #[doc = include_str!("../../../docs/guide/interceptors.md")]
    pub struct Interceptors;
    #[doc = include_str!("../../../docs/guide/faq.md")]
    pub struct Faq;
    #[doc = include_str!("../../../docs/guide/performance.md")]
    pub struct Performance;
    #[doc = include_str!("../../../docs/guide/production.md")]
    pub struct Production;
    #[doc = include_str!("../../../docs/guide/rest.md")]
    pub struct Rest;
    #[doc = include_str!("../../../docs/guide/http3.md")]
    pub struct Http3;
    #[doc = include_str!("../../../docs/guide/README.md")]
    pub struct Contents;
}
