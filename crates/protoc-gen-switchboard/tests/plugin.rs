//! Runs the plugin binary the way protoc does: a `CodeGeneratorRequest` on stdin, a
//! `CodeGeneratorResponse` on stdout. `protoc` itself is not needed; when it is installed,
//! one more test drives the plugin through it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use prost::Message as _;
use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};

const PLUGIN: &str = env!("CARGO_BIN_EXE_protoc-gen-switchboard");

fn eliza_proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/eliza/proto")
}

fn request(parameter: &str) -> CodeGeneratorRequest {
    let mut compiler = protox::Compiler::new([eliza_proto_dir()]).unwrap();
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_file("connectrpc/eliza/v1/eliza.proto")
        .unwrap();
    CodeGeneratorRequest {
        file_to_generate: vec!["connectrpc/eliza/v1/eliza.proto".into()],
        parameter: Some(parameter.into()),
        proto_file: compiler.file_descriptor_set().file,
        ..Default::default()
    }
}

fn run(input: &[u8]) -> (std::process::ExitStatus, Vec<u8>) {
    let mut child = Command::new(PLUGIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    (output.status, output.stdout)
}

#[test]
fn generates_server_and_client() {
    let (status, stdout) = run(&request("").encode_to_vec());
    assert!(status.success());
    let response = CodeGeneratorResponse::decode(&*stdout).unwrap();
    assert_eq!(response.error, None);
    assert_eq!(response.supported_features, Some(1)); // FEATURE_PROTO3_OPTIONAL
    assert_eq!(response.file.len(), 1);
    let file = &response.file[0];
    assert_eq!(file.name(), "connectrpc.eliza.v1.rs");
    let code = file.content();
    for expected in [
        "pub struct SayRequest",
        "pub const ELIZA_SERVICE_NAME: &str = \"connectrpc.eliza.v1.ElizaService\";",
        "pub const ELIZA_SERVICE_SAY_PROCEDURE: &str = \"/connectrpc.eliza.v1.ElizaService/Say\";",
        "pub mod eliza_service_specs",
        "pub trait ElizaService",
        "pub struct ElizaServiceServer<S>",
        "::switchboard::server::RpcService for ElizaServiceServer<S>",
        "pub struct ElizaServiceClient<T = ::switchboard::client::HttpTransport>",
        "pub async fn converse<S>",
        "/// Say is a unary RPC",
        "pub const FILE_DESCRIPTOR_SET: &[u8] = b\"",
        "pub fn descriptor_pool()",
    ] {
        assert!(code.contains(expected), "missing `{expected}` in:\n{code}");
    }
}

#[test]
fn options_select_what_is_generated() {
    let parameter = "messages=false,client=false,extern_path=.connectrpc.eliza.v1=::eliza_pb";
    let (status, stdout) = run(&request(parameter).encode_to_vec());
    assert!(status.success());
    let response = CodeGeneratorResponse::decode(&*stdout).unwrap();
    assert_eq!(response.error, None);
    let code = response.file[0].content();
    assert!(!code.contains("pub struct SayRequest"));
    assert!(!code.contains("ElizaServiceClient"));
    assert!(code.contains("pub trait ElizaService"));
    assert!(code.contains("::switchboard::Request<::eliza_pb::SayRequest>"));
}

#[test]
fn errors_go_in_the_response() {
    let (status, stdout) = run(&request("colour=blue").encode_to_vec());
    assert!(
        status.success(),
        "protoc expects a response, not a failing plugin"
    );
    let response = CodeGeneratorResponse::decode(&*stdout).unwrap();
    assert!(response.error.unwrap().contains("unknown option `colour`"));
    assert!(response.file.is_empty());

    // Not a request at all.
    let (status, _) = run(b"\xff\xff\xff");
    assert!(!status.success());
}

#[test]
fn through_protoc_when_installed() {
    let Ok(output) = Command::new("protoc").arg("--version").output() else {
        eprintln!("protoc not installed: skipped");
        return;
    };
    assert!(output.status.success());
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("protoc")
        .arg(format!("--plugin=protoc-gen-switchboard={PLUGIN}"))
        .arg(format!("--switchboard_out={}", out.path().display()))
        .arg("--switchboard_opt=client=false")
        .arg("-I")
        .arg(eliza_proto_dir())
        .arg("connectrpc/eliza/v1/eliza.proto")
        .status()
        .unwrap();
    assert!(status.success());
    let code = std::fs::read_to_string(out.path().join("connectrpc.eliza.v1.rs")).unwrap();
    assert!(code.contains("pub trait ElizaService"));
    assert!(!code.contains("ElizaServiceClient"));
}
