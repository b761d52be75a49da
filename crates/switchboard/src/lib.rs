//! # switchboard
//!
//! Connect, gRPC and gRPC-Web for Rust: write a handler once and serve every protocol; call
//! any of them with one generated client.
//!
//! A request flows through one module per concern:
//! HTTP → [`protocol`](crate::protocol) (negotiate, read frames) → [`compression`] →
//! [`codec`] → [`interceptor`]s → handler → encode → compress → protocol → HTTP.
//!
//! * [`server::Router`] is a `tower::Service<http::Request<B>>`: mount it in hyper, axum or
//!   any tower stack, or run the built-in [`server::Server`].
//! * [`client::Client`] runs over any `tower::Service<http::Request<Body>>` transport; a
//!   pooled hyper client is the default.
//! * Messages are prost messages by default ([`codec::Message`] is the runtime boundary).
#![deny(unsafe_code)]

pub mod body;
pub mod client;
mod code;
pub mod codec;
pub mod compression;
mod envelope;
mod error;
pub mod interceptor;
pub mod metadata;
pub(crate) mod protocol;
mod request;
pub mod server;
mod spec;
mod stream;

pub use body::Body;
pub use code::Code;
pub use error::{Error, ErrorDetail};
pub use request::{CallOptions, Request, Response};
pub use spec::{Idempotency, Peer, PeerCertificates, Protocol, RemoteAddr, Spec, StreamType};
pub use stream::{ResponseStream, Streaming};

/// Re-exports generated code relies on; not part of the stable API for hand-written code.
#[doc(hidden)]
pub mod codegen {
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

/// Includes the code `switchboard-build` generated for a protobuf package:
/// `switchboard::include_proto!("connectrpc.eliza.v1")` in the module that should hold it.
#[macro_export]
macro_rules! include_proto {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}
