//! Reading bodies: the 5-byte envelope framing shared by every streaming protocol, and whole
//! unary bodies, both bounded by a size limit checked before any allocation.
//!
//! An envelope is one flags byte, a big-endian `u32` length, then that many bytes. The
//! reader never trusts the length prefix: a prefix above the limit is refused before a byte
//! of the message is buffered, and buffers grow only as data actually arrives. Whole
//! envelopes inside one received chunk are sliced out without copying.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::HeaderMap;
use http_body::Body as _;

use crate::body::BoxError;
use crate::{Code, Error};

/// Flag bit: the payload is compressed.
pub(crate) const FLAG_COMPRESSED: u8 = 0b0000_0001;
/// Flag bit (Connect): the payload is the end-of-stream message.
pub(crate) const FLAG_END_STREAM: u8 = 0b0000_0010;
/// Length of the envelope prefix.
pub(crate) const PREFIX_LEN: usize = 5;

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) flags: u8,
    pub(crate) data: Bytes,
}

impl Envelope {
    pub(crate) fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
}

/// An encoded outgoing message with [`PREFIX_LEN`] bytes of headroom in front of it, so
/// that framing an uncompressed message writes its prefix in place instead of copying the
/// message into a new buffer (the common case: most messages are below the compression
/// threshold).
#[derive(Debug)]
pub(crate) struct Encoded {
    /// `PREFIX_LEN` bytes of headroom, then the message.
    buf: BytesMut,
}

impl Encoded {
    /// An empty message with room reserved for `capacity` bytes of it.
    #[cfg(test)]
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(PREFIX_LEN + capacity);
        buf.put_bytes(0, PREFIX_LEN);
        Encoded { buf }
    }

    /// A copy of an already encoded message.
    #[cfg(test)]
    pub(crate) fn copy_from(message: &[u8]) -> Self {
        let mut encoded = Encoded::with_capacity(message.len());
        encoded.buf.extend_from_slice(message);
        encoded
    }

    /// A message encoded into `buf` after [`PREFIX_LEN`] bytes of headroom.
    pub(crate) fn from_headroom_buf(buf: BytesMut) -> Self {
        debug_assert!(
            buf.len() >= PREFIX_LEN,
            "the headroom is part of the buffer"
        );
        Encoded { buf }
    }

    /// Appends the headroom and the message to `buf`: moved when `buf` is empty, else copied
    /// (growing `buf` by at least `reserve` bytes if it must grow).
    pub(crate) fn append_to(self, buf: &mut BytesMut, reserve: usize) {
        if buf.is_empty() {
            *buf = self.buf;
        } else {
            buf.reserve(self.buf.len().max(reserve));
            buf.extend_from_slice(&self.buf);
        }
    }

    /// The message's length.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - PREFIX_LEN
    }

    /// The message.
    pub(crate) fn message(&self) -> &[u8] {
        &self.buf[PREFIX_LEN..]
    }

    /// The message alone, without copying it.
    pub(crate) fn into_message(mut self) -> Bytes {
        self.buf.advance(PREFIX_LEN);
        self.buf.freeze()
    }

    /// The message in its envelope, the prefix written into the headroom.
    pub(crate) fn into_frame(mut self, flags: u8) -> Result<Bytes, Error> {
        let len = self.len();
        let mut prefix = &mut self.buf[..PREFIX_LEN];
        put_prefix(&mut prefix, flags, len)?;
        Ok(self.buf.freeze())
    }
}

/// Writes the 5-byte prefix for a payload of `len` bytes.
pub(crate) fn put_prefix(buf: &mut impl BufMut, flags: u8, len: usize) -> Result<(), Error> {
    let len = u32::try_from(len).map_err(|_| {
        Error::resource_exhausted(format!("message of {len} bytes is too large to frame"))
    })?;
    buf.put_u8(flags);
    buf.put_u32(len);
    Ok(())
}

/// Frames `payload` into a fresh buffer.
pub(crate) fn frame(flags: u8, payload: &[u8]) -> Result<Bytes, Error> {
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + payload.len());
    put_prefix(&mut buf, flags, payload.len())?;
    buf.extend_from_slice(payload);
    Ok(buf.freeze())
}

type DynBody = Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + 'static>>;

/// Which side reads: it decides the codes of malformed input (the server blames the client's
/// request, the client blames the server's response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    Client,
}

impl Side {
    fn malformed_code(self) -> Code {
        match self {
            Side::Server => Code::InvalidArgument,
            Side::Client => Code::Internal,
        }
    }

