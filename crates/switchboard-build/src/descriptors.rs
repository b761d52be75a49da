//! Encoded file descriptors, kept byte for byte so custom options survive.
//!
//! prost drops unknown fields when it decodes, and custom options (`extend
//! google.protobuf.MethodOptions`) are unknown fields of the options messages. The set embedded
//! in generated code is therefore assembled from the files' original encodings: each file is
//! decoded only to learn its name, package and imports.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use prost::Message as _;
use prost_types::FileDescriptorProto;

/// `FileDescriptorSet.file`.
const SET_FILE: u32 = 1;
/// `FileDescriptorProto.source_code_info`.
const FILE_SOURCE_CODE_INFO: u32 = 9;
/// `CodeGeneratorRequest.proto_file`.
const REQUEST_PROTO_FILE: u32 = 15;

/// One `.proto` file: its encoding (without source info) and what it imports.
#[derive(Clone, Debug)]
pub(crate) struct RawFile {
    pub(crate) name: String,
    pub(crate) package: String,
    pub(crate) dependencies: Vec<String>,
    pub(crate) encoded: Vec<u8>,
}

/// Every file known to a code generation run, by name.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileSet {
    files: Vec<RawFile>,
    by_name: HashMap<String, usize>,
}

impl FileSet {
    /// Reads an encoded `FileDescriptorSet`.
    pub(crate) fn from_encoded_set(bytes: &[u8]) -> anyhow::Result<Self> {
        Self::from_files(repeated_field(bytes, SET_FILE)?)
    }

    /// Reads the `proto_file` entries of an encoded `CodeGeneratorRequest`.
    pub(crate) fn from_encoded_request(bytes: &[u8]) -> anyhow::Result<Self> {
        Self::from_files(repeated_field(bytes, REQUEST_PROTO_FILE)?)
    }

    /// Reads decoded files (custom options on them are already lost).
    pub(crate) fn from_protos<'a>(
        files: impl IntoIterator<Item = &'a FileDescriptorProto>,
    ) -> anyhow::Result<Self> {
        let encoded: Vec<Vec<u8>> = files.into_iter().map(|f| f.encode_to_vec()).collect();
        Self::from_files(encoded.iter().map(Vec::as_slice))
    }

    fn from_files<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> anyhow::Result<Self> {
        let mut set = FileSet::default();
        for bytes in files {
            let file = FileDescriptorProto::decode(bytes).context("invalid FileDescriptorProto")?;
            let name = file.name().to_owned();
            if set.by_name.contains_key(&name) {
                continue;
            }
            set.by_name.insert(name.clone(), set.files.len());
            set.files.push(RawFile {
                name,
                package: file.package().to_owned(),
                dependencies: file.dependency.clone(),
                encoded: strip_field(bytes, FILE_SOURCE_CODE_INFO)?,
            });
        }
        Ok(set)
    }

    /// The files of `package` and everything they import, transitively, dependencies first.
    pub(crate) fn package_closure(&self, package: &str) -> anyhow::Result<Vec<&RawFile>> {
        let roots = self.files.iter().filter(|f| f.package == package);
        self.closure(roots.map(|f| f.name.as_str()))
    }

    /// The named files and everything they import, transitively, dependencies first.
    pub(crate) fn closure<'a>(
        &self,
        roots: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<Vec<&RawFile>> {
        let mut order = Vec::new();
        let mut done = HashSet::new();
        for root in roots {
            self.visit(root, &mut done, &mut Vec::new(), &mut order)?;
        }
        Ok(order.into_iter().map(|i| &self.files[i]).collect())
    }

    fn visit(
        &self,
        name: &str,
        done: &mut HashSet<usize>,
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> anyhow::Result<()> {
        let Some(&index) = self.by_name.get(name) else {
            bail!("descriptor of imported file `{name}` is missing");
        };
        if done.contains(&index) {
            return Ok(());
        }
        if stack.contains(&index) {
            bail!("import cycle through `{name}`");
        }
        stack.push(index);
        for dependency in &self.files[index].dependencies {
            self.visit(dependency, done, stack, order)?;
        }
        stack.pop();
        done.insert(index);
        order.push(index);
        Ok(())
    }

    /// The encoded `FileDescriptorSet` of `package`'s files and their imports.
    pub(crate) fn encode_package_set(&self, package: &str) -> anyhow::Result<Vec<u8>> {
        let files = self.package_closure(package)?;
        if files.is_empty() {
            bail!("no file descriptor for package `{package}`");
        }
        Ok(encode_set(files))
    }
}

