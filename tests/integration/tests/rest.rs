//! REST transcoding over real sockets: a library service annotated with google.api.http,
//! called with plain HTTP requests the way a REST client would.

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use switchboard::server::{Rest, Router};
use switchboard::{Error, Request, Response};
use switchboard_integration_tests::{Running, start_router};
// The transcoding suite's library service and its handlers (transcoding/README.md's rules).
use switchboard_transcoding::Library;
use switchboard_transcoding::proto::switchboard::library::v1::*;

async fn serve() -> Running {
    start_router(
        Router::new()
            .rest(Rest::default())
            .add_service(LibraryServiceServer::new(Library)),
    )
    .await
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map_or("", |v| v.to_str().unwrap())
    }
}

async fn send(
    server: &Running,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.url()));
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn path_variables_bodies_and_query_parameters_fill_the_request() {
    let server = serve().await;
    let answer = send(&server, "GET", "/v1/shelves/s1", None, "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type(), "application/json");
    assert_eq!(
        answer.json(),
        json!({"name": "shelves/s1", "theme": "theme of shelves/s1"})
    );
    // body: "book", a path variable and a query parameter.
    let answer = send(
        &server,
        "POST",
        "/v1/shelves/s1/books?bookId=b7",
        JSON,
        r#"{"title": "Dune", "genre": "GENRE_FICTION", "sizeBytes": "12"}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.json(),
        json!({"name": "shelves/s1/books/b7", "title": "Dune", "genre": "GENRE_FICTION", "sizeBytes": "12"})
    );
    // A nested field in the path, a field mask in the query.
    let answer = send(
        &server,
        "PATCH",
        "/v1/shelves/s1/books/b2?updateMask=title,author",
        JSON,
        r#"{"title": "Emma"}"#,
    )
    .await;
    assert_eq!(
        answer.json(),
        json!({"name": "shelves/s1/books/b2", "title": "Emma [title,author]"})
    );
    // A verb, the whole request as the body.
    let answer = send(
        &server,
        "POST",
        "/v1/shelves/s1/books/b2:move",
        JSON,
        r#"{"otherShelfName": "shelves/s9"}"#,
    )
    .await;
    assert_eq!(answer.json(), json!({"name": "shelves/s9/books/b2"}));
    // A custom HTTP method.
    let answer = send(
        &server,
        "CHECKOUT",
        "/v1/shelves/s/books/b?reader=ann",
        None,
        "",
    )
    .await;
    assert_eq!(answer.json()["title"], "checked out by ann");
    server.stop().await;
}

#[tokio::test]
async fn query_parameters_of_every_kind() {
    let server = serve().await;
    let query = "query=a+b&i32=-3&i64=9007199254740993&u32=7&u64=8&s32=-2&f64=5\
        &ratio=0.5&score=Infinity&available=true&token=aGk&genre=GENRE_POETRY\
        &tags=x&tags=y&years=1999&years=2001&genres=1&genres=GENRE_HISTORY\
        &filter.author=Le+Guin&filter.nested.minYear=1970&publishedAfter=2020-01-02T03:04:05Z\
        &maxAge=3.5s&fields=a.b,c&limit=10&cursor=next&inPrint=false&edition=first\
        &customJson=j&custom_name=p";
    let answer = send(&server, "GET", &format!("/v1/search?{query}"), None, "").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.json(),
        json!({
            "query": "a b", "i32": -3, "i64": "9007199254740993", "u32": 7, "u64": "8",
            "s32": -2, "f64": "5", "ratio": 0.5, "score": "Infinity", "available": true,
            "token": "aGk=", "genre": "GENRE_POETRY", "tags": ["x", "y"], "years": [1999, 2001],
            "genres": ["GENRE_FICTION", "GENRE_HISTORY"],
            "filter": {"author": "Le Guin", "nested": {"minYear": 1970}},
            "publishedAfter": "2020-01-02T03:04:05Z", "maxAge": "3.500s", "fields": "a.b,c",
            "limit": 10, "cursor": "next", "inPrint": false, "edition": "first",
            "customJson": "p"
        })
    );
    for (bad, why) in [
        ("i32=1.0", "a fraction"),
        ("i32=abc", "not a number"),
        ("available=yes", "not a bool"),
        ("genre=GENRE_NOPE", "not an enum value"),
        ("labels=x", "a map"),
        ("extra=x", "a Struct"),
        ("filters.author=x", "through a repeated field"),
        ("bogus=1", "no such field"),
        ("publishedAfter=yesterday", "not a timestamp"),
    ] {
        let answer = send(&server, "GET", &format!("/v1/search?{bad}"), None, "").await;
        assert_eq!(answer.status, 400, "{why}: {:?}", answer.body);
        assert_eq!(answer.json()["code"], 3, "{why}");
    }
    server.stop().await;
}

