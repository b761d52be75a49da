//! Tests of the generated text, the embedded descriptor sets and the plugin front end.

use std::path::Path;

use prost::Message as _;
use prost_types::FileDescriptorSet;
use prost_types::compiler::CodeGeneratorRequest;
use protox::prost_reflect::DescriptorPool;

use crate::Builder;
use crate::descriptors::unescape_byte_literal;
use crate::plugin::{self, PluginOptions};

const COMMON: &str = r#"
syntax = "proto3";
package acme.common.v1;
// A name.
message Name { string value = 1; }
"#;

const UNRELATED: &str = r#"
syntax = "proto3";
package acme.unrelated.v1;
message Nothing {}
"#;

const KEYWORDS: &str = r#"
// License header: detached, not documentation.

syntax = "proto3";
package acme.keywords.v1;

import "google/protobuf/descriptor.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/empty.proto";
import "acme/common/v1/common.proto";

extend google.protobuf.MethodOptions {
  string scope = 50100;
}

// Documented service.
service KeywordService {
  // Type is a keyword in Rust.
  rpc Type(Req) returns (Res) {
    option (acme.keywords.v1.scope) = "read";
    option idempotency_level = IDEMPOTENT;
  }
  rpc New(Req) returns (Res);
  rpc Watch(Req) returns (stream Res);
  rpc Upload(stream Req) returns (Res);
  rpc Talk(stream Req) returns (stream Res);
  rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty);
}

// Nothing to say.
service EmptyService {}

message Req {
  acme.common.v1.Name name = 1;
  google.protobuf.Timestamp at = 2;
}
message Res {}
"#;

fn write_protos(dir: &Path) {
    for (name, source) in [
        ("acme/common/v1/common.proto", COMMON),
        ("acme/unrelated/v1/unrelated.proto", UNRELATED),
        ("acme/keywords/v1/keywords.proto", KEYWORDS),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
    }
}

fn generate(builder: Builder) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    write_protos(dir.path());
    builder
        .include(dir.path())
        .emit_rerun_if_changed(false)
        .generate(&[
            dir.path().join("acme/keywords/v1/keywords.proto"),
            dir.path().join("acme/unrelated/v1/unrelated.proto"),
        ])
        .unwrap()
}

fn file<'a>(files: &'a [(String, String)], name: &str) -> &'a str {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} was not generated"))
        .1
}

/// The `FILE_DESCRIPTOR_SET` literal of generated code, decoded back to bytes.
fn embedded_set(code: &str) -> Vec<u8> {
    let start = code
        .find("pub const FILE_DESCRIPTOR_SET: &[u8] = ")
        .expect("a descriptor set");
    let rest = &code[start..];
    let literal = &rest[rest.find("b\"").unwrap()..];
    // The closing quote is the first one not escaped.
    let mut escaped = false;
    let end = literal
        .char_indices()
        .skip(2)
        .find(|&(_, c)| {
            let closing = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closing
        })
        .unwrap()
        .0;
    unescape_byte_literal(&literal[..=end])
}

