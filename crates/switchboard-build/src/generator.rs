//! The service generator: switchboard code appended to prost's output for each package.

use std::fmt::Write as _;
use std::sync::Arc;

use heck::{ToShoutySnakeCase, ToSnakeCase};
use prost_build::{Comments, Method, Service};

use crate::descriptors::{FileSet, byte_string_literal};

/// A [`prost_build::ServiceGenerator`] that writes switchboard code for every `service`.
///
/// For each service it appends to prost's output for the package:
///
/// * `SERVICE_NAME` and one `SERVICE_METHOD_PROCEDURE` constant per method,
/// * a `service_specs` module with one [`Spec`] function per method,
/// * (server) a `Service` trait whose methods default to `unimplemented`, and a
///   `ServiceServer` that mounts an implementation on a `Router`,
/// * (client) a `ServiceClient` over any switchboard transport,
///
/// and once per package the package's encoded `FILE_DESCRIPTOR_SET` (its files and all their
/// imports) with a `descriptor_pool()` function decoding it once.
///
/// [`Builder`](crate::Builder) and the `protoc-gen-switchboard` plugin install it for you; use
/// it directly only with a hand-made [`prost_build::Config`]:
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// // The encoded set (with imports) of the files being compiled, e.g. from
/// // `protoc --include_imports -o set.bin` or `protox::Compiler::encode_file_descriptor_set`.
/// let encoded = std::fs::read("set.bin")?;
/// let set = <prost_types::FileDescriptorSet as prost::Message>::decode(&*encoded)?;
/// let generator = switchboard_build::ServiceGenerator::new(&encoded)?.client(false);
/// prost_build::Config::new()
///     .service_generator(Box::new(generator))
///     .compile_fds(set)?;
/// # Ok(())
/// # }
/// ```
///
/// [`Spec`]: https://docs.rs/switchboard/latest/switchboard/struct.Spec.html
#[derive(Clone, Debug)]
pub struct ServiceGenerator {
    files: Arc<FileSet>,
    server: bool,
    client: bool,
    /// The generic type received messages are wrapped in (`::switchboard::buffa::View` for
    /// the buffa backend), or none: prost messages are received as they are sent.
    received: Option<&'static str>,
}

impl ServiceGenerator {
    /// A generator for the files of an encoded `FileDescriptorSet` that holds every file being
    /// generated and all their imports. Encoded bytes (rather than prost's decoded types) keep
    /// custom options intact in the embedded descriptor sets.
    pub fn new(encoded_file_descriptor_set: &[u8]) -> anyhow::Result<Self> {
        Ok(Self::from_file_set(FileSet::from_encoded_set(
            encoded_file_descriptor_set,
        )?))
    }

    pub(crate) fn from_file_set(files: FileSet) -> Self {
        ServiceGenerator {
            files: Arc::new(files),
            server: true,
            client: true,
            received: None,
        }
    }

    /// Wraps every received message type (server requests, client responses) in `wrapper`.
    #[cfg(feature = "buffa")]
    pub(crate) fn received_as(mut self, wrapper: &'static str) -> Self {
        self.received = Some(wrapper);
        self
    }

    /// Whether to generate the server trait and its `Server` wrapper (default: yes).
    pub fn server(mut self, enabled: bool) -> Self {
        self.server = enabled;
        self
    }

    /// Whether to generate the client (default: yes).
    pub fn client(mut self, enabled: bool) -> Self {
        self.client = enabled;
        self
    }
}

impl prost_build::ServiceGenerator for ServiceGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let service = ServiceNames::new(&service, self.received);
        service.write_constants(buf);
        service.write_specs(buf);
        if self.server {
            service.write_trait(buf);
            service.write_server(buf);
        }
        if self.client {
            service.write_client(buf);
        }
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        let set = self
            .files
            .encode_package_set(package)
            .unwrap_or_else(|error| panic!("switchboard-build: package `{package}`: {error:#}"));
        write_descriptor_set(&set, buf);
    }
}

