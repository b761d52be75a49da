//! Generates `bench.v1` three times, once per library measured, each into its own
//! directory under `OUT_DIR` (two of them would otherwise both write `bench.v1.rs`):
//!
//! * `switchboard/`: switchboard-build (prost messages, switchboard server);
//! * `tonic/`: tonic-prost-build (prost messages, tonic server);
//! * `connectrpc/`: connectrpc-build (buffa messages and views, connectrpc server).
//!
//! There is no `protoc` on the machine: the schema is compiled once with `protox` and the
//! descriptor set is handed to tonic's and connectrpc's generators; switchboard-build runs
//! protox itself.

use std::path::{Path, PathBuf};

const INCLUDE: &str = "../proto";
const SCHEMA: &str = "bench/v1/echo.proto";

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let schema_path = Path::new(INCLUDE).join(SCHEMA);

    let mut compiler = protox::Compiler::new([INCLUDE])
        .unwrap_or_else(|error| panic!("protox include dir {INCLUDE}: {error}"));
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_file(SCHEMA)
        .unwrap_or_else(|error| panic!("compiling {} with protox: {error}", schema_path.display()));

    let switchboard_dir = fresh_dir(&out_dir, "switchboard");
    switchboard_build::Builder::new()
        .include(INCLUDE)
        .out_dir(&switchboard_dir)
        .client(false)
        .compile(&[&schema_path])
        .expect("switchboard-build: generating bench.v1");

    let tonic_dir = fresh_dir(&out_dir, "tonic");
    tonic_prost_build::configure()
        .build_client(false)
        .build_transport(false)
        // Only Echo is implemented here; the other methods answer `unimplemented`.
        .generate_default_stubs(true)
        .out_dir(&tonic_dir)
        .compile_fds(compiler.file_descriptor_set())
        .expect("tonic-prost-build: generating bench.v1");

    let connectrpc_dir = fresh_dir(&out_dir, "connectrpc");
    let set_path = connectrpc_dir.join("echo.fds.bin");
    std::fs::write(&set_path, compiler.encode_file_descriptor_set())
        .expect("writing the descriptor set for connectrpc-build");
    backdate(&set_path, &schema_path);
    connectrpc_build::Config::new()
        .descriptor_set(&set_path)
        .files(&[SCHEMA])
        .out_dir(&connectrpc_dir)
        .include_file("_connectrpc.rs")
        .compile()
        .expect("connectrpc-build: generating bench.v1");

    println!("cargo:rerun-if-changed={}", schema_path.display());
}

/// `OUT_DIR/<name>`, created if missing.
fn fresh_dir(out_dir: &Path, name: &str) -> PathBuf {
    let dir = out_dir.join(name);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
    dir
}

/// Gives `path` the modification time of `source`. connectrpc-build declares
/// `rerun-if-changed` on the descriptor set it is handed, and a file written during the build
/// is newer than the build's start, which cargo takes for a change on every later build: the
/// script and this crate would be rebuilt each time (about 20 s of every `cargo xtask bench`).
fn backdate(path: &Path, source: &Path) {
    let modified = std::fs::metadata(source)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|error| panic!("reading the mtime of {}: {error}", source.display()));
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(modified))
        .unwrap_or_else(|error| panic!("setting the mtime of {}: {error}", path.display()));
}