    fn transport_code(self) -> Code {
        match self {
            Side::Server => Code::Canceled,
            Side::Client => Code::Unavailable,
        }
    }
}

/// Reads a body as envelopes or as one whole message, remembering HTTP trailers.
pub(crate) struct BodyReader {
    body: DynBody,
    /// The unconsumed rest of the last data frame.
    chunk: Bytes,
    /// A partially received envelope (prefix included).
    partial: BytesMut,
    /// A unary body received as one chunk, kept without copying.
    whole: Option<Bytes>,
    trailers: Option<HeaderMap>,
    eof: bool,
    side: Side,
    /// Where the unread rest of a server's request body goes when the reader is dropped
    /// before the end, while the reply has not started (see [`UnreadBody`]).
    unread: Option<UnreadBody>,
    /// The slowest a message that has started arriving may continue (server side).
    min_rate: Option<MinRate>,
    /// The time spent waiting for the rest of the message being received, once it is slow
    /// enough to be measured.
    clock: Option<Box<SlowClock>>,
}

/// The slowest a request message may arrive once it has started: after `grace` of waiting for
/// its bytes, at least `bytes_per_second` on average. Stops a peer that holds a call (and its
/// buffers) open by trickling a body a byte at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MinRate {
    pub(crate) grace: Duration,
    pub(crate) bytes_per_second: u64,
}

impl MinRate {
    /// How long the reader may wait in all for a message of which `received` bytes arrived.
    fn allowed_wait(&self, received: usize) -> Duration {
        self.grace + Duration::from_secs_f64(received as f64 / self.bytes_per_second.max(1) as f64)
    }
}

/// Waiting time spent on the message being received.
struct SlowClock {
    waited: Duration,
    pending_since: Option<std::time::Instant>,
    alarm: Pin<Box<tokio::time::Sleep>>,
}

impl BodyReader {
    pub(crate) fn new(body: DynBody, side: Side) -> Self {
        BodyReader {
            body,
            chunk: Bytes::new(),
            partial: BytesMut::new(),
            whole: None,
            trailers: None,
            eof: false,
            side,
            unread: None,
            min_rate: None,
            clock: None,
        }
    }

    /// Cuts a message that arrives slower than `rate` (see [`MinRate`]); `None` never does.
    pub(crate) fn with_min_rate(mut self, rate: Option<MinRate>) -> Self {
        self.min_rate = rate;
        self
    }

    /// Bytes of the message being received (an envelope or a unary body), not yet complete.
    fn received(&self) -> usize {
        self.partial.len() + self.whole.as_ref().map_or(0, Bytes::len)
    }

