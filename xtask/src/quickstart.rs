//! `cargo xtask quickstart`: the README's quick start, exactly as written, as a user gets it.
//!
//! 1. `cargo package` for every publishable crate (which also builds each from its packaged
//!    sources, as `cargo publish` would);
//! 2. a fresh crate in a temporary directory made of the README's files (each code block after
//!    a `<!-- quickstart: PATH -->` marker), depending on the crates by version; a
//!    `[patch.crates-io]` table points those versions at the packaged sources, since they are
//!    not on crates.io;
//! 3. `cargo build`, then the server on a free port and the client against it, which must
//!    print the greeting.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process::{Banner, Process, free_port};
use crate::steps::{print_logs, run_step};
use crate::{target_dir, workspace_root};

/// The crates published to crates.io, in the order they depend on each other.
pub(crate) const PUBLISHED: [&str; 6] = [
    "switchboard-build",
    "switchboard-rpc",
    "switchboard-health",
    "switchboard-reflection",
    "switchboard-otel",
    "protoc-gen-switchboard",
];

const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// Entry point.
pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("switchboard-quickstart-{}", std::process::id()));
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> quickstart: logs in {}", logs.display());
    let packaged = package(&logs)?;
    let project = work.join("greet");
    write_project(&project, &packaged)?;
    let target = target_dir().join("quickstart");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_step(
        &logs,
        "cargo build (the quick start)",
        Command::new(&cargo)
            .args(["build", "--bins", "--target-dir"])
            .arg(&target)
            .current_dir(&project),
        BUILD_TIMEOUT,
    )?
    .check()?;
    call(&logs, &target.join("debug"))?;
    eprintln!("quickstart took {:.1}s", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Packages and verifies every published crate; returns the directories of their packaged
/// sources (`target/package/NAME-VERSION`).
fn package(logs: &Path) -> Result<Vec<(String, PathBuf)>> {
    forget_packaged_sources()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["package", "--allow-dirty"]);
    for name in PUBLISHED {
        command.args(["-p", name]);
    }
    command.current_dir(workspace_root());
    run_step(logs, "cargo package", &mut command, BUILD_TIMEOUT)?.check()?;
    let version = workspace_version()?;
    PUBLISHED
        .iter()
        .map(|name| {
            let dir = target_dir()
                .join("package")
                .join(format!("{name}-{version}"));
            if !dir.join("Cargo.toml").is_file() {
                bail!("cargo package left no sources in {}", dir.display());
            }
            Ok((name.to_string(), dir))
        })
        .collect()
}

/// Removes what earlier `cargo package` runs extracted of our crates.
///
/// To verify a crate that depends on another one packaged in the same run, cargo serves the
/// packaged crates from a local registry and extracts them under
/// `$CARGO_HOME/registry/src/-<hash>/NAME-VERSION`; a later run with the same version finds
/// that directory and builds the old sources (a new field missing, say). These directories
/// belong to no remote registry, so removing ours only costs an extraction.
fn forget_packaged_sources() -> Result<()> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let version = workspace_version()?;
    let Ok(registries) = std::fs::read_dir(cargo_home.join("registry").join("src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue; // a remote registry (crates.io's is index.crates.io-...)
        }
        for name in PUBLISHED {
            let stale = registry.path().join(format!("{name}-{version}"));
            if stale.is_dir() {
                std::fs::remove_dir_all(&stale)
                    .with_context(|| format!("removing {}", stale.display()))?;
            }
        }
    }
    Ok(())
}

/// The workspace's version (`[workspace.package] version`).
fn workspace_version() -> Result<String> {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))?;
    manifest
        .split("[workspace.package]")
        .nth(1)
        .and_then(|section| {
            section.lines().find_map(|line| {
                let value = line.trim().strip_prefix("version")?.trim();
                Some(value.strip_prefix('=')?.trim().trim_matches('"').to_owned())
            })
        })
        .context("no version in [workspace.package]")
}

