//! `cargo xtask transcoding`: REST transcoding, switchboard against connect-go behind
//! `connectrpc.com/vanguard` v0.4.0, request by request.
//!
//! Both servers serve `transcoding/proto/switchboard/library/v1/library.proto` with the same
//! handlers (`transcoding/README.md`): switchboard's `library-server` (the
//! `switchboard-transcoding` crate) and `vanguard-library` (`transcoding/go`). Every request
//! of `transcoding/corpus.json` is sent to both, byte for byte (a raw HTTP/1.1 writer, so a
//! path's percent-encoding arrives as written), and the answers are compared: the status, the
//! Content-Type (exact, but for the case of the media type), the `Allow` header as a set, and
//! the body (as JSON values when both are JSON, numbers compared as numbers, else as bytes).
//! For errors the transcoder makes itself, whose wording is each implementation's own, a case
//! says `"compare": "status+code"`: the body's `code` is compared instead of the whole body.
//!
//! A case whose answers are known to differ says why in `difference` (and may pin
//! switchboard's status in `switchboard_status`); it is counted apart, and it fails when the
//! answers agree again (the entry is stale). Each case also records vanguard's status
//! (`status`), so a change of vanguard, or a case that no longer tests what it says, shows.
//!
//! The Go server is built into the tools cache, in a directory named after the contents of
//! `transcoding/go` and `transcoding/proto`: the code generators from the module's `tool`
//! directives (`go install tool`), the code from buf (the peers' npm install), then
//! `gofmt -l`, `go vet` and `go build`. Nothing generated enters the repository. The
//! handlers' RPC tests (`transcoding/tests/handlers.rs`) also run against the Go server, over
//! Connect through vanguard, so both implementations are held to the README's rules apart
//! from REST.
//!
//! Every run writes the answers to `target/transcoding/<server>-responses.json`.
//! `--only vanguard` (or `--only switchboard`) sends the corpus to one server only;
//! `--case TEXT` keeps the cases whose name contains TEXT.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::peers::install_node;
use crate::process::{Banner, Process};
use crate::steps::{print_logs, run_step};
use crate::{target_dir, tools_dir, workspace_root};

const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);
const GO_TIMEOUT: Duration = Duration::from_secs(600);
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// One request, connection to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The proto file both servers serve, relative to `transcoding/proto`.
const PROTO_FILE: &str = "switchboard/library/v1/library.proto";
/// The Go module's path (`transcoding/go/go.mod`): the generated code lands under it.
const GO_MODULE: &str = "switchboard.test/library";

// ---------------------------------------------------------------------------------------------
// The corpus.

/// What of two answers must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    /// Status, Content-Type, `Allow` and the whole body.
    Full,
    /// Status, Content-Type, `Allow` and the body's `code` (for errors the transcoder makes
    /// itself, whose messages are each implementation's own wording).
    StatusCode,
}

/// One REST request of the corpus and what is known of its answers.
#[derive(Debug)]
struct Case {
    name: String,
    method: String,
    /// Sent as written: percent-encoding and all.
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    compare: Compare,
    /// vanguard's status, as recorded.
    status: u16,
    /// Why switchboard answers differently, when it does on purpose.
    difference: Option<String>,
    /// switchboard's status where a difference is listed, when pinned.
    switchboard_status: Option<u16>,
}

impl Case {
    /// The category: the name up to its first `/`.
    fn category(&self) -> &str {
        self.name.split('/').next().unwrap_or_default()
    }
}

fn corpus_path() -> PathBuf {
    workspace_root().join("transcoding").join("corpus.json")
}

/// Reads and checks `transcoding/corpus.json`.
fn load_corpus(path: &Path) -> Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_corpus(&text).with_context(|| format!("in {}", path.display()))
}

fn parse_corpus(text: &str) -> Result<Vec<Case>> {
    let root: Value = serde_json::from_str(text).context("not JSON")?;
    let cases = root["cases"]
        .as_array()
        .context("the corpus is an object with a \"cases\" array")?;
    let mut out = Vec::with_capacity(cases.len());
    let mut names = BTreeSet::new();
    for (index, case) in cases.iter().enumerate() {
        let case = parse_case(case).with_context(|| {
            let name = case["name"].as_str().unwrap_or("(no name)");
            format!("case {index} ({name})")
        })?;
        if !names.insert(case.name.clone()) {
            bail!("two cases are named {:?}", case.name);
        }
        out.push(case);
    }
    Ok(out)
}

const CASE_KEYS: [&str; 11] = [
    "name",
    "method",
    "path",
    "headers",
    "body",
    "body_base64",
    "compare",
    "status",
    "difference",
    "switchboard_status",
    "note",
];