#[test]
fn service_items_and_names() {
    let files = generate(Builder::new());
    let code = file(&files, "acme.keywords.v1.rs");
    for expected in [
        "pub const KEYWORD_SERVICE_NAME: &str = \"acme.keywords.v1.KeywordService\";",
        "pub const KEYWORD_SERVICE_TYPE_PROCEDURE: &str = \"/acme.keywords.v1.KeywordService/Type\";",
        "pub const KEYWORD_SERVICE_NEW_PROCEDURE: &str = \"/acme.keywords.v1.KeywordService/New\";",
        "pub mod keyword_service_specs {",
        "pub fn r#type() -> ::switchboard::Spec",
        "pub trait KeywordService: ::core::marker::Send + ::core::marker::Sync + 'static {",
        "fn r#type(",
        "<S as KeywordService>::r#type(&*service, request)",
        "pub struct KeywordServiceServer<S>",
        "impl<S: KeywordService> ::switchboard::server::RpcService for KeywordServiceServer<S>",
        "pub struct KeywordServiceClient<T = ::switchboard::client::HttpTransport>",
        "pub async fn r#type(",
        // `new` is the client's constructor: the RPC method gets a suffix.
        "pub async fn new_rpc(",
        "routes.unary(keyword_service_specs::r#type(),",
        ".server_streaming(keyword_service_specs::watch(),",
        ".client_streaming(keyword_service_specs::upload(),",
        ".bidi_streaming(keyword_service_specs::talk(),",
        "::switchboard::Request<::switchboard::Streaming<Req>>",
        "::switchboard::Response<::switchboard::ResponseStream<Res>>",
        "::switchboard::Response<::switchboard::Streaming<Res>>",
        "S: ::switchboard::codegen::Stream<Item = Req>",
        "self.client.unary(keyword_service_specs::r#type(), request.into())",
        "acme.keywords.v1.KeywordService.Type is not implemented",
        // Proto comments become docs; undocumented items get a fallback.
        "/// Documented service.",
        "/// Type is a keyword in Rust.",
        "/// Handles the unary call `KeywordService.New`.",
        "/// Calls `KeywordService.Watch` (server-streaming).",
        // Types from other packages are reached through relative or extern paths.
        "pub name: ::core::option::Option<super::super::common::v1::Name>",
        "pub at: ::core::option::Option<::prost_types::Timestamp>",
        // prost maps `google.protobuf.Empty` to `()`, itself a prost message.
        "fn ping(&self, request: ::switchboard::Request<()>",
        "pub fn descriptor_pool() -> &'static ::switchboard::codegen::DescriptorPool",
        // A service without methods still registers (nothing).
        "pub trait EmptyService",
        "let _ = (self, routes);",
    ] {
        let squashed: String = code.split_whitespace().collect();
        let wanted: String = expected.split_whitespace().collect();
        assert!(
            squashed.contains(&wanted),
            "missing `{expected}` in:\n{code}"
        );
    }
    assert!(!code.contains("License header"));
    assert_eq!(code.matches("pub const FILE_DESCRIPTOR_SET").count(), 1);
    // `new` and `inner` stay the client's own.
    assert_eq!(code.matches("pub fn new(client:").count(), 2);

    // Packages without services get prost's messages and nothing else.
    for name in ["acme.common.v1.rs", "acme.unrelated.v1.rs"] {
        let code = file(&files, name);
        assert!(!code.contains("FILE_DESCRIPTOR_SET"), "{name}");
        assert!(!code.contains("switchboard"), "{name}");
    }
    // The well-known types come from prost-types: no module for them.
    assert!(files.iter().all(|(name, _)| !name.starts_with("google")));
}

#[test]
fn embedded_set_is_the_import_closure_in_order() {
    let files = generate(Builder::new());
    let bytes = embedded_set(file(&files, "acme.keywords.v1.rs"));

    let set = FileDescriptorSet::decode(&*bytes).unwrap();
    let names: Vec<_> = set.file.iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        [
            "google/protobuf/descriptor.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/empty.proto",
            "acme/common/v1/common.proto",
            "acme/keywords/v1/keywords.proto",
        ]
    );
    assert!(set.file.iter().all(|f| f.source_code_info.is_none()));

    // Byte for byte what protox produced (minus source info), so it decodes into a pool and
    // the custom option is still there.
    let dir = tempfile::tempdir().unwrap();
    write_protos(dir.path());
    let mut compiler = protox::Compiler::new([dir.path()]).unwrap();
    compiler
        .include_imports(true)
        .open_file("acme/keywords/v1/keywords.proto")
        .unwrap();
    assert_eq!(bytes, compiler.encode_file_descriptor_set());

    let pool = DescriptorPool::decode(&*bytes).unwrap();
    let method = pool
        .get_service_by_name("acme.keywords.v1.KeywordService")
        .unwrap()
        .methods()
        .find(|m| m.name() == "Type")
        .unwrap();
    let scope = pool
        .get_extension_by_name("acme.keywords.v1.scope")
        .unwrap();
    assert_eq!(
        method.options().get_extension(&scope).as_str(),
        Some("read")
    );
}

