//! Serving: the [`Router`] (a tower service) and the built-in HTTP server.

mod coalesce;
mod deadline;
mod error_writer;
mod first_bytes;
#[cfg(feature = "http3")]
pub(crate) mod h3_body;
#[cfg(feature = "http3")]
pub(crate) mod h3_serve;
pub(crate) mod handler;
mod in_flight;
mod linger;
mod router;
mod serve;
mod signal;
#[cfg(feature = "tls")]
pub mod tls;

pub use crate::config::{
    DEFAULT_MIN_REQUEST_RATE, DEFAULT_READ_MAX_BYTES, DEFAULT_REQUEST_GRACE, ServerConfig,
};
pub use crate::rest::Rest;
pub use error_writer::{error_response, error_response_to};
#[cfg(feature = "http3")]
pub use h3_body::Http3Body;
pub use router::{Router, Routes, RpcService};
pub use serve::{
    DEFAULT_FIRST_BYTES_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SHUTDOWN_GRACE, DEFAULT_STREAM_SEND_BUFFER, ServeRequest, Server, TowerService, bind,
};
pub use signal::shutdown_signal;