/// Appends the package-level `FILE_DESCRIPTOR_SET` and `descriptor_pool()`.
fn write_descriptor_set(set: &[u8], buf: &mut String) {
    let literal = byte_string_literal(set);
    let _ = write!(
        buf,
        r#"
/// Encoded `FileDescriptorSet` of this package's files and all their imports.
#[allow(dead_code)]
pub const FILE_DESCRIPTOR_SET: &[u8] = {literal};

/// The descriptor pool of this package, decoded once.
#[allow(dead_code)]
pub fn descriptor_pool() -> &'static ::switchboard::codegen::DescriptorPool {{
    static POOL: ::std::sync::LazyLock<::switchboard::codegen::DescriptorPool> =
        ::std::sync::LazyLock::new(|| ::switchboard::codegen::decode_pool(FILE_DESCRIPTOR_SET));
    &POOL
}}
"#
    );
}

/// The four shapes of a method.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    BidiStreaming,
}

impl Kind {
    fn of(method: &Method) -> Kind {
        match (method.client_streaming, method.server_streaming) {
            (false, false) => Kind::Unary,
            (false, true) => Kind::ServerStreaming,
            (true, false) => Kind::ClientStreaming,
            (true, true) => Kind::BidiStreaming,
        }
    }

    /// The `Routes` and `Client` method for this shape.
    fn call(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ServerStreaming => "server_streaming",
            Kind::ClientStreaming => "client_streaming",
            Kind::BidiStreaming => "bidi_streaming",
        }
    }

    fn client_streams(self) -> bool {
        matches!(self, Kind::ClientStreaming | Kind::BidiStreaming)
    }

    fn server_streams(self) -> bool {
        matches!(self, Kind::ServerStreaming | Kind::BidiStreaming)
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ServerStreaming => "server-streaming",
            Kind::ClientStreaming => "client-streaming",
            Kind::BidiStreaming => "bidirectional-streaming",
        }
    }
}

/// Inherent client methods a generated RPC method must not shadow.
const CLIENT_RESERVED: &[&str] = &["new", "inner"];

struct MethodNames<'a> {
    method: &'a Method,
    kind: Kind,
    /// `Service.Method`, for docs.
    short: String,
    /// `package.Service.Method`.
    full: String,
    /// The trait method and spec function.
    function: String,
    /// The client method.
    client_function: String,
    /// The procedure constant.
    procedure_const: String,
    deprecated: bool,
}

struct ServiceNames<'a> {
    service: &'a Service,
    /// See [`ServiceGenerator::received_as`].
    received: Option<&'static str>,
    /// `package.Service`.
    full: String,
    trait_name: String,
    server: String,
    client: String,
    name_const: String,
    specs_mod: String,
    methods: Vec<MethodNames<'a>>,
}

impl<'a> ServiceNames<'a> {
    fn new(service: &'a Service, received: Option<&'static str>) -> Self {
        let full = if service.package.is_empty() {
            service.proto_name.clone()
        } else {
            format!("{}.{}", service.package, service.proto_name)
        };
        let shouty = service.proto_name.to_shouty_snake_case();
        let methods = service
            .methods
            .iter()
            .map(|method| {
                // prost has already made `name` snake case and escaped keywords (`r#type`).
                let function = method.name.clone();
                let client_function = if CLIENT_RESERVED.contains(&function.as_str()) {
                    format!("{function}_rpc")
                } else {
                    function.clone()
                };
                MethodNames {
                    method,
                    kind: Kind::of(method),
                    short: format!("{}.{}", service.proto_name, method.proto_name),
                    full: format!("{full}.{}", method.proto_name),
                    function,
                    client_function,
                    procedure_const: format!(
                        "{shouty}_{}_PROCEDURE",
                        method.proto_name.to_shouty_snake_case()
                    ),
                    deprecated: method.options.deprecated == Some(true),
                }
            })
            .collect();
        ServiceNames {
            service,
            received,
            trait_name: service.name.clone(),
            server: format!("{}Server", service.name),
            client: format!("{}Client", service.name),
            name_const: format!("{shouty}_NAME"),
            specs_mod: format!("{}_specs", service.proto_name.to_snake_case()),
            full,
            methods,
        }
    }

    /// The Rust type a message of type `rust_type` is received as.
    fn received(&self, rust_type: &str) -> String {
        match self.received {
            Some(wrapper) => format!("{wrapper}<{rust_type}>"),
            None => rust_type.to_owned(),
        }
    }

    fn write_constants(&self, buf: &mut String) {
        let _ = writeln!(
            buf,
            "/// Fully-qualified name of the `{}` service.\n#[allow(dead_code)]\npub const {}: &str = {:?};",
            self.service.proto_name, self.name_const, self.full
        );
        for m in &self.methods {
            let _ = writeln!(
                buf,
                "/// Procedure path of `{}`.\n#[allow(dead_code)]\npub const {}: &str = \"/{}/{}\";",
                m.short, m.procedure_const, self.full, m.method.proto_name
            );
        }
    }

