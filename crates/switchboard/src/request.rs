//! The request and response wrappers handlers and clients exchange.
//!
//! Both carry their metadata as `http::HeaderMap` (see [`crate::metadata`]), so the same
//! helpers read and write headers and trailers on either side of a call.

use std::time::{Duration, Instant};

use http::{Extensions, HeaderMap};

use crate::compression::MessageCompression;
use crate::spec::{Peer, Spec};

/// A request message (or stream of messages) with its metadata and call context.
///
/// On the server, [`Request::spec`], [`Request::peer`] and [`Request::deadline`] describe
/// the incoming call; on the client, [`Request::options_mut`] sets per-call options.
#[derive(Debug)]
pub struct Request<T> {
    message: T,
    headers: HeaderMap,
    extensions: Extensions,
    context: Option<Box<ServerContext>>,
    options: CallOptions,
    message_compression: MessageCompression,
}

/// What the server knows about an incoming call.
#[derive(Debug)]
pub(crate) struct ServerContext {
    pub(crate) spec: Spec,
    pub(crate) peer: Peer,
    pub(crate) deadline: Option<Instant>,
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    /// Whether the one request message (unary and server-streaming methods) arrived compressed.
    pub(crate) request_compressed: Option<bool>,
}

impl<T> Request<T> {
    /// A request carrying `message` and no metadata.
    pub fn new(message: T) -> Self {
        Request {
            message,
            headers: HeaderMap::new(),
            extensions: Extensions::new(),
            context: None,
            options: CallOptions::default(),
            message_compression: MessageCompression::default(),
        }
    }

    pub(crate) fn from_server(
        message: T,
        headers: HeaderMap,
        extensions: Extensions,
        context: ServerContext,
        message_compression: MessageCompression,
    ) -> Self {
        Request {
            message,
            headers,
            extensions,
            context: Some(Box::new(context)),
            options: CallOptions::default(),
            message_compression,
        }
    }

    /// The message (or message stream).
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Mutable access to the message.
    pub fn message_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// Takes the message out, dropping metadata.
    pub fn into_message(self) -> T {
        self.message
    }

    /// Request headers (leading metadata).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Mutable request headers: on the client, these are sent with the call.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The HTTP request's extensions: what tower layers in front of the router attached
    /// (an authenticated identity, a request id, ...).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable extensions.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// The method being called (server side).
    pub fn spec(&self) -> Option<&Spec> {
        self.context.as_ref().map(|c| &c.spec)
    }

    /// The calling peer (server side).
    pub fn peer(&self) -> Option<&Peer> {
        self.context.as_ref().map(|c| &c.peer)
    }

    /// The HTTP method of the incoming request (server side): `POST`, or `GET` for a Connect
    /// GET call.
    pub fn http_method(&self) -> Option<&http::Method> {
        self.context.as_ref().map(|c| &c.method)
    }

    /// The URI of the incoming request (server side), with the query of a Connect GET call.
    pub fn uri(&self) -> Option<&http::Uri> {
        self.context.as_ref().map(|c| &c.uri)
    }

    /// When the caller stops waiting (server side), from its timeout header.
    ///
    /// The server ends the call with `deadline_exceeded` a little later (20 ms), so that the
    /// caller's own timer, which the header's rounding can put just after this instant, always
    /// fires first; use this instant, not that one, for work and calls the handler starts.
    pub fn deadline(&self) -> Option<Instant> {
        self.context.as_ref().and_then(|c| c.deadline)
    }

    /// Time left before the deadline (server side); `None` when the caller set no timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the request message arrived compressed (server side, unary and
    /// server-streaming methods; a request stream tells it per message with
    /// [`crate::Streaming::last_compressed`]).
    pub fn request_compressed(&self) -> Option<bool> {
        self.context.as_ref().and_then(|c| c.request_compressed)
    }

    /// Which of the messages this side sends on the call are compressed: the response
    /// messages on the server, the request messages on the client. Left alone, the
    /// compression policy decides by size.
    pub fn message_compression(&self) -> &MessageCompression {
        &self.message_compression
    }

