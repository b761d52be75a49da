//! Generates the conformance service, client and messages from the protos of the pinned
//! `connectrpc.com/conformance` Go module, fetched into the Go module cache (outside the
//! repository) with `go mod download`. Nothing from that module is committed here.
//!
//! Set `SWITCHBOARD_CONFORMANCE_PROTO_DIR` to a directory holding
//! `connectrpc/conformance/v1/*.proto` to skip the download.

use std::path::PathBuf;
use std::process::Command;

/// The conformance release the protos and the runner are pinned to.
const CONFORMANCE_MODULE: &str = "connectrpc.com/conformance@v1.0.7";

fn proto_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-env-changed=SWITCHBOARD_CONFORMANCE_PROTO_DIR");
    if let Some(dir) = std::env::var_os("SWITCHBOARD_CONFORMANCE_PROTO_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let output = Command::new("go")
        .args(["mod", "download", "-json", CONFORMANCE_MODULE])
        .env("GOFLAGS", "-mod=mod")
        .output()
        .map_err(|e| format!("running `go mod download` (is Go installed?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "go mod download {CONFORMANCE_MODULE} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let dir = info["Dir"]
        .as_str()
        .ok_or("go mod download printed no Dir")?;
    Ok(PathBuf::from(dir).join("proto"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = proto_dir()?;
    let files: Vec<PathBuf> = ["service", "client_compat", "server_compat", "config"]
        .iter()
        .map(|name| dir.join(format!("connectrpc/conformance/v1/{name}.proto")))
        .collect();
    switchboard_build::Builder::new()
        .include(&dir)
        .compile(&files)?;
    Ok(())
}
