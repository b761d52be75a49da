//! Generates the `bench.v1` messages (buffa) and the `EchoService` stubs (connectrpc) from
//! the shared schema. connectrpc-build normally runs `protoc`; the machine has none, so the
//! descriptor set is compiled here with `protox` (pure Rust) and handed over precompiled.

use std::path::PathBuf;

const INCLUDE: &str = "../../proto";
const SCHEMA: &str = "bench/v1/echo.proto";

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let descriptors = protox::Compiler::new([INCLUDE])
        .and_then(|mut compiler| {
            compiler.include_imports(true).include_source_info(true);
            compiler.open_file(SCHEMA)?;
            Ok(compiler.encode_file_descriptor_set())
        })
        .unwrap_or_else(|error| panic!("compiling {INCLUDE}/{SCHEMA} with protox: {error}"));
    let set_path = out_dir.join("echo.fds.bin");
    std::fs::write(&set_path, descriptors).expect("writing the descriptor set to OUT_DIR");

    connectrpc_build::Config::new()
        .descriptor_set(&set_path)
        .files(&[SCHEMA])
        .include_file("_connectrpc.rs")
        .compile()
        .expect("generating connectrpc code for bench/v1/echo.proto");

    println!("cargo:rerun-if-changed={INCLUDE}/{SCHEMA}");
}
