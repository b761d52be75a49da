//! Generates the `bench.v1` messages and the tonic EchoService server from the shared
//! benchmark schema. There is no `protoc` here: protox compiles the schema to a file
//! descriptor set, and tonic-prost-build generates code from that.

const PROTO: &str = "../../proto/bench/v1/echo.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile([PROTO], ["../../proto"])?;
    tonic_prost_build::configure()
        // Only the server runs here; the load generators bring their own clients.
        .build_client(false)
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed={PROTO}");
    Ok(())
}