#[tokio::test]
async fn response_body_fields_and_raw_bodies() {
    let server = serve().await;
    let answer = send(&server, "GET", "/v1/shelves/s/titles?pageSize=2", None, "").await;
    assert_eq!(answer.json(), json!(["title 1", "title 2"]));
    let answer = send(&server, "GET", "/v1/shelves/s/count?pageSize=2", None, "").await;
    assert_eq!(answer.json(), json!("2"));
    let answer = send(&server, "GET", "/v1/search:echo?filter.author=x", None, "").await;
    assert_eq!(
        answer.json(),
        json!({"author": "x", "minYear": 0, "genre": "GENRE_UNSPECIFIED", "nested": null})
    );
    // google.api.HttpBody out and in.
    let answer = send(&server, "GET", "/v1/shelves/s/books/b/cover", None, "").await;
    assert_eq!(answer.content_type(), "image/x-test");
    assert_eq!(&answer.body[..], b"cover of shelves/s/books/b");
    let answer = send(
        &server,
        "PUT",
        "/v1/shelves/s/books/b/cover",
        Some("image/png; q=1"),
        "\u{1}\u{2}\u{3}",
    )
    .await;
    assert_eq!(
        answer.json(),
        json!({"name": "shelves/s/books/b", "coverType": "image/png; q=1", "coverBytes": 3})
    );
    server.stop().await;
}

#[tokio::test]
async fn errors_have_the_status_of_their_code_and_a_status_body() {
    let server = serve().await;
    for (code, status) in [
        (3, 400),
        (5, 404),
        (7, 403),
        (8, 429),
        (9, 400),
        (14, 503),
        (16, 401),
    ] {
        let answer = send(&server, "GET", &format!("/v1/fail/{code}"), None, "").await;
        assert_eq!(answer.status, status, "code {code}");
        assert_eq!(answer.content_type(), "application/json");
        assert_eq!(answer.json()["code"], code);
        assert_eq!(answer.json()["details"], json!([]));
    }
    let answer = send(
        &server,
        "POST",
        "/v1/fail",
        JSON,
        r#"{"code": 9, "message": "not now", "withDetail": true}"#,
    )
    .await;
    assert_eq!(answer.status, 400);
    let status = answer.json();
    assert_eq!(status["message"], "not now");
    assert_eq!(
        status["details"],
        json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "FAILED",
            "domain": "library.example",
            "metadata": {"code": "9"}
        }])
    );
    // Routing refusals are the transcoder's own, in plain text.
    let answer = send(&server, "GET", "/v1/nothing/here", None, "").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.content_type(), "text/plain; charset=utf-8");
    let answer = send(&server, "DELETE", "/v1/search", None, "").await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.headers["allow"], "GET, POST");
    let answer = send(&server, "POST", "/v1/search", Some("text/plain"), "{}").await;
    assert_eq!(answer.status, 415);
    // Bad JSON is the caller's mistake.
    let answer = send(&server, "POST", "/v1/search", JSON, "{nope").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["code"], 3);
    // A body where the rule takes none.
    let answer = send(&server, "GET", "/v1/shelves/s", JSON, r#"{"name": "x"}"#).await;
    assert_eq!(answer.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn streams_are_raw_chunks_or_json_lines() {
    let server = serve().await;
    let answer = send(
        &server,
        "GET",
        "/v1/shelves/s/books/b/pages?count=2",
        None,
        "",
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type(), "text/plain");
    assert_eq!(
        &answer.body[..],
        b"page 1 of shelves/s/books/b\npage 2 of shelves/s/books/b\n"
    );
    let answer = send(
        &server,
        "GET",
        "/v1/shelves/s/books:stream?pageSize=2&filter=f",
        None,
        "",
    )
    .await;
    assert_eq!(answer.status, 200);
    let lines: Vec<Value> = answer
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"result": {"name": "shelves/s/books/1", "title": "f"}}),
            json!({"result": {"name": "shelves/s/books/2", "title": "f"}})
        ]
    );
    let answer = send(
        &server,
        "GET",
        "/v1/shelves/s/books:stream?pageSize=1&filter=fail",
        None,
        "",
    )
    .await;
    let last: Value =
        serde_json::from_slice(answer.body.split(|b| *b == b'\n').nth(1).unwrap()).unwrap();
    assert_eq!(last["error"]["code"], 10);
    server.stop().await;
}

