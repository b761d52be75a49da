//! The Connect protocol: unary calls as plain HTTP (POST, or GET for side-effect-free
//! methods), streams as enveloped messages ending in a JSON end-of-stream message.

pub(crate) mod client;
pub(crate) mod json;
pub(crate) mod server;

pub(crate) use server::ConnectServer;

/// `Connect-Protocol-Version`.
pub(crate) const PROTOCOL_VERSION_HEADER: &str = "connect-protocol-version";
/// `Connect-Timeout-Ms`.
pub(crate) const TIMEOUT_HEADER: &str = "connect-timeout-ms";
/// Message compression of a stream.
pub(crate) const STREAM_ENCODING_HEADER: &str = "connect-content-encoding";
/// Accepted message compressions of a stream.
pub(crate) const STREAM_ACCEPT_ENCODING_HEADER: &str = "connect-accept-encoding";
/// Prefix of unary trailers sent as headers.
pub(crate) const TRAILER_PREFIX: &str = "trailer-";
/// Unary content types are `application/<codec>`.
pub(crate) const UNARY_PREFIX: &str = "application/";
/// Streaming content types are `application/connect+<codec>`.
pub(crate) const STREAM_PREFIX: &str = "application/connect+";
