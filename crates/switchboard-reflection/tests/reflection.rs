//! Server reflection over real sockets: the built-in server on 127.0.0.1, the generated
//! reflection clients over gRPC (h2c), for `grpc.reflection.v1` and `grpc.reflection.v1alpha`.
//!
//! The schema under reflection is compiled at test time from `tests/proto` with protox and
//! carried by a service without methods, as generated services carry theirs.

use std::net::SocketAddr;

use prost::Message as _;
use prost_reflect::DescriptorPool;
use switchboard::server::{Router, Routes, RpcService};
use switchboard_reflection::Reflection;

const GREETER: &str = "reflect.test.v1.Greeter";
const GREET_FILE: &str = "reflect/test/v1/greet.proto";
const BASE_FILE: &str = "reflect/test/v1/base.proto";
const OPTIONS_FILE: &str = "reflect/test/v1/options.proto";
const MORE_FILE: &str = "reflect/test/v1/more.proto";
const DESCRIPTOR_FILE: &str = "google/protobuf/descriptor.proto";
const CUSTOM_OPTION: &str = "custom-option-survives";

/// The test schema and every import, encoded as a `FileDescriptorSet`.
fn test_set() -> &'static [u8] {
    static SET: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proto");
        let mut compiler = protox::Compiler::new([root]).expect("include directory");
        compiler.include_imports(true);
        compiler
            .open_files([GREET_FILE, MORE_FILE])
            .expect("test protos compile");
        compiler.encode_file_descriptor_set()
    })
}

/// The bytes of one file of [`test_set`], as encoded there.
fn original_file(name: &str) -> Vec<u8> {
    let set = prost_types::FileDescriptorSet::decode(test_set()).unwrap();
    let index = set.file.iter().position(|f| f.name() == name).unwrap();
    // Re-read the raw field: decoding into prost types would drop the custom option.
    raw_files(test_set()).swap_remove(index)
}

/// The raw `file` entries of an encoded `FileDescriptorSet`.
fn raw_files(set: &[u8]) -> Vec<Vec<u8>> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Raw {
        #[prost(bytes = "vec", repeated, tag = "1")]
        file: Vec<Vec<u8>>,
    }
    Raw::decode(set).unwrap().file
}

fn file_name(bytes: &[u8]) -> String {
    prost_types::FileDescriptorProto::decode(bytes)
        .unwrap()
        .name()
        .to_owned()
}

/// A service with no methods that carries the test schema, as generated services do.
struct Described;

impl RpcService for Described {
    fn name(&self) -> &'static str {
        GREETER
    }

    fn file_descriptor_set(&self) -> Option<&'static [u8]> {
        Some(test_set())
    }

    fn register(self, _routes: &mut Routes) {}
}

