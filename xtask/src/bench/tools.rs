//! The load generators and profilers, installed when missing and reused after that:
//! h2load and valgrind from Debian's packages (`nghttp2-client`, `valgrind`), ghz as pinned in
//! `xtask/go-tools` (see [`crate::go_tools`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::go_tools::go_tool;
use crate::steps::ensure_apt;

/// ghz's module, for the version in reports.
pub(crate) const GHZ_MODULE: &str = "github.com/bojand/ghz";

const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// Where each tool is.
pub(crate) struct Tools {
    pub(crate) h2load: PathBuf,
    /// Where the pinned ghz is; `None` when not wanted (the guard does not need it).
    pub(crate) ghz: Option<PathBuf>,
    /// `None` when callgrind is not wanted in this run.
    pub(crate) valgrind: Option<PathBuf>,
}

/// Makes every tool available; valgrind only when `callgrind` is set, ghz only when `ghz` is.
pub(crate) fn ensure(logs: &Path, callgrind: bool, ghz: bool) -> Result<Tools> {
    let mut apt = vec![("h2load", "nghttp2-client")];
    if callgrind {
        apt.push(("valgrind", "valgrind"));
    }
    ensure_apt(logs, &apt, INSTALL_TIMEOUT)?;
    let ghz = if ghz { Some(go_tool("ghz")?) } else { None };
    Ok(Tools {
        h2load: PathBuf::from("h2load"),
        ghz,
        valgrind: callgrind.then(|| PathBuf::from("valgrind")),
    })
}