#[test]
fn server_or_client_only() {
    let files = generate(Builder::new().client(false));
    let code = file(&files, "acme.keywords.v1.rs");
    assert!(code.contains("pub trait KeywordService"));
    assert!(!code.contains("KeywordServiceClient"));
    assert!(code.contains("pub mod keyword_service_specs"));

    let files = generate(Builder::new().server(false));
    let code = file(&files, "acme.keywords.v1.rs");
    assert!(!code.contains("pub trait KeywordService"));
    assert!(!code.contains("KeywordServiceServer"));
    assert!(code.contains("pub struct KeywordServiceClient"));
    assert!(code.contains("FILE_DESCRIPTOR_SET"));
}

#[test]
fn services_only_over_extern_messages() {
    let files = generate(
        Builder::new()
            .generate_messages(false)
            .extern_path(".acme.keywords.v1", "::keywords_pb"),
    );
    let code = file(&files, "acme.keywords.v1.rs");
    assert!(!code.contains("pub struct Req"));
    assert!(code.contains("::switchboard::Request<::keywords_pb::Req>"));
    assert!(code.contains("FILE_DESCRIPTOR_SET"));
    // Packages with nothing left to generate are not written at all.
    assert_eq!(
        files.len(),
        1,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
}

#[test]
fn well_known_types_can_move() {
    // The default mapping, given explicitly, is not a duplicate.
    let files = generate(Builder::new().extern_path(".google.protobuf", "::prost_types"));
    let code = file(&files, "acme.keywords.v1.rs");
    assert!(code.contains("::core::option::Option<::prost_types::Timestamp>"));

    let files = generate(Builder::new().extern_path(".google.protobuf", "::wkt"));
    let code = file(&files, "acme.keywords.v1.rs");
    assert!(code.contains("::core::option::Option<::wkt::Timestamp>"));
    assert!(code.contains("::switchboard::Request<()>"));
}

#[test]
fn configure_reaches_prost() {
    let files = generate(Builder::new().configure(|config| {
        config.type_attribute(".acme.keywords.v1.Res", "#[allow(unused)]");
    }));
    let code = file(&files, "acme.keywords.v1.rs");
    let res = code.find("pub struct Res").unwrap();
    assert!(
        code[..res].rfind("#[allow(unused)]").unwrap()
            > code[..res].rfind("pub struct Req").unwrap()
    );
}

#[test]
fn compile_writes_files_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_protos(dir.path());
    let out = tempfile::tempdir().unwrap();
    Builder::new()
        .include(dir.path())
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile(&["acme/keywords/v1/keywords.proto"])
        .unwrap();
    let written = std::fs::read_to_string(out.path().join("acme.keywords.v1.rs")).unwrap();
    assert!(written.contains("pub trait KeywordService"));
    assert!(out.path().join("acme.common.v1.rs").exists());

    std::fs::write(
        dir.path().join("broken.proto"),
        "syntax = \"proto3\"; message {",
    )
    .unwrap();
    let error = Builder::new()
        .include(dir.path())
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile(&["broken.proto"])
        .unwrap_err();
    assert!(format!("{error:#}").contains("broken.proto"), "{error:#}");
}

#[test]
fn default_includes_are_the_files_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("solo.proto"), UNRELATED).unwrap();
    let files = Builder::new()
        .emit_rerun_if_changed(false)
        .generate(&[dir.path().join("solo.proto")])
        .unwrap();
    assert_eq!(files[0].0, "acme.unrelated.v1.rs");
}