/// Encodes files as a `FileDescriptorSet`.
pub(crate) fn encode_set<'a>(files: impl IntoIterator<Item = &'a RawFile>) -> Vec<u8> {
    let mut out = Vec::new();
    for file in files {
        write_varint(&mut out, u64::from((SET_FILE << 3) | 2));
        write_varint(&mut out, file.encoded.len() as u64);
        out.extend_from_slice(&file.encoded);
    }
    out
}

/// Renders bytes as a Rust byte-string literal, `b"..."`.
pub(crate) fn byte_string_literal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + 3);
    out.push_str("b\"");
    for &byte in bytes {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// One field of an encoded message: its number and the bytes it spans (tag included).
struct Field<'a> {
    number: u32,
    raw: &'a [u8],
    /// The payload of a length-delimited field.
    payload: Option<&'a [u8]>,
}

/// Splits an encoded message into its top-level fields.
fn fields(mut bytes: &[u8]) -> anyhow::Result<Vec<Field<'_>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let start = bytes;
        let key = read_varint(&mut bytes)?;
        let number = u32::try_from(key >> 3).context("field number out of range")?;
        let payload = skip_value(&mut bytes, number, key & 7)?;
        let raw = &start[..start.len() - bytes.len()];
        out.push(Field {
            number,
            raw,
            payload,
        });
    }
    Ok(out)
}

/// Skips one field value of `wire_type`, returning the payload of a length-delimited one.
fn skip_value<'a>(
    bytes: &mut &'a [u8],
    number: u32,
    wire_type: u64,
) -> anyhow::Result<Option<&'a [u8]>> {
    match wire_type {
        0 => {
            read_varint(bytes)?;
        }
        1 => take(bytes, 8)?,
        5 => take(bytes, 4)?,
        2 => {
            let len = usize::try_from(read_varint(bytes)?).context("length out of range")?;
            let payload = bytes.get(..len).context("truncated message")?;
            *bytes = &bytes[len..];
            return Ok(Some(payload));
        }
        3 => loop {
            let key = read_varint(bytes)?;
            let inner = u32::try_from(key >> 3).context("field number out of range")?;
            if key & 7 == 4 {
                if inner != number {
                    bail!("mismatched end of group");
                }
                break;
            }
            skip_value(bytes, inner, key & 7)?;
        },
        other => bail!("invalid wire type {other}"),
    }
    Ok(None)
}

fn take(bytes: &mut &[u8], len: usize) -> anyhow::Result<()> {
    if bytes.len() < len {
        bail!("truncated message");
    }
    *bytes = &bytes[len..];
    Ok(())
}

/// The payloads of every occurrence of length-delimited field `number`.
fn repeated_field(bytes: &[u8], number: u32) -> anyhow::Result<Vec<&[u8]>> {
    Ok(fields(bytes)?
        .into_iter()
        .filter(|f| f.number == number)
        .filter_map(|f| f.payload)
        .collect())
}

/// The message without any occurrence of field `number`.
fn strip_field(bytes: &[u8], number: u32) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    for field in fields(bytes)? {
        if field.number != number {
            out.extend_from_slice(field.raw);
        }
    }
    Ok(out)
}

