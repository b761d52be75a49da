//! The call as an interceptor holds it: [`Call`] on the way in, [`Reply`] on the way out, and
//! the per-message hooks both carry.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use http::{Extensions, HeaderMap};

use super::end::{CallEnd, CallShared, EndHook, EndSummary};
use super::{CallInfo, Direction, Side};
use crate::Error;
use crate::codec::Message;
use crate::spec::{Peer, Spec};

/// A hook run on every message of one direction; may change the message or fail the call.
pub type MessageHook = Box<dyn FnMut(&mut (dyn Any + Send)) -> Result<(), Error> + Send>;

/// A hook run with the size of every message of one direction, in bytes of its binary
/// (protobuf) encoding, uncompressed.
pub(crate) type SizeHook = Box<dyn FnMut(usize) + Send>;

/// A hook run once on the response headers, when they are known.
pub(crate) type HeaderHook = Box<dyn FnOnce(&mut HeaderMap) + Send>;

/// Runs header hooks in order.
pub(crate) fn run_header_hooks(hooks: Vec<HeaderHook>, headers: &mut HeaderMap) {
    for hook in hooks {
        hook(headers);
    }
}

/// The message hooks of one direction of one intercepted call, run by the stream that carries
/// the messages; also counts them for the call's end.
pub(crate) struct MessageHooks {
    shared: Arc<CallShared>,
    direction: Direction,
    hooks: Vec<MessageHook>,
    sizes: Vec<SizeHook>,
}

impl MessageHooks {
    pub(crate) fn new(
        shared: Arc<CallShared>,
        direction: Direction,
        hooks: Vec<MessageHook>,
        sizes: Vec<SizeHook>,
    ) -> Box<Self> {
        Box::new(MessageHooks {
            shared,
            direction,
            hooks,
            sizes,
        })
    }

    /// The call these hooks belong to.
    pub(crate) fn shared(&self) -> &Arc<CallShared> {
        &self.shared
    }

    /// Counts `message` and runs every hook on it, in order; the first error stops there.
    /// Size hooks see a received message as it arrived (before the hooks) and a sent one as
    /// it leaves (after them); its size is computed only when a size hook asks.
    pub(crate) fn run<M: Message>(&mut self, message: &mut M) -> Result<(), Error> {
        self.shared.count(self.direction);
        let sent = matches!(
            (self.shared.info.side, self.direction),
            (Side::Server, Direction::Response) | (Side::Client, Direction::Request)
        );
        if !sent {
            self.measure(message);
        }
        for hook in &mut self.hooks {
            hook(message)?;
        }
        if sent {
            self.measure(message);
        }
        Ok(())
    }

    fn measure<M: Message>(&mut self, message: &M) {
        if self.sizes.is_empty() {
            return;
        }
        let size = message.binary_len();
        for hook in &mut self.sizes {
            hook(size);
        }
    }
}

