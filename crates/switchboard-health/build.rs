//! Generates the `grpc.health.v1` messages, server and client from `proto/` with
//! switchboard-build (no `protoc` needed).

fn main() {
    switchboard_build::Builder::new()
        .include("proto")
        .compile(&["proto/grpc/health/v1/health.proto"])
        .expect("generating code for proto/grpc/health/v1/health.proto");
}
