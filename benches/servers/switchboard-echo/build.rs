//! Generates the `bench.v1` messages and the EchoService server trait from the shared
//! benchmark schema with switchboard-build (no `protoc` needed), as examples/eliza does.

fn main() {
    let backend = if std::env::var_os("CARGO_FEATURE_BUFFA").is_some() {
        switchboard_build::MessageBackend::Buffa
    } else {
        switchboard_build::MessageBackend::Prost
    };
    switchboard_build::Builder::new()
        .include("../../proto")
        .message_backend(backend)
        // Only the server runs here; the load generators bring their own clients. The
        // HTTP/3 build adds the client for `h3-check` (never in the guard's build, whose
        // code layout stays as it was measured).
        .client(std::env::var_os("CARGO_FEATURE_HTTP3").is_some())
        .compile(&["../../proto/bench/v1/echo.proto"])
        .expect("generating code for ../../proto/bench/v1/echo.proto");
}
