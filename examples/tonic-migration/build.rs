//! Both generators from one schema, no `protoc`: tonic-prost-build writes the prost messages
//! and tonic's server and client; switchboard-build writes switchboard's service trait, server
//! and client over those same message types (`generate_messages(false)` + `extern_path`), so
//! both servers and both clients in this binary share one set of prost types.

const PROTO: &str = "proto/routeguide/v1/route_guide.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("switchboard");
    std::fs::create_dir_all(&out)?;
    switchboard_build::Builder::new()
        .include("proto")
        .generate_messages(false)
        .extern_path(".routeguide.v1", "crate::proto")
        .out_dir(&out)
        .compile(&[PROTO])?;
    println!("cargo:rerun-if-changed={PROTO}");
    Ok(())
}
