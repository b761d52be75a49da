//! Generates `grpc.testing` (TestService, UnimplementedService and their messages) from the
//! pinned `google.golang.org/grpc` Go module, fetched into the Go module cache (outside the
//! repository) with `go mod download`. Nothing from that module is committed here.
//!
//! grpc-go ships the interop schema as generated Go code only (`interop/grpc_testing/*.pb.go`;
//! the `.proto` sources live in grpc/grpc-proto, which is no Go module). Each generated file
//! embeds its `FileDescriptorProto` as a Go literal (`file_grpc_testing_<name>_proto_rawDesc`):
//! this script decodes those literals, checks them, and hands the descriptors to
//! switchboard-build's code generator as a `CodeGeneratorRequest`, exactly as protoc would.
//! The descriptors are therefore the very ones grpc-go's interop client and server were built
//! from.
//!
//! Set `SWITCHBOARD_INTEROP_GRPC_DIR` to a grpc-go module directory to skip the download.
//! The module directory is also baked into the binaries (`SWITCHBOARD_INTEROP_GRPC_DIR` at
//! compile time), which read grpc's test certificates from its `testdata/` at run time.

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message as _;
use prost_types::FileDescriptorProto;
use prost_types::compiler::CodeGeneratorRequest;

/// The grpc-go release the descriptors and test certificates come from. `cargo xtask interop`
/// runs grpc-go's interop client and server at the same version (pinned in
/// `xtask/go-tools/go.mod`; an xtask test keeps the two in step).
const GRPC_MODULE: &str = "google.golang.org/grpc@v1.84.0";

/// The schema files, dependencies first.
const FILES: [&str; 3] = ["empty", "messages", "test"];

type BoxError = Box<dyn std::error::Error>;

fn grpc_dir() -> Result<PathBuf, BoxError> {
    println!("cargo:rerun-if-env-changed=SWITCHBOARD_INTEROP_GRPC_DIR");
    if let Some(dir) = std::env::var_os("SWITCHBOARD_INTEROP_GRPC_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let output = Command::new("go")
        .args(["mod", "download", "-json", GRPC_MODULE])
        .env("GOFLAGS", "-mod=mod")
        .output()
        .map_err(|e| format!("running `go mod download` (is Go installed?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "go mod download {GRPC_MODULE} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let dir = info["Dir"]
        .as_str()
        .ok_or("go mod download printed no Dir")?;
    Ok(PathBuf::from(dir))
}

/// Reads the `FileDescriptorProto` embedded in `grpc_testing/<name>.pb.go`.
fn descriptor(dir: &Path, name: &str) -> Result<FileDescriptorProto, BoxError> {
    let path = dir.join(format!("interop/grpc_testing/{name}.pb.go"));
    println!("cargo:rerun-if-changed={}", path.display());
    let source =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let symbol = format!("file_grpc_testing_{name}_proto_rawDesc");
    let bytes = raw_descriptor(&source, &symbol)
        .map_err(|e| format!("{}: {symbol}: {e}", path.display()))?;
    let file = FileDescriptorProto::decode(&bytes[..]).map_err(|e| {
        format!(
            "{}: {symbol} is not a FileDescriptorProto: {e}",
            path.display()
        )
    })?;
    let expected = format!("grpc/testing/{name}.proto");
    if file.name() != expected || file.package() != "grpc.testing" {
        return Err(format!(
            "{}: {symbol} describes {:?} (package {:?}), expected {expected:?}",
            path.display(),
            file.name(),
            file.package()
        )
        .into());
    }
    Ok(file)
}

/// The bytes of the Go declaration `const <symbol> = "..." + "..."` (protoc-gen-go 1.36 and
/// later) or `var <symbol> = []byte{0x0a, ...}` (earlier releases).
fn raw_descriptor(source: &str, symbol: &str) -> Result<Vec<u8>, String> {
    let start = [format!("const {symbol} = "), format!("var {symbol} = ")]
        .iter()
        .find_map(|decl| source.find(decl.as_str()).map(|at| at + decl.len()))
        .ok_or("declaration not found")?;
    let rest = &source[start..];
    if let Some(body) = rest.strip_prefix("[]byte{") {
        let end = body.find('}').ok_or("unterminated []byte literal")?;
        return body[..end]
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                let hex = item.strip_prefix("0x").ok_or("expected 0x.. bytes")?;
                u8::from_str_radix(hex, 16).map_err(|e| format!("byte {item:?}: {e}"))
            })
            .collect();
    }
    // A sum of interpreted string literals, ending at the first token that is neither.
    let mut out = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let mut expect_literal = true;
    while let Some(&(_, c)) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                chars.next();
            }
            '+' if !expect_literal => {
                chars.next();
                expect_literal = true;
            }
            '"' if expect_literal => {
                chars.next();
                decode_go_string(&mut chars, &mut out)?;
                expect_literal = false;
            }
            _ if !expect_literal => break,
            other => return Err(format!("unexpected {other:?} in the string sum")),
        }
    }
    if out.is_empty() {
        return Err("empty descriptor".into());
    }
    Ok(out)
}

