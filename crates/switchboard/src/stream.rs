//! Message streams: [`Streaming`] for messages received, [`ResponseStream`] for messages a
//! handler sends.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::HeaderMap;
use prost_reflect::MessageDescriptor;

use crate::Error;
use crate::codec::{Codec, Message};
use crate::interceptor::MessageHooks;

/// The stream of messages a streaming handler returns.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Error>> + Send + 'static>>;

/// Trailers a streaming handler computes while its stream runs (a count, a checksum, a
/// cursor), sent after the last message: as HTTP trailers (gRPC), in the trailer frame
/// (gRPC-Web) or in the end-of-stream message (Connect).
///
/// Make one, give a clone to the code producing the stream, and attach it with
/// [`crate::Response::with_stream_trailers`]. What it holds when the stream ends is added to
/// the response's trailers (replacing trailers of the same name set earlier); it is read
/// once, after the stream's last item, so the producer may change it until then.
///
/// ```
/// use futures_util::StreamExt as _;
/// use switchboard::{Response, ResponseStream, StreamTrailers};
///
/// let trailers = StreamTrailers::new();
/// let counter = trailers.clone();
/// let numbers = futures_util::stream::iter(1..=3u32).map(move |n| {
///     counter.insert("x-count", n.into());
///     Ok(n)
/// });
/// let response = Response::new(Box::pin(numbers) as ResponseStream<u32>)
///     .with_stream_trailers(trailers.clone());
/// # let _ = response;
/// ```
#[derive(Clone, Debug, Default)]
pub struct StreamTrailers(Arc<std::sync::Mutex<HeaderMap>>);

impl StreamTrailers {
    /// An empty set of trailers.
    pub fn new() -> Self {
        StreamTrailers::default()
    }

    /// Sets a trailer, replacing any value it had.
    pub fn insert(&self, name: impl http::header::IntoHeaderName, value: http::HeaderValue) {
        self.update(|trailers| {
            trailers.insert(name, value);
        });
    }

    /// Adds a value to a trailer.
    pub fn append(&self, name: impl http::header::IntoHeaderName, value: http::HeaderValue) {
        self.update(|trailers| {
            trailers.append(name, value);
        });
    }

    /// Changes the trailers in place (e.g. binary `-bin` values through
    /// [`crate::metadata::BinaryMetadata`]).
    pub fn update<R>(&self, change: impl FnOnce(&mut HeaderMap) -> R) -> R {
        change(
            &mut self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Takes what has been set so far.
    pub(crate) fn take(&self) -> HeaderMap {
        self.update(std::mem::take)
    }
}

/// Where received payloads come from: a protocol's body reader, already unframed and
/// decompressed.
pub(crate) trait MessageSource: Send + 'static {
    /// The next payload; `None` at the clean end of the stream.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>>;
    /// Trailing metadata, once the stream has ended.
    fn trailers(&self) -> Option<&HeaderMap>;
    /// Whether the payload last returned arrived compressed; `None` when unknown.
    fn last_compressed(&self) -> Option<bool> {
        None
    }
    /// Waits for the response head of a call whose head was not awaited (client bidi calls).
    fn poll_headers(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let _ = cx;
        Poll::Ready(Ok(()))
    }
    /// The response headers, once [`MessageSource::poll_headers`] is ready; `None` when they
    /// travel elsewhere (in the `Response`, or on the server's `Request`).
    fn headers(&self) -> Option<&HeaderMap> {
        None
    }
    /// Takes hooks to run on the response headers when they arrive, for a source whose head
    /// is still on its way (a client's bidi call); gives them back when the headers are
    /// already known (they travel in the `Response`).
    fn defer_header_hooks(
        &mut self,
        hooks: Vec<crate::interceptor::HeaderHook>,
    ) -> Option<Vec<crate::interceptor::HeaderHook>> {
        Some(hooks)
    }
}

/// A stream of received messages: the request stream of a client- or bidi-streaming handler,
/// or the response stream of a streaming call on the client.
///
/// Read it with [`Streaming::message`] or as a `futures::Stream`. A stream that ends without
/// the protocol's proper end (its end-of-stream message or status) yields an error, never a
/// silent end.
pub struct Streaming<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Wire(WireStream),
    Typed(ResponseStream<T>),
}

pub(crate) struct WireStream {
    pub(crate) source: Box<dyn MessageSource>,
    pub(crate) codec: Codec,
    pub(crate) descriptor: Option<MessageDescriptor>,
    /// The interceptors' hooks on each message (intercepted calls only).
    pub(crate) hooks: Option<Box<MessageHooks>>,
    pub(crate) failed: bool,
}

impl<T> Streaming<T> {
    pub(crate) fn from_wire(wire: WireStream) -> Self {
        Streaming {
            inner: Inner::Wire(wire),
        }
    }

    /// A stream from any stream of results, e.g. for calling a handler in-process in tests.
    pub fn from_stream(stream: impl Stream<Item = Result<T, Error>> + Send + 'static) -> Self {
        Streaming {
            inner: Inner::Typed(Box::pin(stream)),
        }
    }

    /// Trailing metadata received at the end of the stream (client side); `None` before the
    /// end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        match &self.inner {
            Inner::Wire(wire) => wire.source.trailers(),
            Inner::Typed(_) => None,
        }
    }

    /// The response headers of a client's bidi call, waiting until they arrive without
    /// consuming a message.
    ///
    /// A bidi call returns before the server's response headers arrive (servers such as
    /// grpc-go send them only with the first response, which may wait for the first request),
    /// so its [`crate::Response::headers`] are empty: read them here. For every other
    /// stream the headers are in the `Response` (client) or the `Request` (server), and this
    /// returns an empty map at once.
    pub async fn headers(&mut self) -> Result<&HeaderMap, Error> {
        static NONE: std::sync::OnceLock<HeaderMap> = std::sync::OnceLock::new();
        if let Inner::Wire(wire) = &mut self.inner {
            std::future::poll_fn(|cx| wire.source.poll_headers(cx)).await?;
        }
        Ok(match &self.inner {
            Inner::Wire(wire) => wire.source.headers(),
            Inner::Typed(_) => None,
        }
        .unwrap_or_else(|| NONE.get_or_init(HeaderMap::new)))
    }

    /// Whether the message last received arrived compressed on the wire (server side: the
    /// request messages of a client-streaming or bidi call); `None` before the first message
    /// or when it is not known.
    pub fn last_compressed(&self) -> Option<bool> {
        match &self.inner {
            Inner::Wire(wire) => wire.source.last_compressed(),
            Inner::Typed(_) => None,
        }
    }
}

impl<T: Message> Streaming<T> {
    /// The next message, `Ok(None)` at the end of the stream.
    pub async fn message(&mut self) -> Result<Option<T>, Error> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }
}

impl<T: Message> Stream for Streaming<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().inner {
            Inner::Typed(stream) => stream.as_mut().poll_next(cx),
            Inner::Wire(wire) => {
                if wire.failed {
                    return Poll::Ready(None);
                }
                let item = match wire.source.poll_message(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Ready(Some(item)) => item,
                };
                let result = item
                    .and_then(|bytes| wire.codec.decode::<T>(bytes, wire.descriptor.as_ref()))
                    .and_then(|mut message| {
                        if let Some(hooks) = &mut wire.hooks {
                            hooks.run(&mut message)?;
                        }
                        Ok(message)
                    });
                if result.is_err() {
                    wire.failed = true;
                }
                Poll::Ready(Some(result))
            }
        }
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Streaming")
    }
}