/// One call on its way in, as an interceptor sees it: the method, the peer, the request
/// headers and extensions, and ways to watch its messages and its end. One type for every
/// method and stream shape, on servers and clients.
///
/// Hand it to [`super::Next::run`] to go on with the call.
pub struct Call {
    pub(crate) shared: Arc<CallShared>,
    deadline: Option<Instant>,
    pub(crate) headers: HeaderMap,
    pub(crate) extensions: Extensions,
    /// The one request message of a client's unary or server-streaming call.
    pub(crate) message: Option<Box<dyn Any + Send>>,
    pub(crate) hooks: Vec<MessageHook>,
    pub(crate) sizes: Vec<SizeHook>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("info", &*self.shared.info)
            .field("deadline", &self.deadline)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Call {
    pub(crate) fn new(
        shared: Arc<CallShared>,
        deadline: Option<Instant>,
        headers: HeaderMap,
        extensions: Extensions,
        message: Option<Box<dyn Any + Send>>,
    ) -> Self {
        Call {
            shared,
            deadline,
            headers,
            extensions,
            message,
            hooks: Vec::new(),
            sizes: Vec::new(),
        }
    }

    /// Who is calling what: spec, peer, side and start time, shareable with hooks.
    pub fn info(&self) -> &Arc<CallInfo> {
        &self.shared.info
    }

    /// The method.
    pub fn spec(&self) -> &Spec {
        &self.shared.info.spec
    }

    /// The peer: on a server the client (protocol, address, verified certificates); on a
    /// client the protocol spoken.
    pub fn peer(&self) -> Option<&Peer> {
        self.shared.info.peer.as_ref()
    }

    /// Server or client.
    pub fn side(&self) -> Side {
        self.shared.info.side
    }

    /// The call's deadline, when the client set one (server side).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request headers, to change: on a server the handler sees the change; on a client
    /// it is sent (the client's configured default headers are added after).
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The request's extensions: typed values for the handler (server side), such as the
    /// caller's identity, read with `request.extensions().get::<T>()`.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The request's extensions, to add values the handler reads.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// The one request message of a client's unary or server-streaming call, to read or
    /// change before it is sent; `None` for other calls, for a type other than the method's
    /// request, and on a server (where the handler reads the message after the interceptors:
    /// see [`Call::on_message`]).
    pub fn message_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.message.as_mut()?.downcast_mut::<T>()
    }

    /// Runs `hook` on every request message, in order, after the hooks of interceptors
    /// outside this one: on a server after decoding and before the handler sees it, on a
    /// client before encoding. Downcast it to the method's request type; an error fails the
    /// call with it.
    pub fn on_message(
        &mut self,
        hook: impl FnMut(&mut (dyn Any + Send)) -> Result<(), Error> + Send + 'static,
    ) {
        self.hooks.push(Box::new(hook));
    }

    /// Runs `hook` with the size of every request message, in bytes of its binary protobuf
    /// encoding before compression (the "uncompressed size" of the RPC metrics, whichever
    /// codec the wire uses): on a server as it arrived, on a client as it is sent. The size
    /// is computed only for calls with such a hook.
    pub fn on_message_size(&mut self, hook: impl FnMut(usize) + Send + 'static) {
        self.sizes.push(Box::new(hook));
    }

    /// Runs `hook` exactly once when the call ends: completed, failed (here or in an
    /// interceptor), past its deadline, cancelled, cut off by the peer or by shutdown. It runs
    /// before the end reaches the other side — a server's trailers or end-of-stream message,
    /// a client's caller — and may change it ([`CallEnd::set_error`],
    /// [`CallEnd::trailers_mut`]). End hooks run innermost interceptor first.
    pub fn on_end(&mut self, hook: impl FnOnce(&mut CallEnd<'_>) + Send + 'static) {
        self.shared.add_end_hook(EndHook::Sync(Box::new(hook)));
    }

    /// Like [`Call::on_end`], for work that awaits (flushing a span, writing an audit
    /// record); the end waits for it. It gets an owned summary and cannot change the end.
    pub fn on_end_async<F>(&mut self, hook: impl FnOnce(EndSummary) -> F + Send + 'static)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shared
            .add_end_hook(EndHook::Async(Box::new(move |summary| {
                Box::pin(hook(summary))
            })));
    }
}

/// A call's answer on its way out, as an interceptor sees it: response headers and trailers,
/// the message of a unary-response call, and hooks on a streamed response's messages.
///
/// `next.run(call).await` returns it when the handler has returned (server) or the response
/// head has arrived (client; a bidi call returns at once, with no headers yet). For a stream
/// that is its start: watch its messages with [`Reply::on_message`] and its end with
/// [`Call::on_end`].
pub struct Reply {
    pub(crate) headers: HeaderMap,
    pub(crate) trailers: HeaderMap,
    /// The typed answer: the response message, or the runtime's stream of them.
    pub(crate) body: Box<dyn Any + Send>,
    pub(crate) stream_trailers: Option<crate::stream::StreamTrailers>,
    pub(crate) hooks: Vec<MessageHook>,
    pub(crate) sizes: Vec<SizeHook>,
    pub(crate) header_hooks: Vec<HeaderHook>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("headers", &self.headers)
            .field("trailers", &self.trailers)
            .finish_non_exhaustive()
    }
}

