//! Generated server and client talking over a real socket: every RPC shape, the default
//! `unimplemented` body, and custom options read back from a generated `Spec`.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt as _;
use switchboard::client::Client;
use switchboard::server::{Router, RpcService as _, Server};
use switchboard::{Code, Error, Request, Response, ResponseStream, StreamType, Streaming};
use switchboard_codegen_test::greet::{
    self, GREET_SERVICE_GREET_PROCEDURE, GREET_SERVICE_NAME, GreetAllResponse, GreetManyRequest,
    GreetRequest, GreetResponse, GreetService, GreetServiceClient, GreetServiceServer,
    greet_service_specs,
};

/// Implements every method but `Type`, which keeps the generated `unimplemented` default.
struct Greeter;

fn stamp() -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 5,
    })
}

impl GreetService for Greeter {
    async fn greet(
        &self,
        request: Request<GreetRequest>,
    ) -> Result<Response<GreetResponse>, Error> {
        let spec = request.spec().expect("server requests carry their spec");
        assert_eq!(spec.procedure(), GREET_SERVICE_GREET_PROCEDURE);
        let message = request.into_message();
        Ok(Response::new(GreetResponse {
            greeting: format!("Hello, {}!", message.name),
            greeted_at: message.sent_at,
        }))
    }

    async fn greet_many(
        &self,
        request: Request<GreetManyRequest>,
    ) -> Result<Response<ResponseStream<GreetResponse>>, Error> {
        let GreetManyRequest { name, count } = request.into_message();
        let replies = (0..count).map(move |i| {
            Ok(GreetResponse {
                greeting: format!("Hello #{i}, {name}!"),
                greeted_at: stamp(),
            })
        });
        Ok(Response::new(Box::pin(futures_util::stream::iter(replies))))
    }

    async fn greet_all(
        &self,
        request: Request<Streaming<GreetRequest>>,
    ) -> Result<Response<GreetAllResponse>, Error> {
        let mut stream = request.into_message();
        let mut names = Vec::new();
        while let Some(message) = stream.message().await? {
            names.push(message.name);
        }
        Ok(Response::new(GreetAllResponse {
            greeting: format!("Hello, {}!", names.join(" and ")),
            count: names.len() as u32,
        }))
    }

