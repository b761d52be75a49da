//! The protocol-neutral vocabulary of a server call: what a handler produced, handed from
//! the server's handlers to the protocol that writes it. Neither side owns it, so `server`
//! and `protocol` do not import each other.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
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
    pub(crate) messages: Pin<Box<dyn OutgoingMessages>>,
    pub(crate) trailers: HeaderMap,
    /// Trailers the handler's stream fills in, added to `trailers` at the end.
    pub(crate) stream_trailers: Option<crate::stream::StreamTrailers>,
    pub(crate) deadline: Option<Instant>,
    /// The call's end for its interceptors, fired when the stream ends or the body is dropped.
    pub(crate) ender: CallEnder,
}

/// The messages of a streamed reply, encoded when the body asks for them, straight into the
/// buffer the body sends: messages that are ready together share one allocation and are
/// never copied into a batch afterwards.
pub(crate) trait OutgoingMessages: Send {
    /// Polls for the next message. When one is ready, appends
    /// [`PREFIX_LEN`](crate::envelope::PREFIX_LEN) bytes of headroom and then its encoding to
    /// `buf`, growing `buf` by at least `reserve` bytes if it must grow, and returns `Ok(())`.
    /// On an error `buf` is left as it was.
    fn poll_encode(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        reserve: usize,
    ) -> Poll<Option<Result<(), Error>>>;
}

/// Messages already encoded one by one (unary replies and errors through a stream body, and
/// tests): the first one into an empty buffer is moved in, not copied.
impl<S: Stream<Item = Result<Encoded, Error>> + Send> OutgoingMessages for S {
    fn poll_encode(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        reserve: usize,
    ) -> Poll<Option<Result<(), Error>>> {
        self.poll_next(cx)
            .map(|next| next.map(|message| message.map(|message| message.append_to(buf, reserve))))
    }
}

impl dyn OutgoingMessages {
    /// The next message in a buffer of its own, for bodies that write messages one at a time.
    pub(crate) fn poll_next_encoded(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Encoded, Error>>> {
        let mut buf = BytesMut::new();
        self.poll_encode(cx, &mut buf, 0)
            .map(|next| next.map(|done| done.map(|()| Encoded::from_headroom_buf(buf))))
    }
}