    fn write_specs(&self, buf: &mut String) {
        let _ = writeln!(
            buf,
            "/// Method specs of `{}`: procedure, stream type, idempotency and descriptor.\n\
             #[allow(dead_code)]\npub mod {} {{",
            self.service.proto_name, self.specs_mod
        );
        for m in &self.methods {
            let _ = writeln!(
                buf,
                r#"    /// Spec of `{short}`.
    pub fn {function}() -> ::switchboard::Spec {{
        static SPEC: ::std::sync::LazyLock<::switchboard::Spec> = ::std::sync::LazyLock::new(|| {{
            ::switchboard::Spec::from_descriptor(::switchboard::codegen::method(
                super::descriptor_pool(),
                {service:?},
                {method:?},
            ))
        }});
        ::core::clone::Clone::clone(&*SPEC)
    }}"#,
                short = m.short,
                function = m.function,
                service = self.full,
                method = m.method.proto_name,
            );
        }
        buf.push_str("}\n");
    }

    fn write_trait(&self, buf: &mut String) {
        write_docs(
            buf,
            &self.service.comments,
            &format!("The server side of `{}`.", self.full),
        );
        let _ = writeln!(
            buf,
            "///\n/// Implement the methods you serve (the others answer `unimplemented`) and mount \
             the implementation with [`{server}`].\n\
             #[allow(dead_code)]\n\
             pub trait {name}: ::core::marker::Send + ::core::marker::Sync + 'static {{",
            server = self.server,
            name = self.trait_name,
        );
        for m in &self.methods {
            write_docs(
                buf,
                &m.method.comments,
                &format!("Handles the {} call `{}`.", m.kind.describe(), m.short),
            );
            if m.deprecated {
                buf.push_str("#[deprecated]\n");
            }
            let input = self.received(&m.method.input_type);
            let output = &m.method.output_type;
            let request = if m.kind.client_streams() {
                format!("::switchboard::Streaming<{input}>")
            } else {
                input
            };
            let response = if m.kind.server_streams() {
                format!("::switchboard::ResponseStream<{output}>")
            } else {
                output.clone()
            };
            let unimplemented = format!("{} is not implemented", m.full);
            let _ = writeln!(
                buf,
                "fn {function}(&self, request: ::switchboard::Request<{request}>) \
                 -> impl ::core::future::Future<Output = ::core::result::Result<\
                 ::switchboard::Response<{response}>, ::switchboard::Error>> + ::core::marker::Send {{\n\
                 let _ = request;\n\
                 async {{ ::core::result::Result::Err(::switchboard::Error::unimplemented({unimplemented:?})) }}\n\
                 }}",
                function = m.function,
            );
        }
        buf.push_str("}\n");
    }

    fn write_server(&self, buf: &mut String) {
        let _ = write!(
            buf,
            r#"/// Serves an [`{name}`] implementation: mount it with `switchboard::server::Router::add_service`.
#[allow(dead_code)]
pub struct {server}<S> {{
    inner: ::std::sync::Arc<S>,
}}

#[allow(dead_code)]
impl<S: {name}> {server}<S> {{
    /// Serves `service`.
    pub fn new(service: S) -> Self {{
        Self {{ inner: ::std::sync::Arc::new(service) }}
    }}

    /// Serves a shared `service`.
    pub fn from_arc(service: ::std::sync::Arc<S>) -> Self {{
        Self {{ inner: service }}
    }}
}}

impl<S> ::core::clone::Clone for {server}<S> {{
    fn clone(&self) -> Self {{
        Self {{ inner: ::std::sync::Arc::clone(&self.inner) }}
    }}
}}

impl<S> ::core::fmt::Debug for {server}<S> {{
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{
        f.write_str({server:?})
    }}
}}

impl<S: {name}> ::switchboard::server::RpcService for {server}<S> {{
    fn name(&self) -> &'static str {{
        {name_const}
    }}

    fn file_descriptor_set(&self) -> ::core::option::Option<&'static [u8]> {{
        ::core::option::Option::Some(FILE_DESCRIPTOR_SET)
    }}

    #[allow(deprecated)]
    fn register(self, routes: &mut ::switchboard::server::Routes) {{
"#,
            name = self.trait_name,
            server = self.server,
            name_const = self.name_const,
        );
        if self.methods.is_empty() {
            buf.push_str("let _ = (self, routes);\n");
        } else {
            buf.push_str("let service = self.inner;\n");
        }
        for m in &self.methods {
            let input = self.received(&m.method.input_type);
            let request = if m.kind.client_streams() {
                format!("::switchboard::Streaming<{input}>")
            } else {
                input
            };
            let _ = writeln!(
                buf,
                "{{\n\
                 let service = ::std::sync::Arc::clone(&service);\n\
                 routes.{call}({specs}::{function}(), move |request: ::switchboard::Request<{request}>| {{\n\
                 let service = ::std::sync::Arc::clone(&service);\n\
                 async move {{ <S as {name}>::{function}(&*service, request).await }}\n\
                 }});\n\
                 }}",
                call = m.kind.call(),
                specs = self.specs_mod,
                function = m.function,
                name = self.trait_name,
            );
        }
        buf.push_str("}\n}\n");
    }

    fn write_client(&self, buf: &mut String) {
        let _ = write!(
            buf,
            r#"/// Client of `{full}` over any switchboard transport.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub struct {client}<T = ::switchboard::client::HttpTransport> {{
    client: ::switchboard::client::Client<T>,
}}