/// A running server, stopped when the test ends.
struct Running {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

async fn start_router(router: Router) -> Running {
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = switchboard::server::Server::new(router);
    let task = tokio::spawn(async move {
        server
            .serve_with_shutdown(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
    });
    Running {
        addr,
        shutdown: Some(tx),
        task,
    }
}

/// The test service with both reflection versions mounted, as an application would.
async fn start() -> Running {
    let router = Router::new().add_service(Described);
    let router = Reflection::from_router(&router)
        .expect("descriptor sets register")
        .mount(router);
    start_router(router).await
}

fn grpc_client(url: &str, protocol: switchboard::Protocol) -> switchboard::client::Client {
    switchboard::client::Client::h2c(url)
        .unwrap()
        .with_config(switchboard::client::ClientConfig::default().protocol(protocol))
}

/// The same scenarios against each protocol version: the generated types have the same names
/// in both modules.
macro_rules! reflection_tests {
    ($version:ident, $own_file:literal) => {
        mod $version {
            use super::*;
            use switchboard_reflection::$version::server_reflection_request::MessageRequest;
            use switchboard_reflection::$version::server_reflection_response::MessageResponse;
            use switchboard_reflection::$version::*;

            /// One reflection stream: each `ask` sends one request and reads its response
            /// before the next is sent, so the exchange is really bidirectional.
            struct Conversation {
                tx: tokio::sync::mpsc::Sender<ServerReflectionRequest>,
                responses: switchboard::Streaming<ServerReflectionResponse>,
            }

            impl Conversation {
                async fn open(url: &str, first: ServerReflectionRequest) -> Self {
                    let client =
                        ServerReflectionClient::new(grpc_client(url, switchboard::Protocol::Grpc));
                    let (tx, rx) = tokio::sync::mpsc::channel(16);
                    // Queued before the call: the server answers its headers with the stream.
                    tx.send(first).await.unwrap();
                    let requests = futures_util::stream::unfold(rx, |mut rx| async move {
                        rx.recv().await.map(|item| (item, rx))
                    });
                    let responses = client
                        .server_reflection_info(switchboard::Request::new(requests))
                        .await
                        .expect("reflection stream opens")
                        .into_message();
                    Conversation { tx, responses }
                }

                async fn next(&mut self) -> ServerReflectionResponse {
                    self.responses
                        .message()
                        .await
                        .expect("a response, not an error")
                        .expect("a response, not the end of the stream")
                }

                async fn ask(
                    &mut self,
                    request: ServerReflectionRequest,
                ) -> ServerReflectionResponse {
                    self.tx.send(request.clone()).await.unwrap();
                    let response = self.next().await;
                    assert_eq!(response.original_request.as_ref(), Some(&request));
                    response
                }

                /// Ends the request stream; the response stream must end cleanly too.
                async fn close(mut self) {
                    drop(self.tx);
                    assert!(self.responses.message().await.unwrap().is_none());
                }
            }

            fn request(message: MessageRequest) -> ServerReflectionRequest {
                ServerReflectionRequest {
                    host: "localhost".into(),
                    message_request: Some(message),
                }
            }

            fn symbol(name: &str) -> ServerReflectionRequest {
                request(MessageRequest::FileContainingSymbol(name.into()))
            }

            fn extension(containing_type: &str, extension_number: i32) -> ServerReflectionRequest {
                request(MessageRequest::FileContainingExtension(ExtensionRequest {
                    containing_type: containing_type.into(),
                    extension_number,
                }))
            }

            fn list() -> ServerReflectionRequest {
                request(MessageRequest::ListServices(String::new()))
            }

            /// The files of a file-descriptor response.
            fn files(response: &ServerReflectionResponse) -> Vec<Vec<u8>> {
                match &response.message_response {
                    Some(MessageResponse::FileDescriptorResponse(files)) => files
                        .file_descriptor_proto
                        .iter()
                        .map(|b| b.to_vec())
                        .collect(),
                    other => panic!("expected files, got {other:?}"),
                }
            }

            fn names(response: &ServerReflectionResponse) -> Vec<String> {
                files(response).iter().map(|f| file_name(f)).collect()
            }

            fn not_found(response: &ServerReflectionResponse) -> String {
                match &response.message_response {
                    Some(MessageResponse::ErrorResponse(error)) => {
                        assert_eq!(error.error_code, 5, "NOT_FOUND");
                        error.error_message.clone()
                    }
                    other => panic!("expected NOT_FOUND, got {other:?}"),
                }
            }

            fn numbers(response: &ServerReflectionResponse) -> (String, Vec<i32>) {
                match &response.message_response {
                    Some(MessageResponse::AllExtensionNumbersResponse(numbers)) => (
                        numbers.base_type_name.clone(),
                        numbers.extension_number.clone(),
                    ),
                    other => panic!("expected extension numbers, got {other:?}"),
                }
            }

            #[tokio::test]
            async fn lists_every_service_with_both_reflection_versions() {
                let server = start().await;
                let mut stream = Conversation::open(&server.url(), list()).await;
                let response = stream.next().await;
                assert_eq!(response.valid_host, "localhost");
                assert_eq!(response.original_request, Some(list()));
                let Some(MessageResponse::ListServicesResponse(services)) =
                    response.message_response
                else {
                    panic!("expected a service list");
                };
                let names: Vec<&str> = services.service.iter().map(|s| s.name.as_str()).collect();
                assert_eq!(
                    names,
                    [
                        "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection",
                        GREETER,
                    ]
                );
                stream.close().await;
                server.stop().await;
            }

            #[tokio::test]
            async fn file_by_filename_sends_the_file_first_then_its_imports_as_registered() {
                let server = start().await;
                let first = request(MessageRequest::FileByFilename(GREET_FILE.into()));
                let mut stream = Conversation::open(&server.url(), first.clone()).await;
                let response = stream.next().await;
                assert_eq!(response.original_request, Some(first));
                let files = files(&response);
                let mut names: Vec<String> = files.iter().map(|f| file_name(f)).collect();
                assert_eq!(names[0], GREET_FILE);
                names.sort();
                assert_eq!(
                    names,
                    [DESCRIPTOR_FILE, BASE_FILE, GREET_FILE, OPTIONS_FILE]
                );
                // Byte for byte as registered: the custom method option is still there.
                for file in &files {
                    assert_eq!(file, &original_file(&file_name(file)));
                }
                let greet = &files[0];
                assert!(
                    greet
                        .windows(CUSTOM_OPTION.len())
                        .any(|w| w == CUSTOM_OPTION.as_bytes())
                );
                // Self-contained: the answer alone builds a pool, custom option included.
                let mut set = Vec::new();
                for file in &files {
                    prost::encoding::bytes::encode(1, file, &mut set);
                }
                let pool = DescriptorPool::decode(set.as_slice()).expect("answer resolves");
                let method = pool
                    .get_service_by_name(GREETER)
                    .unwrap()
                    .methods()
                    .next()
                    .unwrap();
                let note = pool.get_extension_by_name("reflect.test.v1.note").unwrap();
                let options = method.options();
                assert_eq!(options.get_extension(&note).as_str(), Some(CUSTOM_OPTION));
                stream.close().await;
                server.stop().await;
            }

            #[tokio::test]
            async fn file_containing_symbol_finds_every_kind_of_symbol() {
                let server = start().await;
                let mut stream = Conversation::open(&server.url(), list()).await;
                stream.next().await;
                let cases = [
                    (GREETER, GREET_FILE),
                    ("reflect.test.v1.Greeter.Greet", GREET_FILE),
                    ("reflect.test.v1.GreetRequest", GREET_FILE),
                    ("reflect.test.v1.GreetRequest.Nested", GREET_FILE),
                    ("reflect.test.v1.GreetRequest.name", GREET_FILE),
                    ("reflect.test.v1.GreetRequest.kind", GREET_FILE),
                    ("reflect.test.v1.Mood", GREET_FILE),
                    ("reflect.test.v1.MOOD_HAPPY", GREET_FILE),
                    ("reflect.test.v1.priority", GREET_FILE),
                    ("reflect.test.v1.Holder.flag", MORE_FILE),
                    ("reflect.test.v1.Base", BASE_FILE),
                    ("reflect.test.v1.note", OPTIONS_FILE),
                    ("google.protobuf.MethodOptions", DESCRIPTOR_FILE),
                    (
                        "grpc.reflection.v1.ServerReflection",
                        "grpc/reflection/v1/reflection.proto",
                    ),
                    (
                        "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo",
                        "grpc/reflection/v1alpha/reflection.proto",
                    ),
                ];
                for (name, file) in cases {
                    let response = stream.ask(symbol(name)).await;
                    assert_eq!(names(&response)[0], file, "{name}");
                }
                stream.close().await;
                server.stop().await;
            }

            #[tokio::test]
            async fn imports_already_sent_on_the_stream_are_not_sent_again() {
                let server = start().await;
                let mut stream = Conversation::open(&server.url(), symbol(GREETER)).await;
                assert_eq!(names(&stream.next().await).len(), 4);
                // Same file again: sent again, its imports not.
                assert_eq!(
                    names(&stream.ask(symbol("reflect.test.v1.GreetRequest")).await),
                    [GREET_FILE]
                );
                // An import asked for by name is sent, its own imports (sent) are not.
                assert_eq!(
                    names(
                        &stream
                            .ask(request(MessageRequest::FileByFilename(OPTIONS_FILE.into())))
                            .await
                    ),
                    [OPTIONS_FILE]
                );
                // A new file: only what is new of its imports.
                assert_eq!(
                    names(&stream.ask(symbol("reflect.test.v1.Holder")).await),
                    [MORE_FILE]
                );
                stream.close().await;
                // A new stream starts afresh.
                let mut stream =
                    Conversation::open(&server.url(), symbol("reflect.test.v1.Holder")).await;
                assert_eq!(names(&stream.next().await), [MORE_FILE, BASE_FILE]);
                stream.close().await;
                server.stop().await;
            }

            #[tokio::test]
            async fn extension_queries() {
                let server = start().await;
                let base = "reflect.test.v1.Base";
                let mut stream = Conversation::open(&server.url(), extension(base, 100)).await;
                assert_eq!(names(&stream.next().await)[0], GREET_FILE);
                assert_eq!(names(&stream.ask(extension(base, 150)).await), [GREET_FILE]);
                assert_eq!(names(&stream.ask(extension(base, 120)).await)[0], MORE_FILE);
                let note = stream
                    .ask(extension("google.protobuf.MethodOptions", 50001))
                    .await;
                assert_eq!(names(&note), [OPTIONS_FILE]);
                not_found(&stream.ask(extension(base, 101)).await);
                not_found(&stream.ask(extension("reflect.test.v1.Nope", 100)).await);

                let all =
                    |name: &str| request(MessageRequest::AllExtensionNumbersOfType(name.into()));
                assert_eq!(
                    numbers(&stream.ask(all(base)).await),
                    (base.to_owned(), vec![100, 120, 150])
                );
                assert_eq!(
                    numbers(&stream.ask(all("google.protobuf.MethodOptions")).await),
                    ("google.protobuf.MethodOptions".to_owned(), vec![50001])
                );
                assert_eq!(
                    numbers(&stream.ask(all("reflect.test.v1.GreetResponse")).await),
                    ("reflect.test.v1.GreetResponse".to_owned(), vec![])
                );
                not_found(&stream.ask(all("reflect.test.v1.Nope")).await);
                // Not a message type.
                not_found(&stream.ask(all("reflect.test.v1.Mood")).await);
                stream.close().await;
                server.stop().await;
            }

            #[tokio::test]
            async fn unknown_names_answer_not_found_and_the_stream_stays_open() {
                let server = start().await;
                let mut stream =
                    Conversation::open(&server.url(), symbol("reflect.test.v1.Nope")).await;
                let message = not_found(&stream.next().await);
                assert!(message.contains("reflect.test.v1.Nope"), "{message}");
                not_found(
                    &stream
                        .ask(request(MessageRequest::FileByFilename("nope.proto".into())))
                        .await,
                );
                not_found(&stream.ask(symbol("reflect.test.v1.Greeter.Nope")).await);
                not_found(&stream.ask(symbol("")).await);
                // Still answering.
                assert_eq!(names(&stream.ask(symbol(GREETER)).await)[0], GREET_FILE);
                stream.close().await;
                server.stop().await;
            }

            #[tokio::test]
            async fn many_requests_sent_at_once_are_answered_in_order() {
                let server = start().await;
                let requests = vec![
                    list(),
                    symbol(GREETER),
                    symbol("reflect.test.v1.Nope"),
                    request(MessageRequest::FileByFilename(BASE_FILE.into())),
                    extension("reflect.test.v1.Base", 120),
                    request(MessageRequest::AllExtensionNumbersOfType(
                        "reflect.test.v1.Base".into(),
                    )),
                    list(),
                ];
                let client = ServerReflectionClient::new(grpc_client(
                    &server.url(),
                    switchboard::Protocol::Grpc,
                ));
                let mut responses = client
                    .server_reflection_info(switchboard::Request::new(futures_util::stream::iter(
                        requests.clone(),
                    )))
                    .await
                    .unwrap()
                    .into_message();
                let mut answered = Vec::new();
                while let Some(response) = responses.message().await.unwrap() {
                    answered.push(response);
                }
                let echoed: Vec<_> = answered
                    .iter()
                    .map(|r| r.original_request.clone().unwrap())
                    .collect();
                assert_eq!(echoed, requests);
                assert!(matches!(
                    answered[0].message_response,
                    Some(MessageResponse::ListServicesResponse(_))
                ));
                assert_eq!(names(&answered[1])[0], GREET_FILE);
                not_found(&answered[2]);
                // base.proto went out with greet.proto already, but it is what was asked for.
                assert_eq!(names(&answered[3]), [BASE_FILE]);
                assert_eq!(names(&answered[4]), [MORE_FILE]);
                assert_eq!(numbers(&answered[5]).1, [100, 120, 150]);
                server.stop().await;
            }

            #[tokio::test]
            async fn a_request_without_a_question_ends_the_stream_with_invalid_argument() {
                let server = start().await;
                let mut stream = Conversation::open(&server.url(), list()).await;
                stream.next().await;
                stream
                    .tx
                    .send(ServerReflectionRequest::default())
                    .await
                    .unwrap();
                let error = stream.responses.message().await.unwrap_err();
                assert_eq!(error.code(), switchboard::Code::InvalidArgument);
                server.stop().await;
            }

            #[tokio::test]
            async fn also_over_connect_and_grpc_web() {
                let server = start().await;
                for protocol in [
                    switchboard::Protocol::Connect,
                    switchboard::Protocol::GrpcWeb,
                ] {
                    let client = ServerReflectionClient::new(grpc_client(&server.url(), protocol));
                    let mut responses = client
                        .server_reflection_info(switchboard::Request::new(
                            futures_util::stream::iter([symbol(GREETER), list()]),
                        ))
                        .await
                        .unwrap()
                        .into_message();
                    let first = responses.message().await.unwrap().unwrap();
                    assert_eq!(names(&first)[0], GREET_FILE, "{protocol:?}");
                    let second = responses.message().await.unwrap().unwrap();
                    assert!(matches!(
                        second.message_response,
                        Some(MessageResponse::ListServicesResponse(_))
                    ));
                    assert!(responses.message().await.unwrap().is_none());
                }
                server.stop().await;
            }

            #[tokio::test]
            async fn its_own_file_is_served() {
                let server = start().await;
                let own = concat!(
                    "grpc.reflection.",
                    stringify!($version),
                    ".ServerReflectionRequest"
                );
                let mut stream = Conversation::open(&server.url(), symbol(own)).await;
                let response = stream.next().await;
                assert_eq!(names(&response), [$own_file]);
                let file = prost_types::FileDescriptorProto::decode(files(&response)[0].as_slice())
                    .unwrap();
                assert_eq!(
                    file.package(),
                    concat!("grpc.reflection.", stringify!($version))
                );
                assert_eq!(file.service[0].name(), "ServerReflection");
                stream.close().await;
                server.stop().await;
            }
        }
    };
}

reflection_tests!(v1, "grpc/reflection/v1/reflection.proto");
reflection_tests!(v1alpha, "grpc/reflection/v1alpha/reflection.proto");

#[tokio::test]
async fn one_version_alone_lists_itself_and_the_router_services() {
    use switchboard_reflection::v1::server_reflection_request::MessageRequest;
    use switchboard_reflection::v1::server_reflection_response::MessageResponse;
    use switchboard_reflection::v1::*;
    let router = Router::new().add_service(Described);
    let reflection = Reflection::from_router(&router)
        .unwrap()
        .add_service_name("acme.other.v1.ServedElsewhere");
    let router = router.add_service(reflection.into_v1());
    let server = start_router(router).await;
    let client =
        ServerReflectionClient::new(grpc_client(&server.url(), switchboard::Protocol::Grpc));
    let mut responses = client
        .server_reflection_info(switchboard::Request::new(futures_util::stream::iter([
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices("*".into())),
            },
        ])))
        .await
        .unwrap()
        .into_message();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "acme.other.v1.ServedElsewhere",
            "grpc.reflection.v1.ServerReflection",
            GREETER
        ]
    );
    assert!(responses.message().await.unwrap().is_none());
    // v1alpha is not mounted.
    let alpha = switchboard_reflection::v1alpha::ServerReflectionClient::new(grpc_client(
        &server.url(),
        switchboard::Protocol::Grpc,
    ));
    let result = alpha
        .server_reflection_info(switchboard::Request::new(futures_util::stream::iter([
            switchboard_reflection::v1alpha::ServerReflectionRequest::default(),
        ])))
        .await;
    let error = match result {
        Ok(response) => response.into_message().message().await.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(error.code(), switchboard::Code::Unimplemented);
    server.stop().await;
}

