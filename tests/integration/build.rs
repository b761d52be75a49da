//! Generates the test service with switchboard-build (no protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_build::Builder::new()
        .include("proto")
        .compile(&["proto/switchboard/test/v1/test.proto"])?;
    Ok(())
}
