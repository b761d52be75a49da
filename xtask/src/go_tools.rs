//! The Go programs the suites run, pinned together in one Go module.
//!
//! `xtask/go-tools/go.mod` names each program in a `tool` directive (Go 1.24's way of keeping
//! a project's tools, which connect-go follows) and pins it, with every dependency, in its
//! `require` lines and `go.sum`: the conformance runner, grpc-go's interop client and server,
//! grpcurl, grpc-health-probe and ghz. Changing a version is `go get -tool MODULE@VERSION` in
//! that directory, reviewed like any other change.
//!
//! One `go install tool` builds them all into a directory of the tools cache named after the
//! module's contents: an unchanged pin costs nothing, a changed one is a fresh directory, and
//! an install cut short is redone (a stamp is written last).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail};

use crate::{tools_dir, workspace_root};

/// The Go module that pins the tools.
fn module_dir() -> PathBuf {
    workspace_root().join("xtask").join("go-tools")
}

/// One install at a time: suites install their peers from several threads.
static INSTALL: Mutex<()> = Mutex::new(());

/// The path of the pinned Go program `name` (the last element of its package path, as
/// `go install` names it), installing every pinned tool first if they are not cached.
pub(crate) fn go_tool(name: &str) -> Result<PathBuf> {
    let _one_at_a_time = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let module = module_dir();
    let go_mod = std::fs::read_to_string(module.join("go.mod")).context("reading go.mod")?;
    let go_sum = std::fs::read_to_string(module.join("go.sum")).context("reading go.sum")?;
    let names = tool_names(&go_mod);
    if !names.iter().any(|n| n == name) {
        bail!(
            "{name} is not a tool of {}",
            module.join("go.mod").display()
        );
    }
    let dir = tools_dir().join(format!("go-tools-{:016x}", fnv1a(&[&go_mod, &go_sum])));
    let stamp = dir.join(".installed");
    if !stamp.exists() {
        install(&module, &dir, &names)?;
        std::fs::write(&stamp, "")?;
    }
    Ok(dir.join(name))
}

/// `go install tool` into `dir`, checking that every tool arrived.
fn install(module: &Path, dir: &Path, names: &[String]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    eprintln!(
        "==> go install tool ({}) into {}",
        names.join(", "),
        dir.display()
    );
    let status = Command::new("go")
        .args(["install", "tool"])
        .current_dir(module)
        .env("GOBIN", dir)
        .env("GOWORK", "off")
        .env("GOFLAGS", "-mod=readonly")
        .status()
        .context("could not start `go` (is Go installed?)")?;
    if !status.success() {
        bail!(
            "go install tool in {} failed with {status}",
            module.display()
        );
    }
    for name in names {
        if !dir.join(name).exists() {
            bail!("go install tool did not produce {name}");
        }
    }
    Ok(())
}

/// The program names of a go.mod's `tool` directives.
fn tool_names(go_mod: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_block = false;
    for line in go_mod.lines().map(str::trim) {
        let path = if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
            line
        } else if line == "tool (" {
            in_block = true;
            continue;
        } else if let Some(path) = line.strip_prefix("tool ") {
            path
        } else {
            continue;
        };
        if let Some(name) = path
            .split_whitespace()
            .next()
            .and_then(|p| p.rsplit('/').next())
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// The version go.mod pins for `module` (for reports), if it names it.
pub(crate) fn pinned_version(module: &str) -> Option<String> {
    let go_mod = std::fs::read_to_string(module_dir().join("go.mod")).ok()?;
    go_mod.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let first = words.next()?;
        let (path, version) = if first == "require" {
            (words.next()?, words.next()?)
        } else {
            (first, words.next()?)
        };
        (path == module).then(|| version.to_owned())
    })
}

/// FNV-1a over the texts: a stable name for the cache directory (std's hasher may change
/// between Rust releases).
fn fnv1a(texts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for text in texts {
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_the_last_path_elements() {
        let go_mod = "module x\n\ngo 1.26.0\n\ntool (\n\tgithub.com/a/b/cmd/alpha\n\tgoogle.golang.org/grpc/interop/client\n)\n\ntool example.com/beta\n";
        assert_eq!(tool_names(go_mod), ["alpha", "client", "beta"]);
    }

    #[test]
    fn the_repository_pins_every_tool_the_suites_run() {
        let go_mod = std::fs::read_to_string(module_dir().join("go.mod")).unwrap();
        let names = tool_names(&go_mod);
        for needed in [
            "connectconformance",
            "client",
            "server",
            "grpcurl",
            "grpc-health-probe",
            "ghz",
        ] {
            assert!(names.iter().any(|n| n == needed), "{needed} in {names:?}");
        }
    }

    /// The conformance and interop crates take their schemas from the same releases whose
    /// programs run against them.
    #[test]
    fn the_schemas_come_from_the_pinned_releases() {
        for (build_script, module) in [
            ("conformance/build.rs", "connectrpc.com/conformance"),
            ("interop/build.rs", "google.golang.org/grpc"),
        ] {
            let version = pinned_version(module).expect("pinned");
            let script = std::fs::read_to_string(workspace_root().join(build_script)).unwrap();
            assert!(
                script.contains(&format!("\"{module}@{version}\"")),
                "{build_script} does not take {module} at {version}, the version xtask/go-tools pins"
            );
        }
    }
}
