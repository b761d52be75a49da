//! The Eliza demo behind a bearer-token check, done as a tower layer around the router and
//! served by the built-in server: `cargo run -p eliza --example auth [-- --addr HOST:PORT]`.
//!
//! Calls to `connectrpc.eliza.v1.ElizaService` need `Authorization: Bearer demo-token`; the
//! layer puts the caller's [`Identity`] into the request extensions, where a handler reads
//! it. Health checks and server reflection stay open, so probes and grpcurl keep working.
//! Everyone else gets `unauthenticated`, written in the protocol they called with:
//!
//! ```text
//! curl -s -H 'content-type: application/json' -d '{"sentence":"hi"}' \
//!   http://127.0.0.1:8081/connectrpc.eliza.v1.ElizaService/Say
//! # {"code":"unauthenticated","message":"a bearer token is required"}
//! curl -s -H 'authorization: Bearer demo-token' -H 'content-type: application/json' \
//!   -d '{"sentence":"hi"}' http://127.0.0.1:8081/connectrpc.eliza.v1.ElizaService/Say
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use switchboard::server::{Server, error_response};
use switchboard::{Body, Code, Error};

/// Who is calling, as the layer established it; handlers read it from
/// `request.extensions()`.
#[derive(Clone, Debug)]
pub struct Identity(pub String);

/// The procedures under this prefix need a token; everything else (health, reflection) is
/// open.
const PROTECTED: &str = "/connectrpc.eliza.v1.ElizaService/";
const TOKEN: &str = "demo-token";

/// The layer's service.
#[derive(Clone)]
struct RequireToken<S> {
    inner: S,
}

impl<S, B> tower_service::Service<http::Request<B>> for RequireToken<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
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
        if request.uri().path().starts_with(PROTECTED) {
            let token = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            if token != Some(TOKEN) {
                let error = Error::new(Code::Unauthenticated, "a bearer token is required");
                let response = error_response(&request, &error);
                return Box::pin(async move { Ok(response) });
            }
            request
                .extensions_mut()
                .insert(Identity("demo-user".to_owned()));
        }
        Box::pin(self.inner.call(request))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `--addr HOST:PORT` (default 127.0.0.1:8081; port 0 picks a free one).
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:8081".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs HOST:PORT")?,
            other => return Err(format!("unknown argument {other:?}; use --addr HOST:PORT").into()),
        }
    }
    let addr = addr.parse()?;
    let (listener, local) = switchboard::server::bind(addr).await?;
    let service = RequireToken {
        inner: eliza::router(),
    };
    println!("eliza (bearer token required) listening on http://{local}");
    Server::from_service(service)
        .serve_with_shutdown(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
