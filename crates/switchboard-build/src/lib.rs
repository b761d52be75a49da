//! Code generation for switchboard: services, clients and descriptor sets from `.proto` files.
//!
//! There is one generator, [`ServiceGenerator`], a [`prost_build::ServiceGenerator`] that
//! appends switchboard code to prost's output for each package. Two front ends drive it:
//!
//! * [`Builder`] (and [`compile_protos`]) for `build.rs`: `.proto` files are compiled in
//!   process with [`protox`], so no `protoc` binary is needed;
//! * [`plugin`], behind the `protoc-gen-switchboard` binary, for `protoc` and `buf`.
//!
//! ```no_run
//! // build.rs
//! fn main() -> anyhow::Result<()> {
//!     switchboard_build::Builder::new()
//!         .include("proto")
//!         .compile(&["proto/connectrpc/eliza/v1/eliza.proto"])
//! }
//! ```
//!
//! and in the crate, `switchboard::include_proto!("connectrpc.eliza.v1")` (or
//! `include!(concat!(env!("OUT_DIR"), "/connectrpc.eliza.v1.rs"))`) in a module.
//!
//! For a service `ElizaService` of package `connectrpc.eliza.v1` the generated module holds,
//! next to prost's messages:
//!
//! * `ELIZA_SERVICE_NAME` and `ELIZA_SERVICE_SAY_PROCEDURE`-style constants;
//! * `eliza_service_specs::say()` and friends, each method's `switchboard::Spec`;
//! * the `ElizaService` trait (every method defaults to `unimplemented`) and
//!   `ElizaServiceServer`, to mount an implementation with `Router::add_service`;
//! * `ElizaServiceClient`, over any switchboard transport;
//! * `FILE_DESCRIPTOR_SET` (the package's files and all their imports, custom options
//!   included) and `descriptor_pool()`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use prost_build::Module;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

#[cfg(feature = "buffa")]
mod buffa_backend;
mod descriptors;
mod generator;
pub mod openapi;
pub mod plugin;
#[cfg(test)]
mod tests;

pub use generator::ServiceGenerator;
pub use prost_build;

use descriptors::FileSet;

/// What to generate; shared by the build-script and plugin front ends.
#[derive(Clone, Debug)]
pub(crate) struct CodegenOptions {
    pub(crate) extern_paths: Vec<(String, String)>,
    pub(crate) messages: bool,
    pub(crate) server: bool,
    pub(crate) client: bool,
}

/// A prost configuration with the switchboard generator installed.
pub(crate) fn prost_config(files: FileSet, options: &CodegenOptions) -> prost_build::Config {
    let mut config = prost_build::Config::new();
    // Every message implements `prost::Name` with the standard type URL, so generated types
    // pack into `Any` and serve as error details (`ErrorDetail::new`, `Error::detail`).
    config.enable_type_names();
    config.type_name_domain(["."], "type.googleapis.com");
    config.service_generator(Box::new(
        ServiceGenerator::from_file_set(files)
            .server(options.server)
            .client(options.client),
    ));
    for (proto, rust) in &options.extern_paths {
        if proto == ".google.protobuf" {
            // prost maps the well-known types itself (wrappers to Rust primitives, the rest to
            // `::prost_types`); a second mapping of the package would be a duplicate, so move
            // the default one instead.
            config.prost_types_path(rust);
        } else {
            config.extern_path(proto, rust);
        }
    }
    config
}

/// Removes what prost would generate besides services, for `messages = false`.
fn strip_messages(file: &mut FileDescriptorProto) {
    file.message_type.clear();
    file.enum_type.clear();
}

/// prost's input: each file with the module of its package.
pub(crate) fn requests(
    files: Vec<FileDescriptorProto>,
    messages: bool,
) -> Vec<(Module, FileDescriptorProto)> {
    files
        .into_iter()
        .map(|mut file| {
            if !messages {
                strip_messages(&mut file);
            }
            (Module::from_protobuf_package_name(file.package()), file)
        })
        .collect()
}

