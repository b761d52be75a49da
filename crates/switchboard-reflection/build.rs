//! Generates the reflection messages, servers and clients of both protocol versions from
//! `proto/` with switchboard-build; the crate includes them with `switchboard::include_proto!`.

fn main() {
    let protos = [
        "proto/grpc/reflection/v1/reflection.proto",
        "proto/grpc/reflection/v1alpha/reflection.proto",
    ];
    switchboard_build::Builder::new()
        .include("proto")
        // File descriptors are answered as shared slices of the registered sets.
        .configure(|config| {
            config.bytes([".grpc.reflection"]);
        })
        .compile(&protos)
        .expect("generating code for the reflection protos");
}