fn read_varint(bytes: &mut &[u8]) -> anyhow::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().context("truncated varint")?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("varint too long")
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads back a literal written by [`byte_string_literal`].
#[cfg(test)]
pub(crate) fn unescape_byte_literal(literal: &str) -> Vec<u8> {
    let body = literal
        .strip_prefix("b\"")
        .and_then(|l| l.strip_suffix('"'))
        .expect("a byte-string literal");
    let mut decoded = Vec::new();
    let mut bytes = body.bytes();
    while let Some(c) = bytes.next() {
        if c != b'\\' {
            decoded.push(c);
            continue;
        }
        match bytes.next().expect("complete escape") {
            b'n' => decoded.push(b'\n'),
            b'r' => decoded.push(b'\r'),
            b't' => decoded.push(b'\t'),
            b'"' => decoded.push(b'"'),
            b'\\' => decoded.push(b'\\'),
            b'x' => {
                let hex = [bytes.next().unwrap(), bytes.next().unwrap()];
                let hex = std::str::from_utf8(&hex).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
            }
            other => panic!("unexpected escape {other}"),
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::FileDescriptorSet;

    fn file(name: &str, package: &str, deps: &[&str]) -> FileDescriptorProto {
        FileDescriptorProto {
            name: Some(name.into()),
            package: Some(package.into()),
            dependency: deps.iter().map(|d| (*d).to_owned()).collect(),
            source_code_info: Some(prost_types::SourceCodeInfo::default()),
            ..Default::default()
        }
    }

    #[test]
    fn closure_is_topological_and_filtered() {
        // Listed out of order on purpose: importers before what they import.
        let files = [
            file("a/service.proto", "a", &["b/types.proto", "a/more.proto"]),
            file("a/more.proto", "a", &["c/base.proto"]),
            file("b/types.proto", "b", &["c/base.proto"]),
            file("c/base.proto", "c", &[]),
            file("unrelated.proto", "d", &[]),
        ];
        let set = FileSet::from_protos(&files).unwrap();
        let names: Vec<_> = set
            .package_closure("a")
            .unwrap()
            .into_iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "c/base.proto",
                "b/types.proto",
                "a/more.proto",
                "a/service.proto"
            ]
        );
        let decoded = FileDescriptorSet::decode(&*set.encode_package_set("a").unwrap()).unwrap();
        assert_eq!(decoded.file.len(), 4);
        assert!(decoded.file.iter().all(|f| f.source_code_info.is_none()));
    }

    #[test]
    fn missing_import_and_cycles_are_errors() {
        let set = FileSet::from_protos(&[file("x.proto", "x", &["y.proto"])]).unwrap();
        assert!(set.package_closure("x").is_err());
        let set = FileSet::from_protos(&[
            file("x.proto", "x", &["y.proto"]),
            file("y.proto", "y", &["x.proto"]),
        ])
        .unwrap();
        assert!(set.package_closure("x").is_err());
        assert!(set.encode_package_set("nothing").is_err());
    }

    #[test]
    fn unknown_fields_survive() {
        // A file whose options carry an extension prost does not know: field 50001.
        let mut options = Vec::new();
        write_varint(&mut options, (50001 << 3) | 2);
        write_varint(&mut options, 3);
        options.extend_from_slice(b"abc");
        let mut encoded = file("x.proto", "x", &[]).encode_to_vec();
        write_varint(&mut encoded, (8 << 3) | 2); // FileDescriptorProto.options
        write_varint(&mut encoded, options.len() as u64);
        encoded.extend_from_slice(&options);
        let mut set_bytes = Vec::new();
        write_varint(&mut set_bytes, (1 << 3) | 2);
        write_varint(&mut set_bytes, encoded.len() as u64);
        set_bytes.extend_from_slice(&encoded);

        let set = FileSet::from_encoded_set(&set_bytes).unwrap();
        let out = set.encode_package_set("x").unwrap();
        assert!(out.windows(3).any(|w| w == b"abc"));
    }

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            write_varint(&mut buf, value);
            assert_eq!(read_varint(&mut buf.as_slice()).unwrap(), value);
        }
        assert!(read_varint(&mut [0x80u8].as_slice()).is_err());
    }

    #[test]
    fn byte_literal_escapes() {
        let bytes: Vec<u8> = (0..=255).collect();
        let literal = byte_string_literal(&bytes);
        assert!(literal.starts_with("b\"") && literal.ends_with('"'));
        assert!(!literal.contains('\n'));
        assert_eq!(unescape_byte_literal(&literal), bytes);
    }
}
