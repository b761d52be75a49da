//! Shared pieces of `interop-server` and `interop-client`, switchboard's implementations of
//! gRPC's standard interop test service and cases
//! (grpc/grpc `doc/interop-test-descriptions.md`): the generated `grpc.testing` package, the
//! Go-style command-line flags both binaries take, and where grpc's test certificates are.

use std::path::PathBuf;

pub mod flags;
pub mod tap;

/// Generated from the `grpc/testing/{empty,messages,test}.proto` descriptors of the pinned
/// grpc-go module (see `build.rs`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    switchboard::include_proto!("grpc.testing");
}

/// Request header a server echoes in its response headers.
pub const ECHO_INITIAL_KEY: &str = "x-grpc-test-echo-initial";
/// Request header (binary) a server echoes in its trailers.
pub const ECHO_TRAILING_KEY: &str = "x-grpc-test-echo-trailing-bin";

/// `testdata/` of the grpc-go module the binaries were built against (in the Go module
/// cache): grpc's test CA (`ca.pem`) and server certificate (`server1.pem`, `server1.key`,
/// valid for `*.test.google.fr`), the defaults of `--use_test_ca` and `--use_tls`, as in
/// grpc-go's own interop binaries.
pub fn grpc_testdata_dir() -> PathBuf {
    PathBuf::from(env!("SWITCHBOARD_INTEROP_GRPC_DIR")).join("testdata")
}

/// A `COMPRESSABLE` payload of `size` zero bytes.
pub fn zeros(size: usize) -> proto::Payload {
    proto::Payload {
        r#type: proto::PayloadType::Compressable as i32,
        body: vec![0; size],
    }
}