#[tokio::test]
async fn rpc_routes_keep_working_beside_rest() {
    let server = serve().await;
    let client =
        LibraryServiceClient::new(switchboard::client::Client::h2c(&server.url()).unwrap());
    let shelf = client
        .get_shelf(GetShelfRequest {
            name: "shelves/x".into(),
        })
        .await
        .unwrap();
    assert_eq!(shelf.message().theme, "theme of shelves/x");
    let mut pages = client
        .stream_pages(StreamPagesRequest {
            name: "b".into(),
            count: 2,
        })
        .await
        .unwrap()
        .into_message();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        page.unwrap();
        count += 1;
    }
    assert_eq!(count, 2);
    server.stop().await;
}

/// Records the protocol of every call it sees.
#[derive(Clone, Default)]
struct SeenProtocols(std::sync::Arc<std::sync::Mutex<Vec<(switchboard::Protocol, String)>>>);

impl switchboard::interceptor::Interceptor for SeenProtocols {
    async fn intercept(
        &self,
        call: switchboard::interceptor::Call,
        next: switchboard::interceptor::Next,
    ) -> Result<switchboard::interceptor::Reply, Error> {
        let protocol = call.peer().map(switchboard::Peer::protocol).unwrap();
        self.0
            .lock()
            .unwrap()
            .push((protocol, call.spec().procedure().to_owned()));
        next.run(call).await
    }
}

#[tokio::test]
async fn interceptors_see_rest_calls_named_as_rest() {
    let seen = SeenProtocols::default();
    let server = start_router(
        Router::new()
            .with_config(switchboard::server::ServerConfig::default().interceptor(seen.clone()))
            .rest(Rest::default())
            .add_service(LibraryServiceServer::new(Library)),
    )
    .await;
    send(&server, "GET", "/v1/shelves/s1", None, "").await;
    LibraryServiceClient::new(switchboard::client::Client::h2c(&server.url()).unwrap())
        .get_shelf(GetShelfRequest {
            name: "shelves/s1".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        *seen.0.lock().unwrap(),
        [
            (
                switchboard::Protocol::Rest,
                "/switchboard.library.v1.LibraryService/GetShelf".to_owned()
            ),
            (
                switchboard::Protocol::Connect,
                "/switchboard.library.v1.LibraryService/GetShelf".to_owned()
            ),
        ]
    );
    server.stop().await;
}

/// A service known only from descriptors, served with dynamic messages: what a gateway does
/// for services it learns at run time.
struct DescribedOnly {
    methods: Vec<prost_reflect::MethodDescriptor>,
}

impl switchboard::server::RpcService for DescribedOnly {
    fn name(&self) -> &'static str {
        "described.only"
    }

    fn register(self, routes: &mut switchboard::server::Routes) {
        use switchboard::codec::Dynamic;
        for method in self.methods {
            let output = method.output();
            routes.unary(
                switchboard::Spec::from_descriptor(method),
                move |request: Request<Dynamic>| {
                    let output = output.clone();
                    async move {
                        // Answers with the request's `name` as the shelf's theme.
                        let name = request
                            .message()
                            .0
                            .get_field_by_name("name")
                            .map(|v| v.as_str().unwrap_or_default().to_owned())
                            .unwrap_or_default();
                        let mut reply = prost_reflect::DynamicMessage::new(output);
                        reply.set_field_by_name("theme", prost_reflect::Value::String(name));
                        Ok(Response::new(Dynamic(reply)))
                    }
                },
            );
        }
    }
}

