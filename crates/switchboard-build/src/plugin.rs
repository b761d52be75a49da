//! Code generation as a `protoc` / `buf` plugin: `CodeGeneratorRequest` in,
//! `CodeGeneratorResponse` out. The `protoc-gen-switchboard` binary is a thin wrapper.

use std::collections::HashSet;

use anyhow::{Context as _, bail};
use prost::Message as _;
use prost_build::Module;
use prost_types::FileDescriptorProto;
use prost_types::compiler::code_generator_response::{Feature, File};
use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};

use crate::descriptors::FileSet;
use crate::{CodegenOptions, prost_config};

/// Options of a plugin run, from the request's parameter string.
///
/// ```
/// use switchboard_build::plugin::PluginOptions;
/// let options = PluginOptions::parse("extern_path=.acme.v1=::acme_proto::v1,client=false")?;
/// assert!(!options.client && options.server && options.messages);
/// assert_eq!(options.extern_paths, [(".acme.v1".to_owned(), "::acme_proto::v1".to_owned())]);
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginOptions {
    /// `extern_path=.proto.path=::rust::path` (repeatable): types under the proto path are not
    /// generated but referred to at the Rust path.
    pub extern_paths: Vec<(String, String)>,
    /// `messages=false`: generate only services; message types come from extern paths.
    pub messages: bool,
    /// `server=false`: no server traits.
    pub server: bool,
    /// `client=false`: no clients.
    pub client: bool,
}

impl Default for PluginOptions {
    fn default() -> Self {
        PluginOptions {
            extern_paths: Vec::new(),
            messages: true,
            server: true,
            client: true,
        }
    }
}

impl PluginOptions {
    /// Parses a comma-separated `key=value` parameter string (what `--switchboard_opt` or buf's
    /// `opt:` pass). Keys: `extern_path`, `messages`, `server`, `client`.
    pub fn parse(parameter: &str) -> anyhow::Result<Self> {
        let mut options = PluginOptions::default();
        for item in parameter
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (key, value) = item.split_once('=').unwrap_or((item, "true"));
            match key.trim() {
                "extern_path" => {
                    let Some((proto, rust)) = value.split_once('=') else {
                        bail!("`extern_path` takes `.proto.path=::rust::path`, got `{value}`");
                    };
                    options
                        .extern_paths
                        .push((proto.trim().to_owned(), rust.trim().to_owned()));
                }
                "messages" => options.messages = parse_bool(key, value)?,
                "server" => options.server = parse_bool(key, value)?,
                "client" => options.client = parse_bool(key, value)?,
                other => {
                    bail!("unknown option `{other}` (known: extern_path, messages, server, client)")
                }
            }
        }
        Ok(options)
    }

    fn codegen(&self) -> CodegenOptions {
        CodegenOptions {
            extern_paths: self.extern_paths.clone(),
            messages: self.messages,
            server: self.server,
            client: self.client,
        }
    }
}

fn parse_bool(key: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => bail!("`{key}` takes true or false, got `{other}`"),
    }
}

/// Runs the generator on an encoded `CodeGeneratorRequest`, taking options from its parameter.
///
/// This is what the plugin binary calls: reading the descriptors from the encoded request keeps
/// custom options (extensions of `google.protobuf.MethodOptions` and the like) in the embedded
/// descriptor sets, where [`generate_from_request`] loses them.
///
/// Errors in the request (bad parameter, missing imports) are reported in the response's `error`
/// field, as plugins should; `Err` means the bytes were not a request at all.
pub fn generate_from_request_bytes(bytes: &[u8]) -> anyhow::Result<CodeGeneratorResponse> {
    let request = CodeGeneratorRequest::decode(bytes).context("invalid CodeGeneratorRequest")?;
    let result = PluginOptions::parse(request.parameter()).and_then(|options| {
        let files = FileSet::from_encoded_request(bytes)?;
        generate(&request, files, &options)
    });
    Ok(respond(result))
}

/// Runs the generator on a decoded `CodeGeneratorRequest` (its parameter is ignored in favour
/// of `options`).
///
/// prost's decoded descriptors have dropped any custom options, so the descriptor sets embedded
/// in the output lack them; prefer [`generate_from_request_bytes`] when you have the bytes.
pub fn generate_from_request(
    request: CodeGeneratorRequest,
    options: &PluginOptions,
) -> anyhow::Result<CodeGeneratorResponse> {
    let result = FileSet::from_protos(&request.proto_file)
        .and_then(|files| generate(&request, files, options));
    Ok(respond(result))
}

fn respond(result: anyhow::Result<Vec<File>>) -> CodeGeneratorResponse {
    let mut response = CodeGeneratorResponse {
        supported_features: Some(Feature::Proto3Optional as u64),
        ..Default::default()
    };
    match result {
        Ok(files) => response.file = files,
        Err(error) => response.error = Some(format!("{error:#}")),
    }
    response
}

fn generate(
    request: &CodeGeneratorRequest,
    files: FileSet,
    options: &PluginOptions,
) -> anyhow::Result<Vec<File>> {
    let by_name = |name: &str| request.proto_file.iter().find(|f| f.name() == name);
    let mut packages = HashSet::new();
    for name in &request.file_to_generate {
        let file = by_name(name).with_context(|| format!("`{name}` is not in proto_file"))?;
        packages.insert(file.package().to_owned());
    }
    // prost needs every message of the request (to tell which can derive Copy or Eq), so it
    // generates all files; only the packages asked for are written out. One output file holds a
    // whole package, so files of those packages that were only imported come along, as they must
    // for the package's module to compile.
    crate::check_packages(&files, &request.proto_file)?;
    let modules = run_prost(&request.proto_file, files, &options.codegen())?;
    let wanted_modules: HashSet<Module> = packages
        .iter()
        .map(|p| Module::from_protobuf_package_name(p))
        .collect();
    let mut out: Vec<File> = modules
        .into_iter()
        .filter(|(module, _)| wanted_modules.contains(module))
        .map(|(module, content)| File {
            name: Some(module.to_file_name_or("_")),
            content: Some(content),
            ..Default::default()
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn run_prost(
    protos: &[FileDescriptorProto],
    files: FileSet,
    options: &CodegenOptions,
) -> anyhow::Result<std::collections::HashMap<Module, String>> {
    let mut config = prost_config(files, options);
    let requests = crate::requests(protos.to_vec(), options.messages);
    config
        .generate(requests)
        .context("prost-build failed to generate code")
}