impl Reply {
    /// An answer of one message, given without calling `next`: a cache hit, a canned reply in
    /// a test. It must be the method's response type and the method must answer with one
    /// message; otherwise the call fails with `internal`.
    pub fn new<T: Send + 'static>(message: T) -> Self {
        Reply::from_body(Box::new(message), HeaderMap::new(), HeaderMap::new())
    }

    pub(crate) fn from_body(
        body: Box<dyn Any + Send>,
        headers: HeaderMap,
        trailers: HeaderMap,
    ) -> Self {
        Reply {
            headers,
            trailers,
            body,
            stream_trailers: None,
            hooks: Vec::new(),
            sizes: Vec::new(),
            header_hooks: Vec::new(),
        }
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The response headers, to change before they are sent (server) or seen (client).
    /// Empty on a client's bidi call, which returns before its headers arrive: see
    /// [`Reply::on_headers`].
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Runs `hook` once on the response headers when they are known, before the caller
    /// (client) or the peer (server) sees them, after the hooks of interceptors inside this
    /// one. That is at once for every call except a client's bidi call, whose headers arrive
    /// later (servers such as grpc-go send them with the first response): there it is the
    /// only way to see them.
    pub fn on_headers(&mut self, hook: impl FnOnce(&mut HeaderMap) + Send + 'static) {
        self.header_hooks.push(Box::new(hook));
    }

    /// The response trailers set so far: a unary call's (all of them), or those a streaming
    /// handler set before its stream started.
    pub fn trailers(&self) -> &HeaderMap {
        &self.trailers
    }

    /// The response trailers, to change. Trailers computed from a whole stream are set at its
    /// end: [`CallEnd::trailers_mut`].
    pub fn trailers_mut(&mut self) -> &mut HeaderMap {
        &mut self.trailers
    }

    /// The response message of a unary-response call, to read or change; `None` for streamed
    /// responses and for a type other than the method's response.
    pub fn message_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.body.downcast_mut::<T>()
    }

    /// Runs `hook` on every response message, in order, after the hooks of interceptors
    /// inside this one; an error fails the call with it (ending a stream with that status).
    pub fn on_message(
        &mut self,
        hook: impl FnMut(&mut (dyn Any + Send)) -> Result<(), Error> + Send + 'static,
    ) {
        self.hooks.push(Box::new(hook));
    }

    /// Runs `hook` with the size of every response message, as [`Call::on_message_size`]
    /// measures it: on a server as it is sent, on a client as it arrived.
    pub fn on_message_size(&mut self, hook: impl FnMut(usize) + Send + 'static) {
        self.sizes.push(Box::new(hook));
    }

    /// The typed body, for the runtime once the chain has returned.
    pub(crate) fn take_body<T: 'static>(&mut self) -> Result<T, Error> {
        let body = std::mem::replace(&mut self.body, Box::new(()));
        body.downcast::<T>().map(|body| *body).map_err(|_| {
            Error::internal(
                "an interceptor answered with a reply of the wrong type for this method",
            )
        })
    }

    /// This reply's message hooks, ready for the stream that carries them.
    pub(crate) fn message_hooks(
        &mut self,
        shared: &Arc<CallShared>,
        direction: Direction,
    ) -> Box<MessageHooks> {
        MessageHooks::new(
            shared.clone(),
            direction,
            std::mem::take(&mut self.hooks),
            std::mem::take(&mut self.sizes),
        )
    }
}

/// A boxed future yielding a reply (what [`super::Next::run`] and the runtime pass around).
pub(crate) type ReplyFuture = super::BoxFuture<'static, Result<Reply, Error>>;
