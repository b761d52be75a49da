//! Generates the test services with switchboard-build (no protoc needed): the test service,
//! and the REST transcoding suite's library service (its schema lives in transcoding/proto).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    switchboard_build::Builder::new()
        .include("proto")
        .include("../../transcoding/proto")
        .compile(&[
            "proto/switchboard/test/v1/test.proto",
            "../../transcoding/proto/switchboard/library/v1/library.proto",
        ])?;
    Ok(())
}