#[tokio::test]
async fn services_known_only_from_descriptors_are_transcoded_too() {
    let method = descriptor_pool()
        .get_service_by_name("switchboard.library.v1.LibraryService")
        .unwrap()
        .methods()
        .find(|m| m.name() == "GetShelf")
        .unwrap();
    let server = start_router(
        Router::new()
            .rest(Rest::default())
            .add_service(DescribedOnly {
                methods: vec![method],
            }),
    )
    .await;
    let answer = send(&server, "GET", "/v1/shelves/dyn", None, "").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.json(), json!({"theme": "shelves/dyn"}));
    server.stop().await;
}

/// Methods of a schema written for the test, with their descriptors.
fn methods_of(schema: &str) -> Vec<prost_reflect::MethodDescriptor> {
    let dir = std::env::temp_dir().join(format!("switchboard-rest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("clash.proto"), schema).unwrap();
    let api = concat!(env!("CARGO_MANIFEST_DIR"), "/../../transcoding/proto");
    // The compiler's own pool keeps the options' extensions (prost_types' would drop them).
    let mut compiler = protox::Compiler::new([dir.as_path(), std::path::Path::new(api)]).unwrap();
    compiler.open_files([dir.join("clash.proto")]).unwrap();
    let pool = compiler.descriptor_pool();
    pool.services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .collect()
}

#[test]
fn templates_that_match_the_same_requests_are_refused_at_start_up() {
    let methods = methods_of(
        r#"syntax = "proto3";
        package clash.v1;
        import "google/api/annotations.proto";
        message Shelf { string name = 1; string theme = 2; }
        service ClashService {
          rpc First(Shelf) returns (Shelf) { option (google.api.http) = {get: "/v1/{name=shelves/*}"}; }
          rpc Second(Shelf) returns (Shelf) { option (google.api.http) = {get: "/v1/shelves/{theme}"}; }
        }"#,
    );
    let router = Router::new().add_service(DescribedOnly {
        methods: methods.clone(),
    });
    // Without REST nothing is checked; with it, the clash stops the start.
    let clash = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        router.rest(Rest::default())
    }))
    .err()
    .and_then(|e| e.downcast_ref::<String>().cloned())
    .expect("a clash panics");
    assert!(clash.contains("clash.v1.ClashService/First"), "{clash}");
    assert!(clash.contains("clash.v1.ClashService/Second"), "{clash}");
    // A template that does not parse, or names no field, is refused too.
    for bad in [
        r#"get: "/v1/{name=shelves/*""#,
        r#"get: "/v1/{nope}""#,
        r#"post: "/v1/x" body: "nope""#,
    ] {
        let methods = methods_of(&format!(
            r#"syntax = "proto3";
            package clash.v1;
            import "google/api/annotations.proto";
            message Shelf {{ string name = 1; }}
            service ClashService {{
              rpc First(Shelf) returns (Shelf) {{ option (google.api.http) = {{{bad}}}; }}
            }}"#
        ));
        let router = Router::new().rest(Rest::default());
        assert!(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                router.add_service(DescribedOnly { methods })
            }))
            .is_err(),
            "{bad}"
        );
    }
}
