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
    // connectrpc-build declares `rerun-if-changed` on the descriptor set; written now, it would
    // be newer than this build's start, which cargo takes for a change on every later build.
    // It gets the schema's modification time instead.
    let schema_modified = std::fs::metadata(format!("{INCLUDE}/{SCHEMA}"))
        .and_then(|meta| meta.modified())
        .expect("reading the schema's modification time");
    std::fs::File::options()
        .write(true)
        .open(&set_path)
        .and_then(|file| file.set_modified(schema_modified))
        .expect("back-dating the descriptor set");

    connectrpc_build::Config::new()
        .descriptor_set(&set_path)
        .files(&[SCHEMA])
        .include_file("_connectrpc.rs")
        .compile()
        .expect("generating connectrpc code for bench/v1/echo.proto");

    println!("cargo:rerun-if-changed={INCLUDE}/{SCHEMA}");
}