fn parse_case(value: &Value) -> Result<Case> {
    let object = value.as_object().context("a case is an object")?;
    if let Some(unknown) = object.keys().find(|k| !CASE_KEYS.contains(&k.as_str())) {
        bail!("unknown key {unknown:?} (known: {})", CASE_KEYS.join(", "));
    }
    let text = |key: &str| -> Result<Option<String>> {
        match object.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => bail!("{key} must be a string, not {other}"),
        }
    };
    let status = |key: &str| -> Result<Option<u16>> {
        match object.get(key) {
            None => Ok(None),
            Some(v) => Ok(Some(
                v.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .with_context(|| format!("{key} must be an HTTP status, not {v}"))?,
            )),
        }
    };
    let name = text("name")?.context("a case needs a name")?;
    let method = text("method")?.context("a case needs a method")?;
    let path = text("path")?.context("a case needs a path")?;
    if !path.starts_with('/') || path.contains([' ', '\r', '\n']) {
        bail!("path {path:?} must start with / and hold no space or line break");
    }
    let mut headers = Vec::new();
    if let Some(list) = object.get("headers") {
        for pair in list
            .as_array()
            .context("headers is a list of [name, value]")?
        {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => headers.push((k.clone(), v.clone())),
                _ => bail!("a header is [name, value], not {pair}"),
            }
        }
    }
    let body = match (text("body")?, text("body_base64")?) {
        (Some(_), Some(_)) => bail!("body and body_base64 exclude each other"),
        (Some(text), None) => Some(text.into_bytes()),
        (None, Some(encoded)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .context("body_base64 is not base64")?,
        ),
        (None, None) => None,
    };
    let compare = match text("compare")?.as_deref() {
        None | Some("full") => Compare::Full,
        Some("status+code") => Compare::StatusCode,
        Some(other) => bail!("compare is \"full\" or \"status+code\", not {other:?}"),
    };
    let difference = text("difference")?;
    let switchboard_status = status("switchboard_status")?;
    if switchboard_status.is_some() && difference.is_none() {
        bail!("switchboard_status only goes with a difference");
    }
    if difference.as_deref().is_some_and(|d| d.trim().len() < 10) {
        bail!("a difference says why, in words");
    }
    Ok(Case {
        name,
        method,
        path,
        headers,
        body,
        compare,
        status: status("status")?.context("a case records vanguard's status")?,
        difference,
        switchboard_status,
    })
}

// ---------------------------------------------------------------------------------------------
// The wire: one request per connection, written byte for byte.

/// An HTTP answer.
#[derive(Clone, Debug)]
struct Reply {
    /// 0 when there was no answer (see `error`).
    status: u16,
    /// In the order received; names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Why there was no answer: the connection closed or failed before a whole one came.
    error: Option<String>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The answer as the responses file records it.
    fn to_json(&self, case: &Case) -> Value {
        if let Some(error) = &self.error {
            return json!({
                "name": case.name,
                "method": case.method,
                "path": case.path,
                "error": error,
            });
        }
        let body = match std::str::from_utf8(&self.body) {
            Ok(text) => json!({ "body": text }),
            Err(_) => json!({
                "body_base64": base64::engine::general_purpose::STANDARD.encode(&self.body)
            }),
        };
        let mut out = json!({
            "name": case.name,
            "method": case.method,
            "path": case.path,
            "status": self.status,
            "content_type": self.header("content-type"),
        });
        let allow = self.all("allow");
        if !allow.is_empty() {
            out["allow"] = json!(allow.join(", "));
        }
        if let Some(value) = self.json() {
            out["json"] = value;
        } else {
            out.as_object_mut()
                .expect("an object")
                .extend(body.as_object().expect("an object").clone());
        }
        out
    }
}

/// The request's bytes: exactly the case's method, path and headers, with `Host`,
/// `Connection: close` and (with a body) `Content-Length` added.
fn request_bytes(case: &Case, port: u16) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", case.method, case.path);
    out.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    for (name, value) in &case.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = &case.body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    if let Some(body) = &case.body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// Sends `case` to `127.0.0.1:port`; a connection that ends without a whole answer is an
/// answer too (`error`), compared like the others.
fn exchange(case: &Case, port: u16) -> Reply {
    send(case, port).unwrap_or_else(|error| Reply {
        status: 0,
        headers: Vec::new(),
        body: Vec::new(),
        error: Some(format!("no answer: {error:#}")),
    })
}