    /// The body has no data ready: fine while no message is half received; otherwise the
    /// wait counts against the message's [`MinRate`], and past it the read fails.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        let Some(rate) = self.min_rate else {
            return Poll::Pending;
        };
        let received = self.received();
        if received == 0 {
            return Poll::Pending;
        }
        let now = std::time::Instant::now();
        let clock = self.clock.get_or_insert_with(|| {
            Box::new(SlowClock {
                waited: Duration::ZERO,
                pending_since: None,
                alarm: Box::pin(tokio::time::sleep(rate.grace)),
            })
        });
        let allowed = rate.allowed_wait(received);
        if clock.waited < allowed {
            clock.pending_since = Some(now);
            let remaining = allowed - clock.waited;
            clock.alarm.as_mut().reset((now + remaining).into());
            if clock.alarm.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            clock.waited = allowed;
        }
        self.eof = true;
        Poll::Ready(Err(Error::new(
            Code::DeadlineExceeded,
            format!(
                "the request arrived too slowly: {received} bytes of a message in {:?} of \
                 waiting (at least {} bytes/s are needed after {:?})",
                clock.waited, rate.bytes_per_second, rate.grace
            ),
        )))
    }

    /// A server's reader that leaves a body it drops unread in `unread`, for the router to
    /// deal with before it replies.
    pub(crate) fn with_unread(mut self, unread: UnreadBody) -> Self {
        self.unread = Some(unread);
        self
    }

    /// Whether the body is known to be empty from here on without reading it (an HTTP/2
    /// HEADERS frame that ended the stream, or `content-length: 0`).
    pub(crate) fn is_end_stream(&self) -> bool {
        self.chunk.is_empty() && self.partial.is_empty() && (self.eof || self.body.is_end_stream())
    }

    /// Takes the HTTP trailers received at the end of the body (gRPC's status travels there).
    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// Puts a layer around the body not yet read (e.g. base64 decoding for gRPC-Web text).
    pub(crate) fn map_body(&mut self, layer: impl FnOnce(DynBody) -> DynBody) {
        let body = std::mem::replace(
            &mut self.body,
            crate::body::box_body(http_body_util::Empty::<Bytes>::new()),
        );
        self.body = layer(body);
    }

    /// Polls the next data chunk into `self.chunk`; `false` at end of body.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        if self.clock.is_some() {
            if self.received() == 0 {
                // The message it timed is complete.
                self.clock = None;
            } else if let Some(clock) = &mut self.clock {
                if let Some(since) = clock.pending_since.take() {
                    clock.waited += since.elapsed();
                }
            }
        }
        loop {
            if self.eof {
                return Poll::Ready(Ok(false));
            }
            match self.body.as_mut().poll_frame(cx) {
                Poll::Pending => return self.pending(cx),
                Poll::Ready(None) => {
                    self.eof = true;
                    return Poll::Ready(Ok(false));
                }
                Poll::Ready(Some(Err(e))) => {
                    self.eof = true;
                    return Poll::Ready(Err(body_error(self.side, e)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => {
                        self.chunk = data;
                        return Poll::Ready(Ok(true));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            match &mut self.trailers {
                                Some(existing) => existing.extend(trailers),
                                None => self.trailers = Some(trailers),
                            }
                        }
                    }
                },
            }
        }
    }

    /// The next envelope; `None` at a clean end of body. `limit` bounds the payload size.
    pub(crate) fn poll_envelope(
        &mut self,
        cx: &mut Context<'_>,
        limit: usize,
    ) -> Poll<Option<Result<Envelope, Error>>> {
        loop {
            if self.partial.is_empty() {
                // Fast path: a whole envelope sits in the current chunk.
                if self.chunk.len() >= PREFIX_LEN {
                    let len = declared_len(&self.chunk);
                    if let Err(e) = check_len(len, limit) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    if self.chunk.len() >= PREFIX_LEN + len {
                        let mut data = self.chunk.split_to(PREFIX_LEN + len);
                        let flags = data[0];
                        data.advance(PREFIX_LEN);
                        return Poll::Ready(Some(Ok(Envelope { flags, data })));
                    }
                    self.partial.reserve(PREFIX_LEN + len);
                }
                if !self.chunk.is_empty() {
                    let chunk = std::mem::take(&mut self.chunk);
                    self.partial.extend_from_slice(&chunk);
                }
            } else {
                // Slow path: complete the partial envelope from the chunk, byte-exact.
                let need = if self.partial.len() < PREFIX_LEN {
                    PREFIX_LEN - self.partial.len()
                } else {
                    let len = declared_len(&self.partial);
                    PREFIX_LEN + len - self.partial.len()
                };
                let take = need.min(self.chunk.len());
                if take > 0 {
                    let piece = self.chunk.split_to(take);
                    self.partial.extend_from_slice(&piece);
                }
                if self.partial.len() >= PREFIX_LEN {
                    let len = declared_len(&self.partial);
                    if let Err(e) = check_len(len, limit) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    if self.partial.len() == PREFIX_LEN + len {
                        let mut data = std::mem::take(&mut self.partial).freeze();
                        let flags = data[0];
                        data.advance(PREFIX_LEN);
                        return Poll::Ready(Some(Ok(Envelope { flags, data })));
                    }
                    self.partial.reserve(PREFIX_LEN + len - self.partial.len());
                }
                if !self.chunk.is_empty() {
                    continue;
                }
            }
            match self.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => {
                    if self.partial.is_empty() {
                        return Poll::Ready(None);
                    }
                    let got = self.partial.len();
                    self.partial.clear();
                    return Poll::Ready(Some(Err(Error::new(
                        self.side.malformed_code(),
                        format!(
                            "protocol error: incomplete envelope: body ended after {got} bytes of a message"
                        ),
                    ))));
                }
            }
        }
    }

    /// Reads the next envelope.
    #[cfg(test)]
    pub(crate) async fn next_envelope(&mut self, limit: usize) -> Option<Result<Envelope, Error>> {
        poll_fn(|cx| self.poll_envelope(cx, limit)).await
    }

    /// Reads the whole remaining body (a unary message), refusing more than `limit` bytes.
    pub(crate) async fn read_to_end(&mut self, limit: usize) -> Result<Bytes, Error> {
        poll_fn(|cx| self.poll_read_to_end(cx, limit)).await
    }

    /// Poll form of [`BodyReader::read_to_end`]. A body that arrives in one chunk is returned
    /// without copying; otherwise chunks accumulate in `self.partial` between polls.
    pub(crate) fn poll_read_to_end(
        &mut self,
        cx: &mut Context<'_>,
        limit: usize,
    ) -> Poll<Result<Bytes, Error>> {
        if self.partial.is_empty() && self.chunk.is_empty() && self.whole.is_none() {
            if let Some(exact) = self.body.size_hint().exact() {
                if exact > limit as u64 {
                    return Poll::Ready(Err(too_large(exact, limit)));
                }
            }
        }
        loop {
            if !self.chunk.is_empty() {
                let chunk = std::mem::take(&mut self.chunk);
                let total =
                    self.partial.len() + self.whole.as_ref().map_or(0, Bytes::len) + chunk.len();
                if total > limit {
                    return Poll::Ready(Err(too_large(total as u64, limit)));
                }
                if self.partial.is_empty() && self.whole.is_none() {
                    self.whole = Some(chunk);
                } else {
                    if let Some(first) = self.whole.take() {
                        self.partial.reserve(total);
                        self.partial.extend_from_slice(&first);
                    }
                    self.partial.extend_from_slice(&chunk);
                }
            }
            match self.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => {
                    let body = match self.whole.take() {
                        Some(whole) => whole,
                        None => std::mem::take(&mut self.partial).freeze(),
                    };
                    return Poll::Ready(Ok(body));
                }
            }
        }
    }

    /// Discards the rest of the body (so a connection can be reused), up to `limit` bytes;
    /// `true` when the body ended cleanly within the limit.
    pub(crate) async fn drain(&mut self, limit: usize) -> bool {
        let mut seen = self.chunk.len();
        self.chunk.clear();
        while seen <= limit {
            match poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(true) => {
                    seen += self.chunk.len();
                    self.chunk.clear();
                }
                Ok(false) => return true,
                Err(_) => return false,
            }
        }
        false
    }
}

