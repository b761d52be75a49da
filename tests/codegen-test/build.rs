//! Generates the test schema with switchboard-build: never runs `protoc`.

use std::path::PathBuf;

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));

    // Everything: messages, servers, clients.
    switchboard_build::Builder::new()
        .include("proto")
        .extern_path(".google.protobuf", "::prost_types")
        .compile(&["proto/acme/greet/v1/greet.proto"])
        .expect("generating acme.greet.v1");

    // Services only, over the messages generated above (reached through an extern path), as
    // when switchboard is added next to an existing prost or tonic-build setup.
    let services_only = out_dir.join("services_only");
    std::fs::create_dir_all(&services_only).expect("creating OUT_DIR/services_only");
    switchboard_build::Builder::new()
        .include("proto")
        .generate_messages(false)
        .extern_path(".acme.greet.v1", "crate::greet")
        .client(false)
        .out_dir(&services_only)
        .compile(&["proto/acme/greet/v1/greet.proto"])
        .expect("generating acme.greet.v1 services only");
}
