//! The protocol-neutral vocabulary of a server call: what a handler produced, handed from
//! the server's handlers to the protocol that writes it. Neither side owns it, so `server`
//! and `protocol` do not import each other.

use std::pin::Pin;
use std::time::Instant;

use futures_core::Stream;
use http::HeaderMap;

use crate::Error;
use crate::envelope::Encoded;
use crate::interceptor::CallEnder;

/// What a handler produced.
pub(crate) enum Reply {
    /// One message (unary and client-streaming methods).
    Unary(Result<UnaryReply, Error>),
    /// A stream of messages (server-streaming and bidi methods).
    Stream(Result<StreamReply, Error>),
}

/// A one-message reply, encoded and not yet compressed.
pub(crate) struct UnaryReply {
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Encoded,
    pub(crate) trailers: HeaderMap,
}

/// A streamed reply: its headers, then messages pulled as the peer reads.
pub(crate) struct StreamReply {
    pub(crate) headers: HeaderMap,
    pub(crate) outbound: Outbound,
}

/// Encoded messages on their way out, with what ends the stream.
pub(crate) struct Outbound {
    pub(crate) messages: Pin<Box<dyn Stream<Item = Result<Encoded, Error>> + Send>>,
    pub(crate) trailers: HeaderMap,
    /// Trailers the handler's stream fills in, added to `trailers` at the end.
    pub(crate) stream_trailers: Option<crate::stream::StreamTrailers>,
    pub(crate) deadline: Option<Instant>,
    /// The call's end for its interceptors, fired when the stream ends or the body is dropped.
    pub(crate) ender: CallEnder,
}