/// An encoded `CodeGeneratorRequest` whose `proto_file`s are protox's exact encodings.
fn request_bytes(parameter: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    write_protos(dir.path());
    let mut compiler = protox::Compiler::new([dir.path()]).unwrap();
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_file("acme/keywords/v1/keywords.proto")
        .unwrap();
    let request = CodeGeneratorRequest {
        file_to_generate: vec!["acme/keywords/v1/keywords.proto".into()],
        parameter: Some(parameter.into()),
        ..Default::default()
    };
    let mut bytes = request.encode_to_vec();
    // FileDescriptorSet.file is field 1 and CodeGeneratorRequest.proto_file field 15, both
    // length-delimited: re-tag each entry.
    let set = compiler.encode_file_descriptor_set();
    let mut rest = set.as_slice();
    while !rest.is_empty() {
        assert_eq!(rest[0], 0x0a);
        rest = &rest[1..];
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let byte = rest[0];
            rest = &rest[1..];
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        bytes.push((15 << 3) | 2);
        prost::encoding::encode_varint(len as u64, &mut bytes);
        bytes.extend_from_slice(&rest[..len]);
        rest = &rest[len..];
    }
    bytes
}

#[test]
fn plugin_generates_the_requested_package_with_options_intact() {
    let response = plugin::generate_from_request_bytes(&request_bytes("client=false")).unwrap();
    assert_eq!(response.error, None);
    assert_eq!(response.supported_features, Some(1));
    let names: Vec<_> = response.file.iter().map(|f| f.name()).collect();
    assert_eq!(names, ["acme.keywords.v1.rs"]);
    let code = response.file[0].content();
    assert!(code.contains("pub trait KeywordService"));
    assert!(code.contains("pub struct KeywordServiceServer"));
    assert!(!code.contains("KeywordServiceClient"));
    assert!(code.contains("pub struct Req"));
    assert!(code.contains("/// Type is a keyword in Rust."));

    let pool = DescriptorPool::decode(&*embedded_set(code)).unwrap();
    let scope = pool
        .get_extension_by_name("acme.keywords.v1.scope")
        .unwrap();
    let method = pool
        .get_service_by_name("acme.keywords.v1.KeywordService")
        .unwrap()
        .methods()
        .next()
        .unwrap();
    assert_eq!(
        method.options().get_extension(&scope).as_str(),
        Some("read")
    );
}

#[test]
fn plugin_reports_bad_input_in_the_response() {
    let response = plugin::generate_from_request_bytes(&request_bytes("colour=blue")).unwrap();
    assert!(response.error.unwrap().contains("colour"));
    assert!(response.file.is_empty());

    let request = CodeGeneratorRequest {
        file_to_generate: vec!["missing.proto".into()],
        ..Default::default()
    };
    let response = plugin::generate_from_request(request, &PluginOptions::default()).unwrap();
    assert!(response.error.unwrap().contains("missing.proto"));

    assert!(plugin::generate_from_request_bytes(b"\xff\xff").is_err());
}

#[test]
fn plugin_from_decoded_request() {
    let request = CodeGeneratorRequest::decode(&*request_bytes("")).unwrap();
    let options = PluginOptions {
        messages: false,
        server: false,
        extern_paths: vec![(".acme.keywords.v1".into(), "::pb".into())],
        ..PluginOptions::default()
    };
    let response = plugin::generate_from_request(request, &options).unwrap();
    assert_eq!(response.error, None);
    let code = response.file[0].content();
    assert!(!code.contains("pub struct Req"));
    assert!(code.contains("pub struct KeywordServiceClient"));
    assert!(code.contains("::switchboard::Request<::pb::Req>"));
    // Decoded descriptors still make a valid pool (without the custom option's value).
    DescriptorPool::decode(&*embedded_set(code)).unwrap();
}

