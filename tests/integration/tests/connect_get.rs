//! Connect GET all the way: a handler answers a conditional GET with `304 Not Modified`
//! (the client sees `Error::is_not_modified`, a POST gets an ordinary error), the client
//! falls back to POST when the GET URL would be too long, and equal requests give equal
//! URLs with the parameters in the protocol's order.

use std::sync::{Arc, Mutex};

use http::HeaderValue;
use http::header::{ETAG, IF_NONE_MATCH};
use switchboard::client::{Client, ClientConfig};
use switchboard::server::Router;
use switchboard::{Code, Error, Request, Response};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start_router;

const VERSION: &str = "\"v7\"";

/// Echo with an ETag; answers 304 when the caller already has this version. Records the
/// HTTP method and URL of every call.
#[derive(Clone, Default)]
struct Cached {
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl TestService for Cached {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let method = request
            .http_method()
            .map(|m| m.to_string())
            .unwrap_or_default();
        let uri = request.uri().map(|u| u.to_string()).unwrap_or_default();
        self.seen.lock().unwrap().push((method, uri));
        if request.headers().get(IF_NONE_MATCH).map(|v| v.as_bytes()) == Some(VERSION.as_bytes()) {
            let mut headers = http::HeaderMap::new();
            headers.insert(ETAG, HeaderValue::from_static(VERSION));
            return Err(Error::not_modified(headers));
        }
        Ok(Response::new(EchoResponse {
            text: request.into_message().text,
            ..Default::default()
        })
        .with_header(ETAG, HeaderValue::from_static(VERSION)))
    }
}

fn text(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn conditional_gets_get_304_and_long_urls_fall_back_to_post() {
    let service = Cached::default();
    let router = Router::new().add_service(TestServiceServer::new(service.clone()));
    let server = start_router(router).await;
    let client = TestServiceClient::new(
        Client::http1(&server.url())
            .unwrap()
            .with_config(ClientConfig::default().use_get(true).get_max_url_bytes(512)),
    );

    // A first GET: the resource and its ETag.
    let reply = client.echo(text("hello")).await.unwrap();
    assert_eq!(reply.headers()[ETAG], VERSION);
    // Revalidation: 304, seen as a not-modified error carrying the ETag.
    let conditional =
        Request::new(text("hello")).with_header(IF_NONE_MATCH, HeaderValue::from_static(VERSION));
    let error = client.echo(conditional).await.unwrap_err();
    assert!(error.is_not_modified(), "{error:?}");
    assert!(error.is_wire());
    assert_eq!(error.metadata()[ETAG], VERSION);

    // The same conditional call as a POST gets an ordinary error: 304 answers only GETs.
    let mut post =
        Request::new(text("hello")).with_header(IF_NONE_MATCH, HeaderValue::from_static(VERSION));
    post.options_mut().use_get = Some(false);
    let error = client.echo(post).await.unwrap_err();
    assert!(!error.is_not_modified());
    assert_eq!(error.code(), Code::Unknown);

    // A message whose URL would exceed 512 bytes goes as a POST.
    let long = "x".repeat(600);
    let reply = client.echo(text(&long)).await.unwrap();
    assert_eq!(reply.message().text, long);

    let seen = service.seen.lock().unwrap().clone();
    let methods: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["GET", "GET", "POST", "POST"]);
    // Equal requests, equal URLs, parameters in the recommended order.
    assert_eq!(seen[0].1, seen[1].1);
    let query = seen[0].1.split_once('?').unwrap().1;
    let names: Vec<&str> = query
        .split('&')
        .map(|p| p.split('=').next().unwrap())
        .collect();
    assert_eq!(names, ["connect", "base64", "encoding", "message"]);
    server.stop().await;
}
