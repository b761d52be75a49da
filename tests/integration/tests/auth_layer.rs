//! Authentication in a tower layer around the router, served by the built-in server: the
//! layer reads a bearer token (h2c) or the verified client certificate (mutual TLS) from
//! the request, puts the caller's identity into the request extensions for handlers, and
//! rejects everyone else with an `unauthenticated` error written in each protocol's form.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use switchboard::client::{Client, ClientConfig, HttpTransport};
use switchboard::server::{Router, Server, error_response};
use switchboard::{Body, Code, Error, PeerCertificates, Protocol, Request, Response};
use switchboard_integration_tests::Running;
use switchboard_integration_tests::mutual_tls;
use switchboard_integration_tests::proto::*;

/// Who is calling, as the auth layer established it.
#[derive(Clone, Debug)]
struct Identity(String);

/// The auth layer's service: a bearer token `token-<name>` or a verified client
/// certificate, else `unauthenticated`.
#[derive(Clone)]
struct Authenticate<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for Authenticate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let from_token = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer token-"))
            .map(str::to_owned);
        let from_certificate = request
            .extensions()
            .get::<PeerCertificates>()
            .map(|certs| format!("mtls:{}", certs.0.len()));
        match from_token.or(from_certificate) {
            Some(name) => {
                request.extensions_mut().insert(Identity(name));
                Box::pin(self.inner.call(request))
            }
            None => {
                let error = Error::new(Code::Unauthenticated, "who are you?");
                let response = error_response(&request, &error);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// Echoes who the auth layer said is calling, and where from.
struct WhoAmI;

impl TestService for WhoAmI {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let identity = request
            .extensions()
            .get::<Identity>()
            .ok_or_else(|| Error::internal("no identity: the layer did not run"))?;
        let remote = request.peer().and_then(|peer| peer.addr()).is_some();
        Ok(Response::new(EchoResponse {
            text: format!("{} remote={remote}", identity.0),
            ..Default::default()
        }))
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<switchboard::ResponseStream<EchoResponse>>, Error> {
        let reply = self.echo(request).await?.into_message();
        Ok(Response::new(Box::pin(futures_util::stream::iter([Ok(
            reply,
        )]))))
    }
}

fn layered() -> Authenticate<Router> {
    Authenticate {
        inner: Router::new().add_service(TestServiceServer::new(WhoAmI)),
    }
}

const PROTOCOLS: [Protocol; 3] = [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb];

async fn calls(base: Client<HttpTransport>, token: Option<&str>) -> Vec<Result<String, Code>> {
    let mut outcomes = Vec::new();
    for protocol in PROTOCOLS {
        let mut config = ClientConfig::default().protocol(protocol);
        if let Some(token) = token {
            config = config.header(
                http::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        let client = TestServiceClient::new(base.clone().with_config(config));
        let unary = client.echo(EchoRequest::default()).await;
        outcomes.push(unary.map(|r| r.into_message().text).map_err(|e| e.code()));
        let stream = async {
            let mut stream = client
                .server_stream(EchoRequest::default())
                .await?
                .into_message();
            let first = stream.message().await?.map(|m| m.text).unwrap_or_default();
            Ok::<_, Error>(first)
        };
        outcomes.push(stream.await.map_err(|e| e.code()));
    }
    outcomes
}

#[tokio::test]
async fn a_tower_layer_authenticates_with_a_bearer_token() {
    let server = Running::serve(Server::from_service(layered())).await;
    let base = Client::h2c(&server.url()).unwrap();
    let ok = calls(base.clone(), Some("token-ada")).await;
    assert_eq!(ok, vec![Ok("ada remote=true".to_owned()); 6]);
    let refused = calls(base.clone(), None).await;
    assert_eq!(refused, vec![Err(Code::Unauthenticated); 6]);
    let wrong = calls(base, Some("nonsense")).await;
    assert_eq!(wrong, vec![Err(Code::Unauthenticated); 6]);
    server.stop().await;
}

#[tokio::test]
async fn a_tower_layer_authenticates_with_the_client_certificate() {
    let (tls, roots) = mutual_tls();
    let server = Running::serve(Server::from_service(layered()).with_tls(tls)).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let base = Client::new(&url, HttpTransport::tls(roots)).unwrap();
    let outcomes = calls(base, None).await;
    for outcome in outcomes {
        let text = outcome.expect("the certificate authenticates");
        assert!(text.starts_with("mtls:1 remote=true"), "{text}");
    }
    server.stop().await;
}
