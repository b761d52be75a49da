//! Generates the `bench.v1` messages and the EchoService server trait from the shared
//! benchmark schema with switchboard-build (no `protoc` needed), as examples/eliza does.

fn main() {
    switchboard_build::Builder::new()
        .include("../../proto")
        // Only the server runs here; the load generators bring their own clients.
        .client(false)
        .compile(&["../../proto/bench/v1/echo.proto"])
        .expect("generating code for ../../proto/bench/v1/echo.proto");
}