/// Fails early (rather than panicking inside prost) if a package with services lacks a
/// descriptor of some import.
pub(crate) fn check_packages(
    files: &FileSet,
    protos: &[FileDescriptorProto],
) -> anyhow::Result<()> {
    for file in protos.iter().filter(|f| !f.service.is_empty()) {
        files
            .encode_package_set(file.package())
            .with_context(|| format!("descriptor set of package `{}`", file.package()))?;
    }
    Ok(())
}

/// The protobuf runtime the generated messages use.
///
/// The service code on top is the same for both; only the message types and what a handler
/// receives differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageBackend {
    /// prost messages (the default): owned `String`, `Vec<u8>` and `HashMap` fields, the
    /// types tonic and most of the Rust ecosystem use.
    #[default]
    Prost,
    /// buffa messages, feature `buffa` (and the runtime's feature `buffa`): messages are
    /// sent owned and received as `switchboard::buffa::View<M>`, a zero-copy view whose
    /// strings and bytes borrow from the request buffer. For handlers that read large
    /// messages without keeping them. The crate needs `buffa` as a dependency (and
    /// `buffa-types` if it uses well-known types); [`Builder::configure`] does not apply.
    #[cfg(feature = "buffa")]
    Buffa,
}

/// A [`Builder::configure`] closure.
type ConfigureFn = Box<dyn Fn(&mut prost_build::Config)>;

/// Compiles `.proto` files from `build.rs`: messages (prost), services, clients and
/// descriptor sets, written to `OUT_DIR` as `<package>.rs`.
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// switchboard_build::Builder::new()
///     .include("proto")
///     .extern_path(".google.protobuf", "::prost_types")
///     .generate_messages(true)
///     .server(true)
///     .client(true)
///     .configure(|config| {
///         config.bytes(["."]);
///     })
///     .compile(&["proto/connectrpc/eliza/v1/eliza.proto"])?;
/// # Ok(())
/// # }
/// ```
pub struct Builder {
    includes: Vec<PathBuf>,
    extern_paths: Vec<(String, String)>,
    messages: bool,
    server: bool,
    client: bool,
    out_dir: Option<PathBuf>,
    rerun_if_changed: bool,
    configure: Vec<ConfigureFn>,
    openapi: Option<PathBuf>,
    backend: MessageBackend,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("includes", &self.includes)
            .field("extern_paths", &self.extern_paths)
            .field("messages", &self.messages)
            .field("server", &self.server)
            .field("client", &self.client)
            .field("out_dir", &self.out_dir)
            .field("rerun_if_changed", &self.rerun_if_changed)
            .field("configure", &self.configure.len())
            .field("backend", &self.backend)
            .finish()
    }
}

impl Builder {
    /// Messages, servers and clients, written to `OUT_DIR`; include directories default to
    /// the directories of the files compiled.
    pub fn new() -> Self {
        Builder {
            includes: Vec::new(),
            extern_paths: Vec::new(),
            messages: true,
            server: true,
            client: true,
            out_dir: None,
            rerun_if_changed: true,
            configure: Vec::new(),
            openapi: None,
            backend: MessageBackend::Prost,
        }
    }

    /// Also writes an OpenAPI 3.1 document (JSON) of the REST shape of the annotated
    /// methods — what `Router::rest` serves — to `path` (relative paths are under the output
    /// directory): one operation per `google.api.http` binding, with its path, query and body
    /// parameters, the messages' JSON schemas, and errors as `google.rpc.Status`.
    pub fn openapi(mut self, path: impl AsRef<Path>) -> Self {
        self.openapi = Some(path.as_ref().to_owned());
        self
    }

