//! # switchboard
//!
//! Connect, gRPC and gRPC-Web for Rust: write a handler once and serve every protocol; call
//! any of them with one generated client.
//!
//! A request flows through one module per concern:
//! HTTP → `protocol` (negotiate, read frames) → [`compression`] →
//! [`codec`] → [`interceptor`]s → handler → encode → compress → protocol → HTTP.
//!
//! * [`server::Router`] is a `tower::Service<http::Request<B>>`: mount it in hyper, axum or
//!   any tower stack, or run the built-in [`server::Server`].
//! * [`client::Client`] runs over any `tower::Service<http::Request<Body>>` transport; a
//!   pooled hyper client is the default.
//! * Messages are prost messages by default ([`codec::Message`] is the runtime boundary).
//!
#![doc = include_str!("quickstart.md")]
#![deny(unsafe_code)]

pub mod body;
#[cfg(feature = "buffa")]
pub mod buffa;
mod call;
pub mod client;
mod code;
pub mod codec;
pub mod compression;
mod config;
#[cfg(feature = "cors")]
pub mod cors;
pub mod deadline;
mod envelope;
mod error;
pub mod error_details;
#[cfg(feature = "http3")]
mod h3_stream;
pub mod interceptor;
pub mod metadata;
pub(crate) mod protocol;
mod request;
mod rest;
pub mod server;
mod spec;
mod stream;

pub use body::Body;
pub use code::Code;
pub use error::{Error, ErrorDetail};
pub use request::{CallOptions, Request, Response};
pub use spec::{Idempotency, Peer, PeerCertificates, Protocol, RemoteAddr, Spec, StreamType};
pub use stream::{ResponseStream, StreamTrailers, Streaming};

// Crates before 1.0 whose types appear in switchboard's API, re-exported so code can name
// them in the versions switchboard uses, with no dependency of its own to keep in step:
// prost messages and `prost_types` well-known types (error details), `prost_reflect`
// descriptors and dynamic messages (`Spec::method`, `codec::Dynamic`), tower's `Layer` and
// `ServiceExt` (layers around a router), and hyper-util's connection builder
// (`Server::http`) and pooled client (`client::HttpTransport::from_client`). Generated code
// still needs `prost` as a direct dependency for its derives.
pub use hyper_util;
pub use prost;
pub use prost_reflect;
pub use prost_types;
pub use tower;

/// Re-exports generated code relies on; not part of the stable API for hand-written code.
#[doc(hidden)]
pub mod codegen {
    pub use bytes::{Bytes, BytesMut};
    pub use futures_core::Stream;
    pub use prost;
    pub use prost_reflect::{DescriptorPool, MethodDescriptor};

    /// Decodes an encoded `FileDescriptorSet` into a pool, for generated code's `static`.
    pub fn decode_pool(bytes: &'static [u8]) -> DescriptorPool {
        DescriptorPool::decode(bytes).expect("generated file descriptor set is valid")
    }

    /// Finds a method of a service in a pool, for generated code's specs.
    pub fn method(pool: &DescriptorPool, service: &str, method: &str) -> MethodDescriptor {
        pool.get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .expect("generated method is in its own descriptor pool")
    }
}

/// Crate-private hot paths exposed for the crate's own Criterion benchmarks (`benches/`)
/// only, behind the `bench-internals` feature, which is off by default: the envelope
/// framing and the outgoing-compression decision are internal, and measuring them only
/// through a whole call would bury their cost under routing and codecs. Thin wrappers, no
/// logic of their own; not a stable API.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod __bench {
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::{Bytes, BytesMut};

    use crate::Error;
    use crate::body::BoxError;
    use crate::compression::{CompressionPolicy, Compressor, MessageCompression};
    use crate::envelope::{BodyReader, Side};

    /// Length of the envelope prefix (flags byte and big-endian `u32` length).
    pub const PREFIX_LEN: usize = crate::envelope::PREFIX_LEN;
    /// Envelope flag: the payload is compressed.
    pub const FLAG_COMPRESSED: u8 = crate::envelope::FLAG_COMPRESSED;

    /// Frames `payload` into a fresh buffer (the internal `envelope::frame`).
    pub fn frame(flags: u8, payload: &[u8]) -> Result<Bytes, Error> {
        crate::envelope::frame(flags, payload)
    }

    /// Writes a 5-byte prefix for `len` bytes (the internal `envelope::put_prefix`).
    pub fn put_prefix(buf: &mut BytesMut, flags: u8, len: usize) -> Result<(), Error> {
        crate::envelope::put_prefix(buf, flags, len)
    }

    /// The server's envelope reader over a request body.
    #[allow(missing_debug_implementations)]
    pub struct EnvelopeReader(BodyReader);

    impl EnvelopeReader {
        /// Reads envelopes from `body` as the server does.
        pub fn new<B>(body: B) -> Self
        where
            B: http_body::Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<BoxError>,
        {
            EnvelopeReader(BodyReader::new(crate::body::box_body(body), Side::Server))
        }

        /// The next envelope's flags and payload; `None` at a clean end of body.
        pub fn poll_envelope(
            &mut self,
            cx: &mut Context<'_>,
            limit: usize,
        ) -> Poll<Option<Result<(u8, Bytes), Error>>> {
            self.0
                .poll_envelope(cx, limit)
                .map(|next| next.map(|result| result.map(|e| (e.flags, e.data))))
        }
    }

    /// protoc's lowerCamelCase JSON name of a field (the internal `rest::rpc_types::json_name`),
    /// for descriptors the benchmarks build by hand.
    pub fn json_name(name: &str) -> String {
        crate::rest::rpc_types::json_name(name)
    }

    /// The decision and work of compressing one outgoing payload (the internal
    /// `protocol::compress`): `(compressed, bytes)`.
    pub fn compress(
        compressor: Option<&Arc<dyn Compressor>>,
        policy: CompressionPolicy,
        switch: &MessageCompression,
        payload: Bytes,
    ) -> Result<(bool, Bytes), Error> {
        crate::protocol::compress(compressor, policy, switch, payload)
    }
}

/// Includes the code `switchboard-build` generated for a protobuf package:
/// `switchboard::include_proto!("connectrpc.eliza.v1")` in the module that should hold it.
#[macro_export]
macro_rules! include_proto {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// The README's Rust blocks, compiled and run as doctests so its examples stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