#[test]
fn plugin_options_parse() {
    let options = PluginOptions::parse(
        " extern_path=.a=::a , extern_path=.b.C=crate::b::C,messages=false,server=0,client",
    )
    .unwrap();
    assert_eq!(
        options.extern_paths,
        [
            (".a".to_owned(), "::a".to_owned()),
            (".b.C".to_owned(), "crate::b::C".to_owned())
        ]
    );
    assert!(!options.messages && !options.server && options.client);
    assert_eq!(PluginOptions::parse("").unwrap(), PluginOptions::default());
    assert!(PluginOptions::parse("extern_path=.a").is_err());
    assert!(PluginOptions::parse("server=maybe").is_err());
}

/// The buffa backend: buffa's files, and switchboard's package file including them, with owned
/// messages made sendable and received messages typed as views.
#[cfg(feature = "buffa")]
#[test]
fn buffa_backend_wraps_received_messages_in_views() {
    const NESTED: &str = r#"
syntax = "proto3";
package acme.logs.v1;
// Takes logs.
service LogService {
  rpc Ingest(Batch) returns (Ack);
  rpc Tail(Ack) returns (stream Batch.Record);
  rpc Upload(stream Batch) returns (Ack);
  rpc Type(Ack) returns (Ack);
  rpc Super(Ack) returns (Ack);
}
message Batch {
  message Record { string text = 1; map<string, string> labels = 2; }
  repeated Record records = 1;
}
message Ack { uint32 accepted = 1; }
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acme/logs/v1/logs.proto");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, NESTED).unwrap();
    let files = Builder::new()
        .include(dir.path())
        .emit_rerun_if_changed(false)
        .message_backend(crate::MessageBackend::Buffa)
        .generate(&[&path])
        .unwrap();
    // buffa's module file, with its re-exports allowed to go unused.
    let module = file(&files, "acme.logs.v1.mod.rs");
    assert!(
        module.contains("#[allow(unused_imports)]\npub use"),
        "{module}"
    );
    let code = file(&files, "acme.logs.v1.rs");
    for expected in [
        "include!(\"acme.logs.v1.mod.rs\");",
        // Every message, nested ones included (map entries are not types of their own).
        "::switchboard::impl_owned_messages!(",
        "    batch::Record,\n",
        "    Batch,\n",
        "    Ack,\n",
        // Servers receive views and send owned messages.
        "fn ingest(&self, request: ::switchboard::Request<::switchboard::buffa::View<Batch>>) \
         -> impl ::core::future::Future<Output = ::core::result::Result<::switchboard::Response<Ack>,",
        "::switchboard::Response<::switchboard::ResponseStream<batch::Record>>",
        "::switchboard::Request<::switchboard::Streaming<::switchboard::buffa::View<Batch>>>",
        // Keywords: raw where Rust allows it, else a `_` suffix.
        "fn r#type(&self,",
        "fn super_(&self,",
        // Clients send owned messages and receive views.
        "impl ::core::convert::Into<::switchboard::Request<Batch>>",
        "::switchboard::Response<::switchboard::buffa::View<Ack>>",
        "::switchboard::Response<::switchboard::Streaming<::switchboard::buffa::View<batch::Record>>>",
        "S: ::switchboard::codegen::Stream<Item = Batch>",
        // The same descriptor set and specs as the prost backend.
        "pub const FILE_DESCRIPTOR_SET: &[u8] = ",
        "/// Takes logs.",
    ] {
        assert!(code.contains(expected), "missing {expected:?} in\n{code}");
    }
    let owned = &code[code.find("impl_owned_messages!(").unwrap()..];
    assert!(
        !owned[..owned.find(");").unwrap()].contains("Entry"),
        "{code}"
    );
    assert!(
        Builder::new()
            .include(dir.path())
            .emit_rerun_if_changed(false)
            .message_backend(crate::MessageBackend::Buffa)
            .generate_messages(false)
            .generate(&[&path])
            .is_err()
    );
}
