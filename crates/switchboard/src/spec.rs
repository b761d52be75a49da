//! What a call is: its procedure, stream type, idempotency and descriptor; and who the peer is.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use prost_reflect::MethodDescriptor;

/// The shape of a call's message flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// One request, one response.
    Unary,
    /// Many requests, one response.
    ClientStreaming,
    /// One request, many responses.
    ServerStreaming,
    /// Many requests, many responses.
    BidiStreaming,
}

impl StreamType {
    /// Whether the client sends a stream of messages.
    pub fn client_streams(self) -> bool {
        matches!(
            self,
            StreamType::ClientStreaming | StreamType::BidiStreaming
        )
    }

    /// Whether the server sends a stream of messages.
    pub fn server_streams(self) -> bool {
        matches!(
            self,
            StreamType::ServerStreaming | StreamType::BidiStreaming
        )
    }
}

/// A method's declared side effects (`option idempotency_level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Idempotency {
    /// Nothing declared.
    #[default]
    Unknown,
    /// Safe to call any number of times with no effect on the server: Connect allows GET.
    NoSideEffects,
    /// Repeating the call has the effect of calling it once.
    Idempotent,
}

/// The wire protocol a call arrived on (or is sent with).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// The Connect protocol.
    Connect,
    /// gRPC over HTTP/2.
    Grpc,
    /// gRPC-Web (binary or text).
    GrpcWeb,
    /// REST: JSON over plain HTTP methods and paths, from a method's `google.api.http`
    /// bindings (see [`crate::server::Rest`]); servers only.
    Rest,
}

/// Static facts about one method, shared by every call to it.
///
/// Cheap to clone (one reference count). Interceptors and handlers read it to log, to build
/// ACLs from custom method options (through [`Spec::method`]), or to decide on retries.
#[derive(Clone, Debug)]
pub struct Spec {
    inner: Arc<SpecInner>,
}

#[derive(Debug)]
struct SpecInner {
    procedure: Cow<'static, str>,
    stream_type: StreamType,
    idempotency: Idempotency,
    method: Option<MethodDescriptor>,
}

impl Spec {
    /// A spec from its parts; `procedure` is `/package.Service/Method`.
    pub fn new(
        procedure: impl Into<Cow<'static, str>>,
        stream_type: StreamType,
        idempotency: Idempotency,
    ) -> Self {
        Spec {
            inner: Arc::new(SpecInner {
                procedure: procedure.into(),
                stream_type,
                idempotency,
                method: None,
            }),
        }
    }

    /// A spec read entirely from a method descriptor: procedure, stream type and the
    /// `idempotency_level` option.
    pub fn from_descriptor(method: MethodDescriptor) -> Self {
        let procedure = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let stream_type = match (method.is_client_streaming(), method.is_server_streaming()) {
            (false, false) => StreamType::Unary,
            (true, false) => StreamType::ClientStreaming,
            (false, true) => StreamType::ServerStreaming,
            (true, true) => StreamType::BidiStreaming,
        };
        let idempotency = method
            .method_descriptor_proto()
            .options
            .as_ref()
            .map(|options| match options.idempotency_level() {
                prost_types::method_options::IdempotencyLevel::NoSideEffects => {
                    Idempotency::NoSideEffects
                }
                prost_types::method_options::IdempotencyLevel::Idempotent => {
                    Idempotency::Idempotent
                }
                prost_types::method_options::IdempotencyLevel::IdempotencyUnknown => {
                    Idempotency::Unknown
                }
            })
            .unwrap_or_default();
        Spec {
            inner: Arc::new(SpecInner {
                procedure: procedure.into(),
                stream_type,
                idempotency,
                method: Some(method),
            }),
        }
    }

    /// `/package.Service/Method`.
    pub fn procedure(&self) -> &str {
        &self.inner.procedure
    }

    /// How messages flow.
    pub fn stream_type(&self) -> StreamType {
        self.inner.stream_type
    }

    /// Declared side effects.
    pub fn idempotency(&self) -> Idempotency {
        self.inner.idempotency
    }

    /// The method descriptor, with its options (custom options included), when known.
    pub fn method(&self) -> Option<&MethodDescriptor> {
        self.inner.method.as_ref()
    }
}

/// The input and output message descriptors of a method, which JSON needs; looked up once
/// per handler (server) or call (client) and shared by both sides.
#[derive(Clone)]
pub(crate) struct Descriptors {
    pub(crate) input: Option<prost_reflect::MessageDescriptor>,
    pub(crate) output: Option<prost_reflect::MessageDescriptor>,
}

impl Descriptors {
    pub(crate) fn of(spec: &Spec) -> Self {
        Descriptors {
            input: spec.method().map(|m| m.input()),
            output: spec.method().map(|m| m.output()),
        }
    }
}

/// Who is on the other end of a call.
///
/// The request's `http::Extensions` travel with [`crate::Request`]; an auth layer in front of
/// the router can put an identity there and handlers read it back.
#[derive(Clone, Debug)]
pub struct Peer {
    addr: Option<SocketAddr>,
    protocol: Protocol,
    certificates: Option<Arc<[Bytes]>>,
}

impl Peer {
    /// A peer seen over `protocol`, with an optional remote address.
    pub fn new(protocol: Protocol, addr: Option<SocketAddr>) -> Self {
        Peer {
            addr,
            protocol,
            certificates: None,
        }
    }

    /// Adds the verified TLS certificate chain (DER), leaf first.
    pub fn with_certificates(mut self, certificates: Arc<[Bytes]>) -> Self {
        self.certificates = Some(certificates);
        self
    }

    /// The remote socket address, when the transport knows it.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The protocol of the call.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The peer's verified TLS certificates (DER, leaf first), for mutual TLS.
    pub fn certificates(&self) -> Option<&[Bytes]> {
        self.certificates.as_deref()
    }
}

/// The remote address of a connection, for servers that mount the [`Router`](crate::server::Router)
/// themselves: put it in the request's extensions and `Peer::addr` is filled in. (The
/// built-in server hands the address to the router directly; handlers read it from `Peer`.)
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub SocketAddr);

/// The verified client certificate chain of a TLS connection (DER, leaf first), for servers
/// that mount the router themselves and terminate TLS: put it in the request's extensions and
/// `Peer::certificates` is filled in. (The built-in server hands it over directly.)
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<[Bytes]>);
