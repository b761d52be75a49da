//! Generates the library service (and the google.api types it uses) from `proto/` with
//! switchboard-build, no `protoc` needed, and its OpenAPI document (`library.openapi.json` in
//! `OUT_DIR`), which `library-server --openapi` prints.

fn main() {
    switchboard_build::Builder::new()
        .include("proto")
        .openapi("library.openapi.json")
        .compile(&["proto/switchboard/library/v1/library.proto"])
        .expect("generating code for proto/switchboard/library/v1/library.proto");
}