/// The README's quick-start files, written under `project`, with the patch table added.
fn write_project(project: &Path, packaged: &[(String, PathBuf)]) -> Result<()> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md"))?;
    let files = quickstart_files(&readme)?;
    for (path, text) in &files {
        let file = project.join(path);
        std::fs::create_dir_all(file.parent().expect("a file has a parent"))?;
        let mut text = text.clone();
        if path == "Cargo.toml" {
            // A workspace of its own (not the temporary directory's parents'), and the
            // packaged crates in place of crates.io's.
            text.push_str("\n[workspace]\n\n[patch.crates-io]\n");
            for (name, dir) in packaged {
                text.push_str(&format!("{name} = {{ path = {:?} }}\n", dir.display()));
            }
        }
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    for needed in ["Cargo.toml", "build.rs", "src/main.rs"] {
        if !files.iter().any(|(path, _)| path == needed) {
            bail!("the README's quick start has no {needed}");
        }
    }
    Ok(())
}

/// Each `<!-- quickstart: PATH -->` marker and the code block after it.
fn quickstart_files(readme: &str) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for piece in readme.split("<!-- quickstart: ").skip(1) {
        let (path, rest) = piece
            .split_once(" -->")
            .context("an unclosed quickstart marker")?;
        let fence = rest
            .find("```")
            .context("no code block after a quickstart marker")?;
        let body = &rest[fence..];
        let start = body.find('\n').context("a code fence without a newline")? + 1;
        let end = body[start..]
            .find("\n```")
            .context("an unclosed code block in the quick start")?;
        files.push((
            path.trim().to_owned(),
            format!("{}\n", &body[start..start + end]),
        ));
    }
    Ok(files)
}

/// Runs the quick start's server on a free port and its client against it.
fn call(logs: &Path, bin: &Path) -> Result<()> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    // Killed when dropped, at the end of this function.
    let (_server, ()) = Process::start(
        logs,
        "the quick start's server",
        Command::new(bin.join("greet")).arg(&addr),
        Banner::Stdout,
        Duration::from_secs(60),
        |line| line.contains("listening").then_some(()),
    )?;
    let step = run_step(
        logs,
        "the quick start's client",
        Command::new(bin.join("client")).arg(format!("http://{addr}")),
        Duration::from_secs(60),
    )?;
    if !step.success() || step.stdout.trim() != "Hello, Jane!" {
        print_logs(&step.logs);
        bail!("the client printed {:?}: {}", step.stdout, step.failure());
    }
    eprintln!(
        "    the quick start's client printed {:?}",
        step.stdout.trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_the_code_blocks_after_the_markers() {
        let readme = "intro\n<!-- quickstart: a/b.rs -->\n```rust,ignore\nfn main() {}\n```\n\
                      text\n<!-- quickstart: Cargo.toml -->\n\n```toml\n[package]\nname = \"x\"\n```\n";
        let files = quickstart_files(readme).unwrap();
        assert_eq!(
            files,
            vec![
                ("a/b.rs".to_owned(), "fn main() {}\n".to_owned()),
                (
                    "Cargo.toml".to_owned(),
                    "[package]\nname = \"x\"\n".to_owned()
                ),
            ]
        );
    }

    /// The runtime's crate docs (docs.rs) carry the quick start too; CI builds the README's,
    /// so the two must be the same files.
    #[test]
    fn the_crate_docs_carry_the_readme_quick_start() {
        let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
        let crate_docs =
            std::fs::read_to_string(workspace_root().join("crates/switchboard/src/quickstart.md"))
                .unwrap();
        assert_eq!(
            quickstart_files(&crate_docs).unwrap(),
            quickstart_files(&readme).unwrap(),
            "crates/switchboard/src/quickstart.md and the README's quick start differ"
        );
    }

    #[test]
    fn the_readme_has_a_whole_quick_start() {
        let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
        let files = quickstart_files(&readme).unwrap();
        let paths: Vec<_> = files.iter().map(|(p, _)| p.as_str()).collect();
        for needed in ["Cargo.toml", "build.rs", "src/main.rs", "src/bin/client.rs"] {
            assert!(paths.contains(&needed), "{paths:?}");
        }
    }
}