/// Sends `case` to `127.0.0.1:port` and reads the answer to the end of the connection.
fn send(case: &Case, port: u16) -> Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(&request_bytes(case, port))?;
    let mut raw = Vec::new();
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            // A server that answers and resets (rather than closes) ends the answer too.
            Err(error)
                if error.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() =>
            {
                break;
            }
            Err(error) => return Err(error).context("reading the answer"),
        }
        if Instant::now() > deadline {
            bail!("no end of the answer within {}s", REQUEST_TIMEOUT.as_secs());
        }
    }
    parse_reply(&raw, case.method == "HEAD")
}

/// Parses an HTTP/1.1 answer (Content-Length, chunked, or to the end of the connection).
fn parse_reply(raw: &[u8], head: bool) -> Result<Reply> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| {
            format!(
                "no end of headers in {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(200)])
            )
        })?;
    let head_text = std::str::from_utf8(&raw[..end]).context("headers are not UTF-8")?;
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let rest = &raw[end + 4..];
    let reply = Reply {
        status,
        headers,
        body: Vec::new(),
        error: None,
    };
    if head || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(reply);
    }
    let chunked = reply
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = reply.header("content-length") {
        let length: usize = length.parse().context("bad Content-Length")?;
        if rest.len() < length {
            bail!("the body ended after {} of {length} bytes", rest.len());
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Reply { body, ..reply })
}

/// Decodes a chunked body (trailers ignored).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line without its end")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            bail!("a chunk of {size} bytes ended early");
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing.

/// The Content-Type with its media type (before any `;`) lowercased, parameters as sent.
fn normalized_content_type(value: Option<&str>) -> Option<String> {
    value.map(|v| match v.split_once(';') {
        Some((media, params)) => format!("{};{params}", media.to_ascii_lowercase()),
        None => v.to_ascii_lowercase(),
    })
}

/// The methods of `Allow` headers, as a set.
fn allow_set(reply: &Reply) -> BTreeSet<String> {
    reply
        .all("allow")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// A short rendering of a body for reports.
fn show_body(reply: &Reply) -> String {
    let text = match reply.json() {
        Some(value) => value.to_string(),
        None => match std::str::from_utf8(&reply.body) {
            Ok(text) => format!("{text:?}"),
            Err(_) => format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(&reply.body)
            ),
        },
    };
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    short
}

/// JSON equality with numbers compared as numbers: `3` and `3.0` are one value to every JSON
/// reader (protojson writes a double 3 as `3`, other encoders as `3.0`). Integers compare
/// exactly; a number with a fraction or exponent compares as an f64.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i128(), y.as_i128()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// How two answers differ, by what the case compares; empty when they agree.
fn differences(case: &Case, vanguard: &Reply, switchboard: &Reply) -> Vec<String> {
    let mut out = Vec::new();
    if vanguard.error.is_some() || switchboard.error.is_some() {
        if vanguard.error != switchboard.error {
            for (label, reply) in [("vanguard", vanguard), ("switchboard", switchboard)] {
                match &reply.error {
                    Some(error) => out.push(format!("{label}: {error}")),
                    None => out.push(format!("{label}: {} {}", reply.status, show_body(reply))),
                }
            }
        }
        return out;
    }
    if vanguard.status != switchboard.status {
        out.push(format!(
            "status: vanguard {}, switchboard {}",
            vanguard.status, switchboard.status
        ));
    }
    let (v_type, s_type) = (
        vanguard.header("content-type"),
        switchboard.header("content-type"),
    );
    if normalized_content_type(v_type) != normalized_content_type(s_type) {
        out.push(format!(
            "content-type: vanguard {v_type:?}, switchboard {s_type:?}"
        ));
    }
    let (v_allow, s_allow) = (allow_set(vanguard), allow_set(switchboard));
    if v_allow != s_allow {
        out.push(format!(
            "allow: vanguard {v_allow:?}, switchboard {s_allow:?}"
        ));
    }
    let (v_json, s_json) = (vanguard.json(), switchboard.json());
    match case.compare {
        Compare::Full => {
            let same = match (&v_json, &s_json) {
                (Some(v), Some(s)) => same_json(v, s),
                _ => vanguard.body == switchboard.body,
            };
            if !same {
                out.push(format!(
                    "body: vanguard {}, switchboard {}",
                    show_body(vanguard),
                    show_body(switchboard)
                ));
            }
        }
        Compare::StatusCode => {
            let code = |json: &Option<Value>| json.as_ref().map(|j| j["code"].clone());
            if code(&v_json) != code(&s_json) {
                out.push(format!(
                    "code: vanguard {}, switchboard {}",
                    show_body(vanguard),
                    show_body(switchboard)
                ));
            }
        }
    }
    out
}

/// What one case came to.
enum Verdict {
    Matched,
    Known,
    Failed(Vec<String>),
}

