//! Generates the Eliza messages, server and client from `proto/` with switchboard-build
//! (no `protoc` needed). Include the result with
//! `switchboard::include_proto!("connectrpc.eliza.v1")`.

fn main() {
    switchboard_build::Builder::new()
        .include("proto")
        .compile(&["proto/connectrpc/eliza/v1/eliza.proto"])
        .expect("generating code for proto/connectrpc/eliza/v1/eliza.proto");
}