/// Decodes the rest of a Go interpreted string literal (after its opening quote) into `out`.
fn decode_go_string(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut next = || chars.next().map(|(_, c)| c);
    loop {
        let c = next().ok_or("unterminated string literal")?;
        match c {
            '"' => return Ok(()),
            '\n' => return Err("newline in a string literal".into()),
            '\\' => {
                let escape = next().ok_or("unterminated escape")?;
                let simple = match escape {
                    'a' => Some(0x07),
                    'b' => Some(0x08),
                    'f' => Some(0x0c),
                    'n' => Some(b'\n'),
                    'r' => Some(b'\r'),
                    't' => Some(b'\t'),
                    'v' => Some(0x0b),
                    '\\' => Some(b'\\'),
                    '\'' => Some(b'\''),
                    '"' => Some(b'"'),
                    _ => None,
                };
                if let Some(byte) = simple {
                    out.push(byte);
                    continue;
                }
                let (digits, radix, is_byte) = match escape {
                    'x' => (2, 16, true),
                    'u' => (4, 16, false),
                    'U' => (8, 16, false),
                    '0'..='7' => (2, 8, true),
                    other => return Err(format!("unknown escape \\{other}")),
                };
                let mut text = String::new();
                if escape.is_ascii_digit() {
                    text.push(escape);
                }
                for _ in 0..digits {
                    text.push(next().ok_or("unterminated escape")?);
                }
                let value = u32::from_str_radix(&text, radix)
                    .map_err(|e| format!("escape \\{escape}{text}: {e}"))?;
                if is_byte {
                    out.push(u8::try_from(value).map_err(|_| format!("escape {text} > 255"))?);
                } else {
                    let c =
                        char::from_u32(value).ok_or(format!("invalid code point {value:#x}"))?;
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

fn main() -> Result<(), BoxError> {
    let dir = grpc_dir()?;
    println!(
        "cargo:rustc-env=SWITCHBOARD_INTEROP_GRPC_DIR={}",
        dir.display()
    );
    let files = FILES
        .iter()
        .map(|name| descriptor(&dir, name))
        .collect::<Result<Vec<_>, _>>()?;
    let request = CodeGeneratorRequest {
        file_to_generate: files.iter().map(|f| f.name().to_owned()).collect(),
        proto_file: files,
        ..Default::default()
    };
    let response =
        switchboard_build::plugin::generate_from_request_bytes(&request.encode_to_vec())?;
    if let Some(error) = response.error {
        return Err(format!("code generation failed: {error}").into());
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    for file in response.file {
        std::fs::write(out_dir.join(file.name()), file.content())?;
    }
    Ok(())
}