fn judge(case: &Case, vanguard: &Reply, switchboard: &Reply) -> Verdict {
    let mut problems = Vec::new();
    if vanguard.status != case.status {
        problems.push(format!(
            "vanguard answered {}, the corpus records {} (a new vanguard, or the case no longer tests what it says)",
            vanguard.status, case.status
        ));
    }
    let found = differences(case, vanguard, switchboard);
    match &case.difference {
        None if found.is_empty() && problems.is_empty() => Verdict::Matched,
        None => {
            problems.extend(found);
            Verdict::Failed(problems)
        }
        Some(_) if found.is_empty() => {
            problems.push("listed as a difference, but the answers agree: remove the entry".into());
            Verdict::Failed(problems)
        }
        Some(_) => {
            if let Some(want) = case.switchboard_status
                && switchboard.status != want
            {
                problems.push(format!(
                    "switchboard answered {}, the difference says {want}",
                    switchboard.status
                ));
            }
            if problems.is_empty() {
                Verdict::Known
            } else {
                problems.extend(found);
                Verdict::Failed(problems)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Building and starting the servers.

/// Every file under `dir`, as (path relative to `dir`, path), sorted.
fn files_under(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).with_context(|| format!("{}", next.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)?
                    .to_str()
                    .context("a path that is not UTF-8")?
                    .to_owned();
                out.push((relative, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// FNV-1a over the names and contents of the files: a stable name for the build directory.
fn content_hash(groups: &[(&str, &[(String, PathBuf)])]) -> Result<u64> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (group, files) in groups {
        for (relative, path) in *files {
            eat(group.as_bytes());
            eat(relative.as_bytes());
            eat(&[0]);
            let content = std::fs::read(path)?;
            eat(&(content.len() as u64).to_le_bytes());
            eat(&content);
        }
    }
    Ok(hash)
}

fn copy_files(files: &[(String, PathBuf)], to: &Path) -> Result<()> {
    for (relative, path) in files {
        let target = to.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(path, &target)
            .with_context(|| format!("copying {} to {}", path.display(), target.display()))?;
    }
    Ok(())
}

/// Builds `vanguard-library` into the tools cache (unless this source is built already) and
/// returns it.
fn build_vanguard(logs: &Path) -> Result<PathBuf> {
    let root = workspace_root().join("transcoding");
    let go_files = files_under(&root.join("go"))?;
    let proto_files = files_under(&root.join("proto"))?;
    let hash = content_hash(&[("go", &go_files), ("proto", &proto_files)])?;
    let dir = tools_dir().join(format!("transcoding-vanguard-{hash:016x}"));
    let binary = dir.join("vanguard-library");
    let stamp = dir.join(".built");
    if stamp.exists() && binary.exists() {
        eprintln!("==> vanguard-library: cached in {}", dir.display());
        return Ok(binary);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let src = dir.join("src");
    let proto = dir.join("proto");
    let bin = dir.join("bin");
    copy_files(&go_files, &src)?;
    copy_files(&proto_files, &proto)?;
    std::fs::create_dir_all(&bin)?;
    let go = |args: &[&str]| {
        let mut command = Command::new("go");
        command
            .args(args)
            .current_dir(&src)
            .env("GOWORK", "off")
            .env("GOFLAGS", "-mod=readonly");
        command
    };
    // The generators at the versions go.mod pins (its tool directives).
    run_step(
        logs,
        "go install tool (protoc-gen-go, protoc-gen-connect-go)",
        go(&["install", "tool"]).env("GOBIN", &bin),
        GO_TIMEOUT,
    )?
    .check()?;
    let buf = install_node(logs)?
        .join("node_modules")
        .join(".bin")
        .join("buf");
    // Our google/api copies are compiled with the library's schema but never generated: their
    // Go packages are genproto's, whose registered types the generated code uses (a second
    // registration of the same files would panic at start).
    let mut options = vec![format!("module={GO_MODULE}")];
    for (file, package) in [
        (
            "google/api/annotations.proto",
            "google.golang.org/genproto/googleapis/api/annotations",
        ),
        (
            "google/api/http.proto",
            "google.golang.org/genproto/googleapis/api/annotations",
        ),
        (
            "google/api/httpbody.proto",
            "google.golang.org/genproto/googleapis/api/httpbody",
        ),
    ] {
        options.push(format!("M{file}={package}"));
    }
    let plugin = |name: &str| {
        json!({
            "local": bin.join(name).to_string_lossy(),
            "out": src.to_string_lossy(),
            "opt": options,
        })
    };
    let template = json!({
        "version": "v2",
        "plugins": [plugin("protoc-gen-go"), plugin("protoc-gen-connect-go")],
    });
    run_step(
        logs,
        "buf generate (protoc-gen-go, protoc-gen-connect-go)",
        Command::new(&buf)
            .args(["generate", "--template", &template.to_string(), "--path"])
            .arg(PROTO_FILE)
            .env("BUF_CACHE_DIR", tools_dir().join("buf-cache"))
            // The copy's directory, outside the repository: buf finds no buf.yaml above it.
            .current_dir(&proto),
        GO_TIMEOUT,
    )?
    .check()?;
    let unformatted = run_step(
        logs,
        "gofmt -l",
        Command::new("gofmt")
            .arg("-l")
            .arg("main.go")
            .current_dir(&src),
        GO_TIMEOUT,
    )?
    .check()?;
    if !unformatted.stdout.trim().is_empty() {
        bail!(
            "transcoding/go is not gofmt-formatted: {}",
            unformatted.stdout.trim()
        );
    }
    run_step(logs, "go vet", &mut go(&["vet", "./..."]), GO_TIMEOUT)?.check()?;
    run_step(
        logs,
        "go build vanguard-library",
        &mut go(&["build", "-o", &binary.to_string_lossy(), "."]),
        GO_TIMEOUT,
    )?
    .check()?;
    std::fs::write(&stamp, "")?;
    Ok(binary)
}

/// Builds `library-server` (debug, in the shared target directory).
fn build_switchboard(logs: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "-p",
        "switchboard-transcoding",
        "--bin",
        "library-server",
    ]);
    run_step(
        logs,
        "cargo build -p switchboard-transcoding",
        command
            .arg("--target-dir")
            .arg(target_dir())
            .current_dir(workspace_root()),
        BUILD_TIMEOUT,
    )?
    .check()?;
    Ok(target_dir().join("debug").join("library-server"))
}

/// Validates `library-server --openapi` with openapi-spec-validator (PyPI, pinned in
/// `transcoding/requirements.txt`), and a copy broken on purpose, which must be refused (so a
/// validator that accepts anything fails the suite).
fn check_openapi(logs: &Path, work: &Path, library_server: &Path) -> Result<()> {
    let started = Instant::now();
    let python = crate::peers::virtualenv(
        logs,
        "openapi-pyenv",
        &workspace_root()
            .join("transcoding")
            .join("requirements.txt"),
        "import openapi_spec_validator",
        "openapi-spec-validator",
    )?;
    let printed = run_step(
        logs,
        "library-server --openapi",
        Command::new(library_server).arg("--openapi"),
        BUILD_TIMEOUT,
    )?;
    let printed = printed.check()?;
    let document: Value =
        serde_json::from_str(&printed.stdout).context("the OpenAPI document is not JSON")?;
    let file = work.join("library.openapi.json");
    std::fs::write(&file, serde_json::to_string_pretty(&document)? + "\n")?;
    let mut broken = document.clone();
    if let Some(paths) = broken.get_mut("paths").and_then(Value::as_object_mut) {
        for operations in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in operations.values_mut() {
                operation["responses"] = json!("none");
            }
        }
    }
    let broken_file = work.join("library.openapi.broken.json");
    std::fs::write(&broken_file, serde_json::to_string(&broken)?)?;
    let validate = |path: &Path, label: &str| {
        run_step(
            logs,
            label,
            Command::new(&python)
                .args(["-m", "openapi_spec_validator"])
                .arg(path),
            BUILD_TIMEOUT,
        )
    };
    validate(&file, "openapi-spec-validator")?.check()?;
    if validate(&broken_file, "openapi-spec-validator (broken copy)")?.success() {
        bail!("openapi-spec-validator accepted a document with no responses: it checks nothing");
    }
    let operations: usize = document["paths"]
        .as_object()
        .map(|paths| {
            paths
                .values()
                .filter_map(Value::as_object)
                .map(|o| o.len())
                .sum()
        })
        .unwrap_or(0);
    eprintln!(
        "openapi: {} valid ({operations} operations, OpenAPI {}), a broken copy refused, in {:.1}s",
        file.display(),
        document["openapi"].as_str().unwrap_or("?"),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A started server and its port.
struct Server {
    process: Process,
    port: u16,
}

/// Starts `binary --port 0` and reads its port from the `... listening on http://ADDR` line.
fn start(logs: &Path, name: &str, binary: &Path) -> Result<Server> {
    let (process, port) = Process::start(
        logs,
        name,
        Command::new(binary).args(["--port", "0"]),
        Banner::Stdout,
        SERVER_START_TIMEOUT,
        |line| {
            let addr = line.split("http://").nth(1)?.split_whitespace().next()?;
            eprintln!("    {line}");
            addr.rsplit(':').next()?.parse::<u16>().ok()
        },
    )?;
    Ok(Server { process, port })
}

/// The handlers' RPC tests against the server on `port` (`LIBRARY_URL`).
fn handler_tests(logs: &Path, label: &str, port: u16) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_step(
        logs,
        &format!("handler rules over Connect against {label}"),
        Command::new(cargo)
            .args([
                "test",
                "-p",
                "switchboard-transcoding",
                "--test",
                "handlers",
            ])
            .arg("--target-dir")
            .arg(target_dir())
            .env("LIBRARY_URL", format!("http://127.0.0.1:{port}"))
            .current_dir(workspace_root()),
        BUILD_TIMEOUT,
    )?
    .check()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running.

/// Which servers get the corpus.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    Both,
    Vanguard,
    Switchboard,
}

struct Options {
    only: Only,
    case: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut options = Options {
        only: Only::Both,
        case: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => {
                options.only = match args.next().map(String::as_str) {
                    Some("vanguard") => Only::Vanguard,
                    Some("switchboard") => Only::Switchboard,
                    other => bail!("--only takes vanguard or switchboard, not {other:?}"),
                }
            }
            "--case" => {
                options.case = Some(args.next().context("--case needs a TEXT")?.clone());
            }
            other => bail!(
                "unknown argument {other:?}: cargo xtask transcoding [--only vanguard|switchboard] [--case TEXT]"
            ),
        }
    }
    Ok(options)
}

/// Entry point.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let options = parse_args(args)?;
    let mut cases = load_corpus(&corpus_path())?;
    if let Some(text) = &options.case {
        cases.retain(|case| case.name.contains(text.as_str()));
        if cases.is_empty() {
            bail!("no case's name contains {text:?}");
        }
    }
    let work = target_dir().join("transcoding");
    let logs = work.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    eprintln!("==> transcoding: logs in {}", logs.display());

    let vanguard = if options.only != Only::Switchboard {
        let binary = build_vanguard(&logs)?;
        Some(start(&logs, "vanguard-library", &binary)?)
    } else {
        None
    };
    let switchboard = if options.only != Only::Vanguard {
        let binary = build_switchboard(&logs)?;
        // The OpenAPI document switchboard-build wrote for the annotated methods, checked by
        // a validator no one here wrote.
        check_openapi(&logs, &work, &binary)?;
        Some(start(&logs, "library-server", &binary)?)
    } else {
        None
    };
    let built = started.elapsed();
    if let Some(server) = &vanguard {
        // The README's rules hold for the Go handlers too (over Connect, through vanguard).
        handler_tests(&logs, "vanguard-library", server.port)?;
    }

    let corpus_started = Instant::now();
    let answers: Vec<(Option<Reply>, Option<Reply>)> = cases
        .iter()
        .map(|case| {
            let ask = |server: &Option<Server>| server.as_ref().map(|s| exchange(case, s.port));
            (ask(&vanguard), ask(&switchboard))
        })
        .collect();
    let corpus_time = corpus_started.elapsed();

    for (label, second) in [("vanguard", false), ("switchboard", true)] {
        let recorded: Vec<Value> = cases
            .iter()
            .zip(&answers)
            .filter_map(|(case, (v, s))| {
                let reply = if second { s } else { v };
                reply.as_ref().map(|reply| reply.to_json(case))
            })
            .collect();
        if recorded.is_empty() {
            continue;
        }
        let file = work.join(format!("{label}-responses.json"));
        std::fs::write(&file, serde_json::to_string_pretty(&recorded)? + "\n")?;
        eprintln!("==> {label}'s answers: {}", file.display());
    }

    let outcome = match options.only {
        Only::Both => compare_all(&cases, &answers),
        Only::Vanguard => check_vanguard_alone(&cases, &answers),
        Only::Switchboard => Ok(()),
    };
    if outcome.is_err() {
        for server in [&vanguard, &switchboard].into_iter().flatten() {
            print_logs(&server.process.logs);
        }
    }
    eprintln!(
        "transcoding took {:.1}s ({:.1}s building and starting, {:.2}s for {} cases)",
        started.elapsed().as_secs_f64(),
        built.as_secs_f64(),
        corpus_time.as_secs_f64(),
        cases.len()
    );
    drop(vanguard);
    drop(switchboard);
    outcome
}

/// With vanguard alone: every status as the corpus records it.
fn check_vanguard_alone(cases: &[Case], answers: &[(Option<Reply>, Option<Reply>)]) -> Result<()> {
    let mut failed = 0;
    for (case, (vanguard, _)) in cases.iter().zip(answers) {
        let reply = vanguard.as_ref().expect("vanguard answered");
        if let Some(error) = &reply.error {
            failed += 1;
            println!("FAIL {}: vanguard: {error}", case.name);
        } else if reply.status != case.status {
            failed += 1;
            println!(
                "FAIL {}: vanguard answered {} ({}), the corpus records {}",
                case.name,
                reply.status,
                show_body(reply),
                case.status
            );
        }
    }
    print_categories(cases);
    println!(
        "vanguard alone: {} cases, {} as recorded, {failed} not",
        cases.len(),
        cases.len() - failed
    );
    if failed > 0 {
        bail!("{failed} of vanguard's statuses differ from the corpus");
    }
    Ok(())
}

/// Compares every pair of answers and prints the table.
fn compare_all(cases: &[Case], answers: &[(Option<Reply>, Option<Reply>)]) -> Result<()> {
    let (mut matched, mut known, mut failed) = (0, 0, 0);
    let mut per_category: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for (case, (vanguard, switchboard)) in cases.iter().zip(answers) {
        let vanguard = vanguard.as_ref().expect("vanguard answered");
        let switchboard = switchboard.as_ref().expect("switchboard answered");
        let counts = per_category.entry(case.category()).or_default();
        match judge(case, vanguard, switchboard) {
            Verdict::Matched => {
                matched += 1;
                counts[0] += 1;
            }
            Verdict::Known => {
                known += 1;
                counts[1] += 1;
            }
            Verdict::Failed(problems) => {
                failed += 1;
                counts[2] += 1;
                println!("FAIL {} ({} {})", case.name, case.method, case.path);
                for problem in problems {
                    println!("     {problem}");
                }
            }
        }
    }
    println!();
    let width = per_category
        .keys()
        .map(|c| c.len())
        .max()
        .unwrap_or(0)
        .max("category".len());
    println!(
        "{:width$}  {:>5}  {:>7}  {:>5}  {:>6}",
        "category", "cases", "matched", "known", "failed"
    );
    println!("{:-<width$}  -----  -------  -----  ------", "");
    for (category, [m, k, f]) in &per_category {
        println!(
            "{category:width$}  {:>5}  {m:>7}  {k:>5}  {f:>6}",
            m + k + f
        );
    }
    println!("{:-<width$}  -----  -------  -----  ------", "");
    println!(
        "{:width$}  {:>5}  {matched:>7}  {known:>5}  {failed:>6}",
        "all",
        cases.len()
    );
    println!();
    println!("transcoding: {} passed, {failed} failed", matched + known);
    if failed > 0 {
        bail!("{failed} of {} transcoding cases failed", cases.len());
    }
    Ok(())
}

/// The corpus's size by category.
fn print_categories(cases: &[Case]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for case in cases {
        *counts.entry(case.category()).or_default() += 1;
    }
    let line: Vec<String> = counts.iter().map(|(c, n)| format!("{c} {n}")).collect();
    println!("corpus: {}", line.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(compare: Compare) -> Case {
        Case {
            name: "c/x".into(),
            method: "GET".into(),
            path: "/v1/x".into(),
            headers: vec![],
            body: None,
            compare,
            status: 200,
            difference: None,
            switchboard_status: None,
        }
    }

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            error: None,
        }
    }

    #[test]
    fn answers_parse_with_a_length_chunked_or_to_the_end() {
        let r = parse_reply(
            b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 3\r\n\r\nabcdef",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
        assert_eq!(r.header("content-type"), Some("a/b"));
        let r = parse_reply(
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"abcde"[..]));
        let r = parse_reply(b"HTTP/1.1 404 Not Found\r\n\r\nrest", false).unwrap();
        assert_eq!(r.body, b"rest");
        let r = parse_reply(b"HTTP/1.1 405 X\r\nContent-Length: 5\r\n\r\n", true).unwrap();
        assert!(r.body.is_empty());
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", false).is_err());
    }

    #[test]
    fn requests_are_written_as_the_corpus_says() {
        let mut c = case(Compare::Full);
        c.path = "/v1/a%2Fb?x=%zz".into();
        c.headers = vec![("Content-Type".into(), "text/plain".into())];
        c.body = Some(b"hi".to_vec());
        let text = String::from_utf8(request_bytes(&c, 7)).unwrap();
        assert_eq!(
            text,
            "GET /v1/a%2Fb?x=%zz HTTP/1.1\r\nHost: 127.0.0.1:7\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
    }

    #[test]
    fn json_is_compared_as_values_and_allow_as_a_set() {
        let c = case(Compare::Full);
        let json = [("content-type", "application/json")];
        let a = reply(200, &json, r#"{"a":1, "b":[1,2]}"#);
        let b = reply(200, &json, r#"{"b":[1,2],"a":1}"#);
        assert!(differences(&c, &a, &b).is_empty());
        let b = reply(200, &json, r#"{"b":[2,1],"a":1}"#);
        assert_eq!(differences(&c, &a, &b).len(), 1);
        let a = reply(405, &[("allow", "GET,DELETE")], "");
        let b = reply(405, &[("allow", "DELETE, GET")], "");
        assert!(differences(&c, &a, &b).is_empty());
        let b = reply(405, &[("allow", "GET")], "");
        assert_eq!(differences(&c, &a, &b).len(), 1);
    }

    #[test]
    fn json_numbers_compare_as_numbers() {
        let value = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert!(same_json(&value(r#"{"a":[3]}"#), &value(r#"{"a":[3.0]}"#)));
        assert!(same_json(&value("1e2"), &value("100")));
        assert!(!same_json(&value("3"), &value("3.5")));
        assert!(!same_json(&value("3"), &value(r#""3""#)));
        assert!(!same_json(
            &value("9007199254740993"),
            &value("9007199254740992")
        ));
        assert!(!same_json(&value(r#"{"a":1}"#), &value(r#"{"a":1,"b":1}"#)));
    }

    #[test]
    fn content_types_differ_in_anything_but_the_media_types_case() {
        let c = case(Compare::Full);
        let a = reply(
            200,
            &[("content-type", "Application/JSON; charset=utf-8")],
            "",
        );
        let b = reply(
            200,
            &[("content-type", "application/json; charset=utf-8")],
            "",
        );
        assert!(differences(&c, &a, &b).is_empty());
        let b = reply(
            200,
            &[("content-type", "application/json;charset=utf-8")],
            "",
        );
        assert_eq!(differences(&c, &a, &b).len(), 1);
        let b = reply(200, &[], "");
        assert_eq!(differences(&c, &a, &b).len(), 1);
    }

    #[test]
    fn status_and_code_ignore_the_wording() {
        let c = case(Compare::StatusCode);
        let json = [("content-type", "application/json")];
        let a = reply(400, &json, r#"{"code":3,"message":"Go says"}"#);
        let b = reply(400, &json, r#"{"code":3,"message":"Rust says"}"#);
        assert!(differences(&c, &a, &b).is_empty());
        let b = reply(400, &json, r#"{"code":2,"message":"Rust says"}"#);
        assert_eq!(differences(&c, &a, &b).len(), 1);
        assert_eq!(differences(&case(Compare::Full), &a, &b).len(), 1);
    }

    #[test]
    fn no_answer_is_an_answer_that_differs() {
        let c = case(Compare::StatusCode);
        let answered = reply(400, &[], "x");
        let mut silent = reply(0, &[], "");
        silent.error = Some("no answer: no end of headers".into());
        let found = differences(&c, &answered, &silent);
        assert!(
            found.iter().any(|d| d.contains("no end of headers")),
            "{found:?}"
        );
        assert!(differences(&c, &silent, &silent.clone()).is_empty());
    }

    #[test]
    fn listed_differences_count_apart_and_go_stale() {
        let mut c = case(Compare::Full);
        let same = reply(200, &[], "x");
        let other = reply(400, &[], "x");
        assert!(matches!(judge(&c, &same, &same), Verdict::Matched));
        assert!(matches!(judge(&c, &same, &other), Verdict::Failed(_)));
        c.difference = Some("we answer 400 because the spec says so".into());
        assert!(matches!(judge(&c, &same, &other), Verdict::Known));
        assert!(matches!(judge(&c, &same, &same), Verdict::Failed(_)));
        c.switchboard_status = Some(500);
        assert!(matches!(judge(&c, &same, &other), Verdict::Failed(_)));
        // vanguard drifting from the recorded status fails even where the answers agree.
        let c = case(Compare::Full);
        let drifted = reply(201, &[], "x");
        assert!(matches!(judge(&c, &drifted, &drifted), Verdict::Failed(_)));
    }

    #[test]
    fn the_corpus_parses_and_names_are_unique() {
        let cases = load_corpus(&corpus_path()).unwrap();
        assert!(cases.len() >= 170, "{} cases", cases.len());
        let error = parse_corpus(
            r#"{"cases":[{"name":"a/b","method":"GET","path":"/x","status":200,"bogus":1}]}"#,
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("bogus"), "{error:#}");
        let error = parse_corpus(
            r#"{"cases":[{"name":"a/b","method":"GET","path":"/x","status":200},{"name":"a/b","method":"GET","path":"/y","status":200}]}"#,
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("two cases"), "{error:#}");
    }
}
