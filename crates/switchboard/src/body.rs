//! The HTTP body type switchboard produces, and the boxing of bodies it consumes.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};

use crate::Error;

/// Any error a body can produce, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A body whose bytes break its own encoding (invalid gRPC-Web-text base64): the sender's
/// mistake, reported with the code for malformed input rather than as a broken transport.
#[derive(Debug)]
pub(crate) struct MalformedBody(pub(crate) String);

impl std::fmt::Display for MalformedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MalformedBody {}

type DynBody = Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + 'static>>;

/// The body of every HTTP message switchboard writes: server responses and client requests.
///
/// A whole message (the common unary case) is held inline with no boxing; streams are boxed.
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    /// A whole message followed by one last frame (trailers, or gRPC-Web's trailers
    /// envelope): a unary gRPC reply, with no stream machinery and no boxing.
    Framed {
        data: Option<Bytes>,
        end: Option<Frame<Bytes>>,
    },
    Dyn(DynBody),
}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body of exactly these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Body::empty();
        }
        Body {
            kind: Kind::Full(Some(bytes)),
        }
    }

    /// A body of `data`, then `end` (trailers or a last chunk).
    pub(crate) fn framed(data: Bytes, end: Frame<Bytes>) -> Self {
        Body {
            kind: Kind::Framed {
                data: Some(data),
                end: Some(end),
            },
        }
    }

    /// A body from any other body.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        Body {
            kind: Kind::Dyn(box_body(body)),
        }
    }
}

/// Boxes a body, turning its data into `Bytes` (free when it already is) and its error into
/// [`BoxError`].
pub(crate) fn box_body<B>(body: B) -> DynBody
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Box::pin(MapBody { inner: body })
}

pin_project_lite::pin_project! {
    struct MapBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for MapBody<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().inner.poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(
                frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
            ))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Framed { data, end } => {
                Poll::Ready(data.take().map(Frame::data).or_else(|| end.take()).map(Ok))
            }
            Kind::Dyn(body) => body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Framed { data, end } => data.is_none() && end.is_none(),
            Kind::Dyn(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Framed { data, end } => {
                let len = |bytes: &Bytes| bytes.len() as u64;
                let data = data.as_ref().map_or(0, len);
                match end {
                    // Trailers follow: no exact size, so no `content-length` is derived
                    // for a gRPC response.
                    Some(end) if end.is_trailers() => {
                        let mut hint = SizeHint::new();
                        hint.set_lower(data);
                        hint
                    }
                    end => SizeHint::with_exact(
                        data + end.as_ref().and_then(Frame::data_ref).map_or(0, len),
                    ),
                }
            }
            Kind::Dyn(body) => body.size_hint(),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Full(bytes) => write!(
                f,
                "Body::Full({} bytes)",
                bytes.as_ref().map_or(0, Bytes::len)
            ),
            Kind::Framed { data, .. } => write!(
                f,
                "Body::Framed({} bytes)",
                data.as_ref().map_or(0, Bytes::len)
            ),
            Kind::Dyn(_) => f.write_str("Body::Stream"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::full(bytes)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::full(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::full(Bytes::from_static(s.as_bytes()))
    }
}

/// A body of messages produced one at a time by a closure-like source, ending with optional
/// HTTP trailers, or with an error. Protocol writers implement [`FrameSource`] and wrap it
/// here.
///
/// An error ends the body *as failed*: hyper then resets the HTTP/2 stream (RST_STREAM) or
/// aborts the HTTP/1.1 connection instead of writing a clean end, so the peer can never take
/// a stream that lost a message for a complete, shorter one.
pub(crate) struct SourceBody<S> {
    source: S,
    done: bool,
}

/// Produces the frames of a streamed body.
pub(crate) trait FrameSource: Send + 'static {
    /// The next chunk of bytes, trailers, the end, or a failure that ends the body.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>>;
}

impl<S: FrameSource> SourceBody<S> {
    pub(crate) fn new(source: S) -> Self {
        SourceBody {
            source,
            done: false,
        }
    }
}

impl<S: FrameSource + Unpin> http_body::Body for SourceBody<S> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.source.poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                this.done = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
