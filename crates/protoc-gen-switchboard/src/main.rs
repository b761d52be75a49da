//! `protoc-gen-switchboard`: a `protoc` / `buf` plugin that generates switchboard services,
//! clients and descriptor sets (and, by default, prost messages), one `<package>.rs` per
//! package.
//!
//! ```text
//! protoc --plugin=protoc-gen-switchboard --switchboard_out=src/gen \
//!        --switchboard_opt=client=false,extern_path=.acme.common=::acme_common \
//!        -I proto proto/acme/greet/v1/greet.proto
//! ```
//!
//! Options (comma-separated `key=value`): `extern_path=.proto.path=::rust::path`
//! (repeatable), `messages=false` (services only), `server=false`, `client=false`.

use std::io::{Read, Write};
use std::process::ExitCode;

use prost::Message;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("protoc-gen-switchboard: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut input = Vec::new();
    std::io::stdin().lock().read_to_end(&mut input)?;
    let response = switchboard_build::plugin::generate_from_request_bytes(&input)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&response.encode_to_vec())?;
    stdout.flush()?;
    Ok(())
}