/// The rest of an HTTP/1 request body that the call stopped reading before its reply
/// started (an early error: an over-limit message, a bad request, an unknown method).
///
/// HTTP/1 can only reuse the connection once the whole request has been read. Draining in
/// the background after the reply is not enough: when the rest turns out too large or too
/// slow, the server closes a connection the client has already put back in its pool, and the
/// client's next call on it fails with an unexpected EOF (a POST is never retried). So the
/// router takes the unread body from here before replying, drains it (bounded, as Go's
/// net/http does) and, if that does not reach the end, says `Connection: close` in the reply
/// so the client does not reuse the connection.
#[derive(Clone, Default)]
pub(crate) struct UnreadBody(std::sync::Arc<std::sync::Mutex<UnreadState>>);

#[derive(Default)]
enum UnreadState {
    /// The reply has not started; a dropped reader leaves its body here.
    #[default]
    Open,
    Left(DynBody),
    /// The reply has started: a reader dropped from now on drains in the background.
    Closed,
}

impl UnreadBody {
    /// Leaves `body` here if the reply has not started; otherwise gives it back.
    fn leave(&self, body: DynBody) -> Option<DynBody> {
        let mut state = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *state {
            UnreadState::Open => {
                *state = UnreadState::Left(body);
                None
            }
            _ => Some(body),
        }
    }

    /// The reply starts: from now on dropped readers drain in the background. Returns the
    /// body left unread so far, if any.
    fn close(&self) -> Option<DynBody> {
        let mut state = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match std::mem::replace(&mut *state, UnreadState::Closed) {
            UnreadState::Left(body) => Some(body),
            _ => None,
        }
    }

    /// Drains the body left unread, if any, before the reply goes out; `false` when it did
    /// not end within the bounds, so the connection must not be reused.
    pub(crate) async fn settle(&self) -> bool {
        match self.close() {
            Some(body) => drain_unread(body).await,
            None => true,
        }
    }
}

/// Reads and discards what is left of a server's request body, within [`DRAIN_MAX_BYTES`]
/// and [`DRAIN_MAX_TIME`]; `true` when it ended cleanly within them.
async fn drain_unread(body: DynBody) -> bool {
    // A client-side reader: it must not drain again when it is dropped in turn.
    let mut reader = BodyReader::new(body, Side::Client);
    tokio::time::timeout(DRAIN_MAX_TIME, reader.drain(DRAIN_MAX_BYTES))
        .await
        .unwrap_or(false)
}

