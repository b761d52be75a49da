//! Generates the library service (and the google.api types it uses) from `proto/` with
//! switchboard-build, no `protoc` needed.

fn main() {
    switchboard_build::Builder::new()
        .include("proto")
        .compile(&["proto/switchboard/library/v1/library.proto"])
        .expect("generating code for proto/switchboard/library/v1/library.proto");
}
