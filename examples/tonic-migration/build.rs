//! Both generators from one schema, no `protoc`: tonic-prost-build writes the prost messages
//! and tonic's server and client; switchboard-build writes switchboard's service trait, server
//! and client over those same message types (`generate_messages(false)` + `extern_path`), so
//! both servers and both clients in this binary share one set of prost types.

/// Each schema, and the module its prost messages live in (tonic's `include_proto!`).
const PROTOS: [(&str, &str, &str); 2] = [
    (
        "proto/helloworld/v1/helloworld.proto",
        ".helloworld.v1",
        "crate::helloworld::proto",
    ),
    (
        "proto/routeguide/v1/route_guide.proto",
        ".routeguide.v1",
        "crate::proto",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = PROTOS.map(|(file, _, _)| file);
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("switchboard");
    std::fs::create_dir_all(&out)?;
    let switchboard = switchboard_build::Builder::new()
        .include("proto")
        .generate_messages(false)
        .out_dir(&out);
    PROTOS
        .iter()
        .fold(switchboard, |builder, (_, package, module)| {
            builder.extern_path(*package, *module)
        })
        .compile(&files)?;
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    Ok(())
}