    /// Which protobuf runtime generates the messages (default: [`MessageBackend::Prost`]).
    pub fn message_backend(mut self, backend: MessageBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Adds a directory to search for the files and their imports, in order. The well-known
    /// types (`google/protobuf/*.proto`) are always found.
    pub fn include(mut self, dir: impl AsRef<Path>) -> Self {
        self.includes.push(dir.as_ref().to_owned());
        self
    }

    /// Refers to the types under a proto path (`.acme.common.v1`, or one type
    /// `.acme.common.v1.Money`) at a Rust path (`::acme_common::v1`) instead of generating
    /// them; passed through to [`prost_build::Config::extern_path`].
    ///
    /// `.google.protobuf` maps to `::prost_types` by default (with the wrapper types as Rust
    /// primitives and `Empty` as `()`, as prost does); giving `.google.protobuf` here moves
    /// that mapping to another crate, e.g. one with serde support.
    pub fn extern_path(
        mut self,
        proto_path: impl Into<String>,
        rust_path: impl Into<String>,
    ) -> Self {
        self.extern_paths
            .push((proto_path.into(), rust_path.into()));
        self
    }

    /// Whether to generate message types (default: yes). With `false` only services are
    /// generated, and the message types are found through [`Builder::extern_path`], e.g. the
    /// ones an existing prost or tonic-build setup already generates.
    pub fn generate_messages(mut self, enabled: bool) -> Self {
        self.messages = enabled;
        self
    }

    /// Whether to generate server traits (default: yes).
    pub fn server(mut self, enabled: bool) -> Self {
        self.server = enabled;
        self
    }

    /// Whether to generate clients (default: yes).
    pub fn client(mut self, enabled: bool) -> Self {
        self.client = enabled;
        self
    }

    /// Where to write the generated files (default: the `OUT_DIR` cargo gives build scripts).
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every `.proto` file read (default: yes).
    pub fn emit_rerun_if_changed(mut self, enabled: bool) -> Self {
        self.rerun_if_changed = enabled;
        self
    }

    /// Adjusts the prost configuration (attributes, `bytes`, `btree_map`, an include file, ...)
    /// after the builder has set it up. Repeatable; closures run in order.
    pub fn configure(mut self, f: impl Fn(&mut prost_build::Config) + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    fn options(&self) -> CodegenOptions {
        CodegenOptions {
            extern_paths: self.extern_paths.clone(),
            messages: self.messages,
            server: self.server,
            client: self.client,
        }
    }

    /// Compiles `protos` (paths under an include directory, or names relative to one) and
    /// their imports, and writes one `<package>.rs` per package.
    pub fn compile(&self, protos: &[impl AsRef<Path>]) -> anyhow::Result<()> {
        let (set, files, pool) = self.load(protos)?;
        if let Some(path) = &self.openapi {
            self.write_openapi(path, &pool)?;
        }
        if self.backend != MessageBackend::Prost {
            let dir = self.output_dir()?;
            for (name, code) in self.generate_other_backend(set, files)? {
                let path = dir.join(&name);
                // Unchanged files keep their modification time, so cargo does not rebuild.
                if std::fs::read_to_string(&path).is_ok_and(|old| old == code) {
                    continue;
                }
                std::fs::write(&path, code)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            return Ok(());
        }
        let mut config = prost_config(files, &self.options());
        if let Some(dir) = &self.out_dir {
            config.out_dir(dir);
        }
        for configure in &self.configure {
            configure(&mut config);
        }
        let mut set = set;
        if !self.messages {
            set.file.iter_mut().for_each(strip_messages);
        }
        config
            .compile_fds(set)
            .context("prost-build failed to generate code")
    }

    /// Compiles `protos` and returns the generated code per output file name, without writing
    /// anything.
    pub fn generate(&self, protos: &[impl AsRef<Path>]) -> anyhow::Result<Vec<(String, String)>> {
        let (set, files, _) = self.load(protos)?;
        if self.backend != MessageBackend::Prost {
            let mut out = self.generate_other_backend(set, files)?;
            out.sort();
            return Ok(out);
        }
        let mut config = prost_config(files, &self.options());
        for configure in &self.configure {
            configure(&mut config);
        }
        let modules = config
            .generate(requests(set.file, self.messages))
            .context("prost-build failed to generate code")?;
        let mut out: Vec<(String, String)> = modules
            .into_iter()
            .map(|(module, code)| (module.to_file_name_or("_"), code))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Where generated files go: [`Builder::out_dir`], else the `OUT_DIR` cargo sets.
    fn output_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.out_dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(PathBuf::from(
                std::env::var_os("OUT_DIR").context("OUT_DIR is not set: give .out_dir")?,
            )),
        }
    }

    /// Generates with a backend other than prost.
    #[cfg_attr(not(feature = "buffa"), allow(unused_variables))]
    fn generate_other_backend(
        &self,
        set: FileDescriptorSet,
        files: FileSet,
    ) -> anyhow::Result<Vec<(String, String)>> {
        match self.backend {
            MessageBackend::Prost => unreachable!("prost is generated through prost-build"),
            #[cfg(feature = "buffa")]
            MessageBackend::Buffa => {
                if !self.messages {
                    anyhow::bail!("the buffa backend always generates messages");
                }
                let encoded = prost::Message::encode_to_vec(&set);
                buffa_backend::generate(&encoded, &set.file, files, &self.options())
            }
        }
    }

    /// Writes the OpenAPI document of the services of the files compiled.
    fn write_openapi(
        &self,
        path: &Path,
        pool: &prost_reflect::DescriptorPool,
    ) -> anyhow::Result<()> {
        let path = if path.is_relative() {
            self.output_dir()?.join(path)
        } else {
            path.to_owned()
        };
        let services: Vec<String> = pool
            .services()
            .filter(|service| !service.full_name().starts_with("google."))
            .map(|service| service.full_name().to_owned())
            .collect();
        let title = services.join(", ");
        let document = openapi::document(pool, &services, &title);
        let text = serde_json::to_string_pretty(&document)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Parses the files: the decoded set for prost, and the raw files for descriptor sets.
    fn load(
        &self,
        protos: &[impl AsRef<Path>],
    ) -> anyhow::Result<(FileDescriptorSet, FileSet, prost_reflect::DescriptorPool)> {
        let includes = if self.includes.is_empty() {
            default_includes(protos)
        } else {
            self.includes.clone()
        };
        let mut compiler = protox::Compiler::new(&includes)
            .with_context(|| format!("include directories {includes:?}"))?;
        compiler.include_imports(true).include_source_info(true);
        for proto in protos {
            let proto = proto.as_ref();
            compiler
                .open_file(proto)
                .map_err(|error| anyhow::anyhow!("{error}"))
                .with_context(|| format!("compiling {}", proto.display()))?;
        }
        if self.rerun_if_changed {
            for file in compiler.files() {
                if let Some(path) = file.path() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        let set = compiler.file_descriptor_set();
        // Encoded by protox from its own pool, so extension options are still there.
        let files = FileSet::from_encoded_set(&compiler.encode_file_descriptor_set())?;
        check_packages(&files, &set.file)?;
        Ok((set, files, compiler.descriptor_pool()))
    }
}

/// The directories of the given files, each once.
fn default_includes(protos: &[impl AsRef<Path>]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for proto in protos {
        let dir = match proto.as_ref().parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Compiles `protos` with `includes` and every default: messages, servers and clients, written
/// to `OUT_DIR`. Shorthand for [`Builder`].
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// switchboard_build::compile_protos(&["proto/acme/greet/v1/greet.proto"], &["proto"])?;
/// # Ok(())
/// # }
/// ```
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> anyhow::Result<()> {
    includes
        .iter()
        .fold(Builder::new(), |builder, dir| builder.include(dir))
        .compile(protos)
}