    /// Per-call options (client side).
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// Mutable per-call options (client side).
    pub fn options_mut(&mut self) -> &mut CallOptions {
        &mut self.options
    }

    /// Builder: sets the call's timeout (client side).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Builder: appends a request header.
    pub fn with_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Replaces the message, keeping metadata and context.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            message: f(self.message),
            headers: self.headers,
            extensions: self.extensions,
            context: self.context,
            options: self.options,
            message_compression: self.message_compression,
        }
    }

    /// Splits into metadata and message.
    pub fn into_parts(self) -> (HeaderMap, Extensions, T) {
        (self.headers, self.extensions, self.message)
    }
}

impl<T> From<T> for Request<T> {
    fn from(message: T) -> Self {
        Request::new(message)
    }
}

/// Options for one client call; unset fields fall back to the client's defaults.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Deadline for the whole call, sent to the server as well.
    pub timeout: Option<Duration>,
    /// Send a unary call to a `NO_SIDE_EFFECTS` method as an HTTP GET (Connect only).
    pub use_get: Option<bool>,
    /// Compress the request with this algorithm (a registered name), or `"identity"`.
    pub compression: Option<&'static str>,
}

/// A response message (or stream) with its headers and trailers.
#[derive(Debug)]
pub struct Response<T> {
    message: T,
    headers: HeaderMap,
    trailers: HeaderMap,
    /// Trailers a stream's producer fills in, sent after its last message.
    stream_trailers: Option<crate::stream::StreamTrailers>,
}

impl<T> Response<T> {
    /// A response carrying `message` and no metadata.
    pub fn new(message: T) -> Self {
        Response {
            message,
            headers: HeaderMap::new(),
            trailers: HeaderMap::new(),
            stream_trailers: None,
        }
    }

    pub(crate) fn from_parts(message: T, headers: HeaderMap, trailers: HeaderMap) -> Self {
        Response {
            message,
            headers,
            trailers,
            stream_trailers: None,
        }
    }

    /// Sets the trailers to read when a streamed reply ends.
    pub(crate) fn set_stream_trailers(&mut self, trailers: Option<crate::stream::StreamTrailers>) {
        self.stream_trailers = trailers;
    }

    /// Takes the trailers to read when a streamed reply ends.
    pub(crate) fn take_stream_trailers(&mut self) -> Option<crate::stream::StreamTrailers> {
        self.stream_trailers.take()
    }

    /// The message (or stream).
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Mutable access to the message.
    pub fn message_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// Takes the message out.
    pub fn into_message(self) -> T {
        self.message
    }

    /// Response headers (leading metadata).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Mutable response headers.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Response trailers (trailing metadata). For a streamed response on the client, these
    /// arrive at the end of the stream: read them from [`crate::Streaming::trailers`].
    pub fn trailers(&self) -> &HeaderMap {
        &self.trailers
    }

    /// Mutable response trailers.
    pub fn trailers_mut(&mut self) -> &mut HeaderMap {
        &mut self.trailers
    }

    /// Builder: appends a header.
    pub fn with_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Builder: appends a trailer.
    pub fn with_trailer(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.trailers.append(name, value);
        self
    }

    /// Replaces the message, keeping metadata.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            message: f(self.message),
            headers: self.headers,
            trailers: self.trailers,
            stream_trailers: self.stream_trailers,
        }
    }

    /// Splits into headers, message, trailers (without [`Response::with_stream_trailers`]'s,
    /// which do not exist yet).
    pub fn into_parts(self) -> (HeaderMap, T, HeaderMap) {
        (self.headers, self.message, self.trailers)
    }
}

impl<T> Response<crate::ResponseStream<T>> {
    /// Builder: trailers computed while the stream runs, sent after its last message (see
    /// [`crate::StreamTrailers`]). They are added to [`Response::trailers`], replacing those
    /// of the same name.
    pub fn with_stream_trailers(mut self, trailers: crate::stream::StreamTrailers) -> Self {
        self.stream_trailers = Some(trailers);
        self
    }
}

impl<T> From<T> for Response<T> {
    fn from(message: T) -> Self {
        Response::new(message)
    }
}