#[allow(dead_code)]
impl<T: ::switchboard::client::Transport> {client}<T> {{
    /// Calls `{full}` through `client`.
    pub fn new(client: ::switchboard::client::Client<T>) -> Self {{
        Self {{ client }}
    }}

    /// The underlying client.
    pub fn inner(&self) -> &::switchboard::client::Client<T> {{
        &self.client
    }}
"#,
            full = self.full,
            client = self.client,
        );
        for m in &self.methods {
            buf.push('\n');
            write_docs(
                buf,
                &m.method.comments,
                &format!("Calls `{}` ({}).", m.short, m.kind.describe()),
            );
            if m.deprecated {
                buf.push_str("#[deprecated]\n");
            }
            let input = &m.method.input_type;
            let output = self.received(&m.method.output_type);
            let response = if m.kind.server_streams() {
                format!("::switchboard::Streaming<{output}>")
            } else {
                output
            };
            let result = format!(
                "::core::result::Result<::switchboard::Response<{response}>, ::switchboard::Error>"
            );
            let call = format!(
                "self.client.{}({}::{}(), request{}).await",
                m.kind.call(),
                self.specs_mod,
                m.function,
                if m.kind.client_streams() {
                    ""
                } else {
                    ".into()"
                },
            );
            if m.kind.client_streams() {
                // A `Request<S>` rather than `impl Into<Request<S>>`: with the latter, passing
                // a `Request` is ambiguous (it is also `Into<Request<Request<_>>>`), so metadata
                // could not be sent. Bare streams go in with `Request::new(stream)` or
                // `stream.into()`.
                let _ = writeln!(
                    buf,
                    "///\n/// Send a stream of `{input}` wrapped in a `switchboard::Request`: \
                     `Request::new(stream)` or `stream.into()`."
                );
                let _ = writeln!(
                    buf,
                    "pub async fn {function}<S>(&self, request: ::switchboard::Request<S>) -> {result}\n\
                     where\n\
                     S: ::switchboard::codegen::Stream<Item = {input}> + ::core::marker::Send + 'static,\n\
                     {{\n{call}\n}}",
                    function = m.client_function,
                );
            } else {
                let _ = writeln!(
                    buf,
                    "pub async fn {function}(&self, request: impl ::core::convert::Into<::switchboard::Request<{input}>>) -> {result} {{\n{call}\n}}",
                    function = m.client_function,
                );
            }
        }
        buf.push_str("}\n");
    }
}

/// Writes `comments` as doc comments, or `fallback` when there are none.
fn write_docs(buf: &mut String, comments: &Comments, fallback: &str) {
    if comments.leading.is_empty() && comments.trailing.is_empty() {
        for line in fallback.lines() {
            if line.is_empty() {
                buf.push_str("///\n");
            } else {
                let _ = writeln!(buf, "/// {line}");
            }
        }
    } else {
        // Detached comments (license headers and the like) are not documentation.
        let comments = Comments {
            leading_detached: Vec::new(),
            leading: comments.leading.clone(),
            trailing: comments.trailing.clone(),
        };
        comments.append_with_indent(0, buf);
    }
}
