//! The router is a plain tower service: it mounts in axum next to other routes, and serves
//! from a hand-written hyper loop.

use std::convert::Infallible;

use hyper_util::rt::{TokioExecutor, TokioIo};
use switchboard::client::Client;
use switchboard::server::Router;
use switchboard_integration_tests::TestServer;
use switchboard_integration_tests::proto::*;

fn router() -> Router {
    Router::new().add_service(TestServiceServer::new(TestServer))
}

async fn call(url: &str, h2c: bool) -> String {
    let base = if h2c {
        Client::h2c(url)
    } else {
        Client::http1(url)
    }
    .unwrap();
    let client = TestServiceClient::new(base);
    client
        .echo(EchoRequest {
            text: "mounted".into(),
            ..Default::default()
        })
        .await
        .expect("call through the mounted router")
        .into_message()
        .text
}

#[tokio::test]
async fn mounts_in_axum_beside_other_routes() {
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .fallback_service(router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}");
    assert_eq!(call(&url, false).await, "mounted");
    assert_eq!(call(&url, true).await, "mounted");
}

#[tokio::test]
async fn serves_from_a_plain_hyper_connection_loop() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = router();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let router = router.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let router = router.clone();
                    async move { Ok::<_, Infallible>(router.handle(request).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let url = format!("http://{addr}");
    assert_eq!(call(&url, false).await, "mounted");
    assert_eq!(call(&url, true).await, "mounted");
}