#[test]
fn registering_sets() {
    // The same set twice: files are kept once, first come first kept.
    let reflection = Reflection::new()
        .add_file_descriptor_set(test_set())
        .unwrap()
        .add_file_descriptor_set(test_set())
        .unwrap();
    assert_eq!(reflection.service_names().count(), 0);

    // Not a descriptor set.
    let error = Reflection::new()
        .add_file_descriptor_set(b"\x0a\x05oops")
        .unwrap_err();
    assert!(error.to_string().contains("FileDescriptor"), "{error}");

    // A file whose import is missing: refused, and nothing of it kept.
    let greet = original_file(GREET_FILE);
    let mut set = Vec::new();
    prost::encoding::bytes::encode(1, &greet, &mut set);
    let error = Reflection::new().add_file_descriptor_set(&set).unwrap_err();
    assert!(
        error.to_string().contains("invalid file descriptors"),
        "{error}"
    );
    assert!(std::error::Error::source(&error).is_some());

    // Once its imports are registered, it is accepted.
    let mut imports = Vec::new();
    for name in [DESCRIPTOR_FILE, BASE_FILE, OPTIONS_FILE] {
        prost::encoding::bytes::encode(1, &original_file(name), &mut imports);
    }
    let reflection = Reflection::new()
        .add_file_descriptor_set(&imports)
        .unwrap()
        .add_file_descriptor_set(&set)
        .unwrap()
        .add_service_name(GREETER);
    assert_eq!(reflection.service_names().collect::<Vec<_>>(), [GREETER]);
}

#[test]
fn from_router_names_the_service_whose_set_is_invalid() {
    struct Broken;
    impl RpcService for Broken {
        fn name(&self) -> &'static str {
            "acme.broken.v1.Broken"
        }
        fn file_descriptor_set(&self) -> Option<&'static [u8]> {
            Some(b"\x0a\x03\x0a\x01")
        }
        fn register(self, _routes: &mut Routes) {}
    }
    let router = Router::new().add_service(Described).add_service(Broken);
    let error = Reflection::from_router(&router).unwrap_err();
    assert!(
        error.to_string().contains("acme.broken.v1.Broken"),
        "{error}"
    );
}
