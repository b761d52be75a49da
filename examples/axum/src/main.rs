//! switchboard inside axum: `cargo run -p axum-example` (checks itself and exits), or
//! `cargo run -p axum-example -- --addr 127.0.0.1:8083` to serve.
//!
//! One axum app on one port serves
//! - the Eliza service over Connect, gRPC and gRPC-Web (the switchboard `Router` as axum's
//!   fallback service: every `/connectrpc.eliza.v1.ElizaService/...` path goes to it);
//! - a REST route, `GET /api/stats`, that reads the same state the RPC handler writes (how
//!   many sentences were answered), as JSON;
//! - CORS for both, with `switchboard::cors` as an axum layer, so a page from
//!   `http://localhost:5173` may call either.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use eliza::proto::*;
use http_body_util::BodyExt as _;
use switchboard::client::{Client, ClientConfig};
use switchboard::{Error, Protocol, Request, Response};

/// What the RPC handler and the REST route share.
#[derive(Clone, Default)]
struct AppState {
    answered: Arc<AtomicU64>,
}

/// Eliza, counting what she answers in the shared state.
struct CountingEliza {
    state: AppState,
}

impl ElizaService for CountingEliza {
    async fn say(&self, request: Request<SayRequest>) -> Result<Response<SayResponse>, Error> {
        self.state.answered.fetch_add(1, Ordering::Relaxed);
        let (sentence, _) = eliza::doctor::reply(&request.message().sentence);
        Ok(Response::new(SayResponse { sentence }))
    }
}

#[derive(serde::Serialize)]
struct Stats {
    answered: u64,
}

async fn stats(State(state): State<AppState>) -> axum::Json<Stats> {
    axum::Json(Stats {
        answered: state.answered.load(Ordering::Relaxed),
    })
}

/// The whole app: REST routes, the RPC router as the fallback, CORS around both.
fn app(state: AppState) -> axum::Router {
    let rpc =
        switchboard::server::Router::new().add_service(ElizaServiceServer::new(CountingEliza {
            state: state.clone(),
        }));
    let cors = switchboard::cors::layer(switchboard::cors::AllowOrigin::list([
        http::HeaderValue::from_static("http://localhost:5173"),
    ]));
    axum::Router::new()
        .route("/api/stats", axum::routing::get(stats))
        .with_state(state)
        .fallback_service(rpc)
        .layer(cors)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    if let (Some(flag), Some(addr)) = (args.next(), args.next())
        && flag == "--addr"
    {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("axum app on http://{addr}");
        axum::serve(listener, app(AppState::default())).await?;
        return Ok(());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app(AppState::default())).await });
    let url = format!("http://{addr}");

    // RPCs over Connect (HTTP/1.1) and gRPC (HTTP/2), through axum.
    for (name, client, config) in [
        ("Connect", Client::http1(&url)?, ClientConfig::default()),
        (
            "gRPC",
            Client::h2c(&url)?,
            ClientConfig::default().protocol(Protocol::Grpc),
        ),
    ] {
        let eliza = ElizaServiceClient::new(client.with_config(config));
        let reply = eliza
            .say(SayRequest {
                sentence: "I feel happy.".into(),
            })
            .await?;
        println!("{name:<8} Say: {}", reply.message().sentence);
    }

    // The REST route sees what the RPCs did.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<String>();
    let response = http.get(format!("{url}/api/stats").parse()?).await?;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await?.to_bytes();
    let stats: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(stats["answered"], 2);
    println!("REST     GET /api/stats: {stats}");

    // A browser's preflight from the allowed origin is answered for the RPC routes.
    let preflight = http::Request::options(format!("{url}/connectrpc.eliza.v1.ElizaService/Say"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,connect-protocol-version",
        )
        .body(String::new())?;
    let response = http.request(preflight).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    println!("CORS     preflight from http://localhost:5173: allowed");
    println!("axum: RPC, REST and CORS on one port");
    Ok(())
}
