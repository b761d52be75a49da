//! The Eliza demo behind a bearer-token check, written as interceptors:
//! `cargo run -p eliza --example auth [-- --addr HOST:PORT]`.
//!
//! Two interceptors, two scopes. `Authenticate` wraps only `connectrpc.eliza.v1.ElizaService`
//! (added with `add_service_with`): it wants `Authorization: Bearer demo-token`, puts the
//! caller's [`Identity`] into the request extensions (a handler reads
//! `request.extensions().get::<Identity>()`) and answers with an `x-caller` header. Everyone
//! else gets `unauthenticated`, in the protocol they called with. `Audit` wraps every call,
//! health checks and reflection included (which stay open, so probes and grpcurl keep
//! working): it logs each call's outcome once it has ended and adds an `x-messages-sent`
//! trailer counted over the whole call, streams included.
//!
//! ```text
//! curl -s -H 'content-type: application/json' -d '{"sentence":"hi"}' \
//!   http://127.0.0.1:8081/connectrpc.eliza.v1.ElizaService/Say
//! # {"code":"unauthenticated","message":"a bearer token is required"}
//! grpcurl -plaintext -v -H 'authorization: Bearer demo-token' -d '{"name":"Ada"}' \
//!   127.0.0.1:8081 connectrpc.eliza.v1.ElizaService/Introduce
//! # ... x-caller: demo-user ... (the sentences) ... x-messages-sent: 3
//! ```
//!
//! The same check can also be a tower layer around the whole router (see
//! `tests/integration/tests/auth_layer.rs`); interceptors see RPCs rather than HTTP requests:
//! the method, every message, and the end of a stream.

use switchboard::interceptor::{Call, Interceptor, Next, Reply};
use switchboard::server::{Router, Server, ServerConfig};
use switchboard::{Code, Error};

/// Who is calling, as `Authenticate` established it; handlers read it from
/// `request.extensions()`.
#[derive(Clone, Debug)]
pub struct Identity(pub String);

const TOKEN: &str = "demo-token";

/// Bearer token to [`Identity`], or `unauthenticated`.
struct Authenticate;

impl Interceptor for Authenticate {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Error> {
        let token = call
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if token != Some(TOKEN) {
            return Err(Error::new(
                Code::Unauthenticated,
                "a bearer token is required",
            ));
        }
        call.extensions_mut()
            .insert(Identity("demo-user".to_owned()));
        let mut reply = next.run(call).await?;
        reply
            .headers_mut()
            .insert("x-caller", http::HeaderValue::from_static("demo-user"));
        Ok(reply)
    }
}

/// Every call, once it has ended: a log line, and a trailer with the messages sent.
struct Audit;

impl Interceptor for Audit {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Error> {
        let procedure = call.spec().procedure().to_owned();
        call.on_end(move |end| {
            let (_, sent) = end.messages();
            if let Some(trailers) = end.trailers_mut() {
                trailers.insert("x-messages-sent", sent.into());
            }
            let outcome = end
                .error()
                .map_or("ok".to_owned(), |e| e.code().to_string());
            eprintln!("{procedure}: {outcome} in {:?}", end.duration());
        });
        next.run(call).await
    }
}

/// Eliza behind `Authenticate`, health and reflection open, `Audit` around everything.
fn router() -> Router {
    let (reporter, health) = switchboard_health::health();
    reporter.set_serving("");
    let router = Router::new()
        .with_config(ServerConfig::default().interceptor(Audit))
        .add_service_with(
            eliza::proto::ElizaServiceServer::new(eliza::Eliza),
            ServerConfig::default().interceptor(Authenticate),
        )
        .add_service(health);
    eliza::with_reflection(router)
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
    println!("eliza (bearer token required) listening on http://{local}");
    let stop = switchboard::server::shutdown_signal()?;
    Server::new(router())
        .serve_with_shutdown(listener, stop)
        .await?;
    Ok(())
}