    async fn chat(
        &self,
        request: Request<Streaming<GreetRequest>>,
    ) -> Result<Response<ResponseStream<GreetResponse>>, Error> {
        let replies = request.into_message().map(|message| {
            message.map(|m| GreetResponse {
                greeting: format!("Hi, {}.", m.name),
                greeted_at: m.sent_at,
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn ping(&self, request: Request<()>) -> Result<Response<()>, Error> {
        request.into_message();
        Ok(Response::new(()))
    }
}

/// Serves `Greeter` on a free port until the returned sender is dropped or fired.
async fn start() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let router = Router::new().add_service(GreetServiceServer::new(Greeter));
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::new(router)
            .serve_with_shutdown(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop)
}

fn request(name: &str) -> GreetRequest {
    GreetRequest {
        name: name.to_owned(),
        sent_at: stamp(),
    }
}

async fn each_rpc_kind(client: GreetServiceClient) {
    // Unary, with a bare message and with a `Request` carrying a header.
    let response = client.greet(request("Ada")).await.unwrap();
    assert_eq!(response.message().greeting, "Hello, Ada!");
    assert_eq!(response.message().greeted_at, stamp());
    let with_timeout = Request::new(request("Grace")).with_timeout(Duration::from_secs(5));
    let response = client.greet(with_timeout).await.unwrap();
    assert_eq!(response.into_message().greeting, "Hello, Grace!");

    // Server streaming.
    let mut stream = client
        .greet_many(GreetManyRequest {
            name: "Linus".into(),
            count: 3,
        })
        .await
        .unwrap()
        .into_message();
    let mut greetings = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        greetings.push(message.greeting);
    }
    assert_eq!(
        greetings,
        ["Hello #0, Linus!", "Hello #1, Linus!", "Hello #2, Linus!"]
    );

    // Client streaming, from a bare stream.
    let names = futures_util::stream::iter(vec![request("Alan"), request("Barbara")]);
    let response = client.greet_all(names.into()).await.unwrap();
    assert_eq!(response.message().greeting, "Hello, Alan and Barbara!");
    assert_eq!(response.message().count, 2);

    // Bidi streaming, from a `Request` wrapping a stream, with a timeout.
    let names = futures_util::stream::iter(vec![request("Ken"), request("Dennis")]);
    let replies: Vec<_> = client
        .chat(Request::new(names).with_timeout(Duration::from_secs(5)))
        .await
        .unwrap()
        .into_message()
        .map(|reply| reply.unwrap().greeting)
        .collect()
        .await;
    assert_eq!(replies, ["Hi, Ken.", "Hi, Dennis."]);

    // `google.protobuf.Empty` is `()`.
    client.ping(()).await.unwrap().into_message();

    // The method left out answers `unimplemented`.
    #[allow(deprecated)]
    let error = client.r#type(greet::TypeRequest {}).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
}

#[tokio::test]
async fn every_rpc_kind_over_http1() {
    let (addr, stop) = start().await;
    let client = Client::http1(&format!("http://{addr}")).unwrap();
    each_rpc_kind(GreetServiceClient::new(client)).await;
    let _ = stop.send(());
}

#[tokio::test]
async fn every_rpc_kind_over_h2c() {
    let (addr, stop) = start().await;
    let client = Client::h2c(&format!("http://{addr}")).unwrap();
    let client = GreetServiceClient::new(client);
    assert!(format!("{:?}", client.inner()).contains(&addr.to_string()));
    each_rpc_kind(client).await;
    let _ = stop.send(());
}

#[test]
fn specs_come_from_the_descriptors() {
    let greet = greet_service_specs::greet();
    assert_eq!(greet.procedure(), "/acme.greet.v1.GreetService/Greet");
    assert_eq!(greet.stream_type(), StreamType::Unary);
    assert_eq!(greet.idempotency(), switchboard::Idempotency::NoSideEffects);
    assert_eq!(
        greet_service_specs::greet_many().stream_type(),
        StreamType::ServerStreaming
    );
    assert_eq!(
        greet_service_specs::greet_all().stream_type(),
        StreamType::ClientStreaming
    );
    assert_eq!(
        greet_service_specs::chat().stream_type(),
        StreamType::BidiStreaming
    );
    assert_eq!(
        greet_service_specs::r#type().procedure(),
        greet::GREET_SERVICE_TYPE_PROCEDURE
    );

    // The descriptor set holds the well-known types the schema imports.
    let method = greet
        .method()
        .expect("generated specs carry their descriptor");
    let sent_at = method.input().get_field_by_name("sent_at").unwrap();
    assert_eq!(
        sent_at.kind().as_message().unwrap().full_name(),
        "google.protobuf.Timestamp"
    );
}

#[test]
fn custom_method_options_are_readable() {
    let extension = greet::descriptor_pool()
        .get_extension_by_name("acme.greet.v1.required_role")
        .expect("the extension is in the package's pool");
    let greet = greet_service_specs::greet();
    let options = greet.method().unwrap().options();
    assert!(options.has_extension(&extension));
    assert_eq!(options.get_extension(&extension).as_str(), Some("admin"));

    let chat = greet_service_specs::chat();
    assert!(!chat.method().unwrap().options().has_extension(&extension));
}

#[test]
fn rpc_service_metadata() {
    let server = GreetServiceServer::new(Greeter);
    assert_eq!(server.name(), GREET_SERVICE_NAME);
    assert_eq!(server.name(), "acme.greet.v1.GreetService");
    assert_eq!(
        server.file_descriptor_set(),
        Some(greet::FILE_DESCRIPTOR_SET)
    );
    assert_eq!(format!("{server:?}"), "GreetServiceServer");

    let router = Router::new().add_service(server.clone());
    let mut procedures: Vec<_> = router.procedures().collect();
    procedures.sort_unstable();
    assert_eq!(
        procedures,
        [
            "/acme.greet.v1.GreetService/Chat",
            "/acme.greet.v1.GreetService/Greet",
            "/acme.greet.v1.GreetService/GreetAll",
            "/acme.greet.v1.GreetService/GreetMany",
            "/acme.greet.v1.GreetService/Ping",
            "/acme.greet.v1.GreetService/Type",
        ]
    );
}