/// How much of an unread request body the server still reads after answering, and for how
/// long: enough for a peer that is still sending (typically after an early error such as an
/// over-limit message) to finish writing and read the answer, instead of having the
/// connection closed under it. Go's net/http does the same.
const DRAIN_MAX_BYTES: usize = 256 * 1024;
const DRAIN_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for BodyReader {
    fn drop(&mut self) {
        if self.side != Side::Server || self.eof || self.body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut body = std::mem::replace(
            &mut self.body,
            crate::body::box_body(http_body_util::Empty::<Bytes>::new()),
        );
        if let Some(unread) = &self.unread {
            match unread.leave(body) {
                None => return,
                Some(back) => body = back,
            }
        }
        runtime.spawn(drain_unread(body));
    }
}

fn declared_len(prefix: &[u8]) -> usize {
    u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize
}

fn check_len(len: usize, limit: usize) -> Result<(), Error> {
    if len > limit {
        Err(too_large(len as u64, limit))
    } else {
        Ok(())
    }
}

pub(crate) fn too_large(len: u64, limit: usize) -> Error {
    Error::resource_exhausted(format!(
        "message size {len} is larger than configured max {limit}"
    ))
}

fn body_error(side: Side, error: BoxError) -> Error {
    // Bytes that break the body's own encoding are the sender's mistake; a hyper error tells
    // us when the peer went away; everything else is a transport failure.
    let code = if is_malformed(&*error) {
        side.malformed_code()
    } else {
        match error.downcast_ref::<hyper::Error>() {
            Some(e) if e.is_canceled() => Code::Canceled,
            _ => side.transport_code(),
        }
    };
    Error::from_source(code, error)
}

/// Whether a body failed because its bytes are malformed: our own decoders' [`MalformedBody`],
/// or HTTP/1.1 framing hyper could not parse (a bad chunk size line or extension, which it
/// reports as an I/O error of kind `InvalidData` or `InvalidInput`; a body cut short is
/// `UnexpectedEof`, the peer going away).
fn is_malformed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<crate::body::MalformedBody>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            ) {
                return true;
            }
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use http_body_util::StreamBody;

    fn reader_of(chunks: Vec<&'static [u8]>) -> BodyReader {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from_static(c))));
        let body = StreamBody::new(futures_util::stream::iter(frames));
        BodyReader::new(crate::body::box_body(body), Side::Server)
    }

    #[test]
    fn encoded_frames_in_place_and_unframes_without_the_headroom() {
        let encoded = Encoded::copy_from(b"hello");
        assert_eq!(encoded.len(), 5);
        assert_eq!(encoded.message(), b"hello");
        let framed = encoded.into_frame(FLAG_COMPRESSED).unwrap();
        assert_eq!(&framed[..], b"\x01\x00\x00\x00\x05hello");
        assert_eq!(&Encoded::copy_from(b"hi").into_message()[..], b"hi");
        let empty = Encoded::with_capacity(0).into_frame(0).unwrap();
        assert_eq!(&empty[..], b"\x00\x00\x00\x00\x00");
    }

    #[tokio::test]
    async fn envelopes_split_across_and_within_chunks() {
        let mut reader = reader_of(vec![
            b"\x00\x00\x00\x00\x02hi\x01\x00",
            b"\x00\x00\x03ab",
            b"c\x00\x00\x00\x00\x00",
        ]);
        let a = reader.next_envelope(100).await.unwrap().unwrap();
        assert_eq!((a.flags, &a.data[..]), (0, &b"hi"[..]));
        let b = reader.next_envelope(100).await.unwrap().unwrap();
        assert_eq!((b.flags, &b.data[..]), (1, &b"abc"[..]));
        let c = reader.next_envelope(100).await.unwrap().unwrap();
        assert!(c.data.is_empty());
        assert!(reader.next_envelope(100).await.is_none());
    }

    #[tokio::test]
    async fn a_huge_length_prefix_is_refused_before_allocation() {
        let mut reader = reader_of(vec![b"\x00\xff\xff\xff\xff"]);
        let err = reader.next_envelope(4 << 20).await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(reader.partial.capacity() < 1024);
    }

    #[tokio::test]
    async fn a_truncated_envelope_is_an_error() {
        let mut reader = reader_of(vec![b"\x00\x00\x00\x00\x05ab"]);
        let err = reader.next_envelope(100).await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let mut reader = reader_of(vec![b"\x00\x00"]);
        assert!(reader.next_envelope(100).await.unwrap().is_err());
    }

    #[tokio::test]
    async fn read_to_end_is_bounded() {
        let mut reader = reader_of(vec![b"abc", b"def"]);
        assert_eq!(&reader.read_to_end(6).await.unwrap()[..], b"abcdef");
        let mut reader = reader_of(vec![b"abc", b"defg"]);
        assert_eq!(
            reader.read_to_end(6).await.unwrap_err().code(),
            Code::ResourceExhausted
        );
    }
}
