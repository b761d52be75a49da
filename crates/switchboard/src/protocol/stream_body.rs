//! The response body of a streamed reply, shared by the enveloped protocols: it pulls encoded
//! messages from the handler's stream as the peer reads, compresses and frames them, enforces
//! the deadline and the send limit, and lets the protocol write the end of the stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;

use super::frame_in_place;
use crate::Error;
use crate::body::FrameSource;
use crate::call::Outbound;
use crate::compression::{CompressionPolicy, Compressor, MessageCompression};
use crate::envelope::PREFIX_LEN;
use crate::interceptor::EndFuture;

/// How a protocol ends a stream: Connect writes an end-of-stream envelope, gRPC writes HTTP
/// trailers, gRPC-Web a trailers envelope.
pub(crate) trait StreamEnd: Send + Unpin + 'static {
    fn end(&mut self, error: Option<&Error>, trailers: HeaderMap) -> Frame<Bytes>;
}

pub(crate) struct StreamingBody<E> {
    outbound: Outbound,
    compression: Option<Arc<dyn Compressor>>,
    policy: CompressionPolicy,
    message_compression: MessageCompression,
    send_max_bytes: usize,
    end: E,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The message stream ended (with this error, if any) while a batch of messages was being
    /// gathered; the end is written on the next poll, after the batch.
    ended: Option<Option<Error>>,
    /// The interceptors' end of the call, running; the protocol's end frame waits for it and
    /// is built from the status and trailers it leaves.
    ending: Option<EndFuture>,
    done: bool,
}

/// How many bytes of messages that are ready at once go out in one chunk. Small messages a
/// handler produces faster than the peer reads are written together instead of as one HTTP/2
/// DATA frame (or HTTP/1.1 chunk) each, which costs far more than the copy; a message that is
/// not ready yet is never waited for.
const COALESCE_BYTES: usize = 16 * 1024;

impl<E: StreamEnd> StreamingBody<E> {
    pub(crate) fn new(
        outbound: Outbound,
        compression: Option<Arc<dyn Compressor>>,
        policy: CompressionPolicy,
        message_compression: MessageCompression,
        send_max_bytes: usize,
        end: E,
    ) -> Self {
        let sleep = outbound
            .deadline
            .map(|d| Box::pin(tokio::time::sleep_until(d.into())));
        StreamingBody {
            outbound,
            compression,
            policy,
            message_compression,
            send_max_bytes,
            end,
            sleep,
            ended: None,
            ending: None,
            done: false,
        }
    }

    /// Ends the stream: the protocol's end frame, written once the interceptors' end hooks
    /// have run (so they see the end before the peer does, exactly once, and may still change
    /// the status and trailers).
    fn finish(&mut self, cx: &mut Context<'_>, error: Option<Error>) -> Poll<Option<Frame<Bytes>>> {
        self.sleep = None;
        let mut trailers = std::mem::take(&mut self.outbound.trailers);
        if let Some(late) = self.outbound.stream_trailers.take() {
            trailers.extend(late.take());
        }
        self.ending = Some(self.outbound.ender.end(error, Some(trailers)));
        self.poll_ending(cx)
    }

    fn poll_ending(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        let Some(ending) = &mut self.ending else {
            return Poll::Ready(None);
        };
        let (error, trailers) = std::task::ready!(std::pin::Pin::new(ending).poll(cx));
        self.ending = None;
        self.done = true;
        Poll::Ready(Some(
            self.end.end(error.as_ref(), trailers.unwrap_or_default()),
        ))
    }

    /// Frames the message the source just appended to `batch` at `start`: writes its prefix
    /// in place, or replaces it with its compressed form. On an error the message is removed.
    fn frame_appended(&self, batch: &mut BytesMut, start: usize) -> Result<(), Error> {
        let len = batch.len() - start - PREFIX_LEN;
        let framed = check_send_limit(len, self.send_max_bytes).and_then(|()| {
            frame_in_place(
                self.compression.as_ref(),
                self.policy,
                &self.message_compression,
                batch,
                start,
            )
        });
        if framed.is_err() {
            batch.truncate(start);
        }
        framed
    }
}

impl<E: StreamEnd> FrameSource for StreamingBody<E> {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        // Every failure of the call is told to the peer the protocol's way (an end-of-stream
        // message or trailers with the status), so this body itself never fails.
        self.poll_protocol_frame(cx).map(|frame| frame.map(Ok))
    }
}

impl<E: StreamEnd> StreamingBody<E> {
    fn poll_protocol_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.ending.is_some() {
            return self.poll_ending(cx);
        }
        if let Some(sleep) = &mut self.sleep {
            if sleep.as_mut().poll(cx).is_ready() {
                return self.finish(cx, Some(Error::deadline_exceeded()));
            }
        }
        if let Some(error) = self.ended.take() {
            return self.finish(cx, error);
        }
        // The first message ready is encoded into a buffer of its size; when more are ready
        // at once, the buffer grows by a whole batch and they are encoded after it, so a
        // burst of small messages shares one allocation and is never copied.
        let mut batch = BytesMut::new();
        match self.next_framed(cx, &mut batch, 0) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => return self.finish(cx, error),
        }
        while batch.len() < COALESCE_BYTES {
            match self.next_framed(cx, &mut batch, COALESCE_BYTES) {
                Poll::Pending => break,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => {
                    self.ended = Some(error);
                    break;
                }
            }
        }
        Poll::Ready(Some(Frame::data(batch.freeze())))
    }
}

impl<E: StreamEnd> StreamingBody<E> {
    /// Appends the next message, framed, to `batch`; or how the stream ended (`None`:
    /// cleanly).
    fn next_framed(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut BytesMut,
        reserve: usize,
    ) -> Poll<Result<(), Option<Error>>> {
        let start = batch.len();
        match self
            .outbound
            .messages
            .as_mut()
            .poll_encode(cx, batch, reserve)
        {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Err(None)),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Err(Some(error))),
            Poll::Ready(Some(Ok(()))) => {
                Poll::Ready(self.frame_appended(batch, start).map_err(Some))
            }
        }
    }
}

use std::future::Future as _;

/// Refuses a message larger than the configured send limit.
pub(crate) fn check_send_limit(len: usize, send_max_bytes: usize) -> Result<(), Error> {
    if len > send_max_bytes {
        return Err(Error::resource_exhausted(format!(
            "message size {len} exceeds send limit {send_max_bytes}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::SourceBody;
    use crate::envelope::Encoded;
    use http_body_util::BodyExt as _;

    struct TrailersEnd;

    impl StreamEnd for TrailersEnd {
        fn end(&mut self, error: Option<&Error>, mut trailers: HeaderMap) -> Frame<Bytes> {
            let status = if error.is_some() { "failed" } else { "ok" };
            trailers.insert("x-end", http::HeaderValue::from_static(status));
            Frame::trailers(trailers)
        }
    }

    fn body_of(messages: Vec<Result<Encoded, Error>>) -> SourceBody<StreamingBody<TrailersEnd>> {
        body_with(messages, None, usize::MAX, usize::MAX)
    }

    /// A stand-in algorithm that reverses the bytes, so a compressed message is told apart.
    #[derive(Debug)]
    struct Reverse;

    impl Compressor for Reverse {
        fn name(&self) -> &'static str {
            "reverse"
        }
        fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
            out.extend(input.iter().rev());
            Ok(())
        }
        fn decompress(
            &self,
            input: &[u8],
            _limit: usize,
        ) -> Result<Bytes, crate::compression::DecompressError> {
            Ok(input.iter().rev().copied().collect())
        }
    }

    fn body_with(
        messages: Vec<Result<Encoded, Error>>,
        compression: Option<Arc<dyn Compressor>>,
        min_compressed: usize,
        send_max_bytes: usize,
    ) -> SourceBody<StreamingBody<TrailersEnd>> {
        let outbound = Outbound {
            messages: Box::pin(futures_util::stream::iter(messages)),
            trailers: HeaderMap::new(),
            stream_trailers: None,
            deadline: None,
            ender: crate::interceptor::CallEnder::default(),
        };
        SourceBody::new(StreamingBody::new(
            outbound,
            compression,
            CompressionPolicy {
                min_bytes: min_compressed,
            },
            MessageCompression::default(),
            send_max_bytes,
            TrailersEnd,
        ))
    }

    async fn frames(
        mut body: SourceBody<StreamingBody<TrailersEnd>>,
    ) -> (Vec<Bytes>, Option<HeaderMap>) {
        let mut data = Vec::new();
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            match frame.unwrap().into_data() {
                Ok(chunk) => data.push(chunk),
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        (data, trailers)
    }

    #[tokio::test]
    async fn ready_messages_go_out_in_one_chunk_before_the_end() {
        let messages = ["a", "bc", "def"]
            .iter()
            .map(|m| Ok(Encoded::copy_from(m.as_bytes())))
            .collect();
        let (data, trailers) = frames(body_of(messages)).await;
        assert_eq!(
            data,
            vec![Bytes::from_static(
                b"\0\0\0\0\x01a\0\0\0\0\x02bc\0\0\0\0\x03def"
            )]
        );
        assert_eq!(trailers.unwrap()["x-end"], "ok");
    }

    #[tokio::test]
    async fn an_error_after_ready_messages_ends_the_stream_after_them() {
        let messages = vec![
            Ok(Encoded::copy_from(b"a")),
            Err(Error::internal("boom")),
            Ok(Encoded::copy_from(b"never sent")),
        ];
        let (data, trailers) = frames(body_of(messages)).await;
        assert_eq!(data, vec![Bytes::from_static(b"\0\0\0\0\x01a")]);
        assert_eq!(trailers.unwrap()["x-end"], "failed");
    }

    #[tokio::test]
    async fn batches_stop_near_the_coalescing_size() {
        let big = vec![7u8; COALESCE_BYTES / 2 + 1];
        let messages = (0..3).map(|_| Ok(Encoded::copy_from(&big))).collect();
        let (data, _) = frames(body_of(messages)).await;
        let sizes: Vec<usize> = data.iter().map(Bytes::len).collect();
        let framed = big.len() + 5;
        assert_eq!(sizes, vec![2 * framed, framed]);
    }

    #[tokio::test]
    async fn compressed_and_plain_messages_share_a_batch() {
        let messages = ["ab", "cdef", "g"]
            .iter()
            .map(|m| Ok(Encoded::copy_from(m.as_bytes())))
            .collect();
        // Messages of 3 bytes or more are compressed (here: reversed).
        let body = body_with(messages, Some(Arc::new(Reverse)), 3, usize::MAX);
        let (data, trailers) = frames(body).await;
        assert_eq!(
            data,
            vec![Bytes::from_static(
                b"\0\0\0\0\x02ab\x01\0\0\0\x04fedc\0\0\0\0\x01g"
            )]
        );
        assert_eq!(trailers.unwrap()["x-end"], "ok");
    }

    #[tokio::test]
    async fn a_message_over_the_send_limit_ends_the_stream_after_the_ones_before() {
        let messages = vec![
            Ok(Encoded::copy_from(b"ok")),
            Ok(Encoded::copy_from(b"far too long")),
            Ok(Encoded::copy_from(b"never sent")),
        ];
        let (data, trailers) = frames(body_with(messages, None, usize::MAX, 4)).await;
        assert_eq!(data, vec![Bytes::from_static(b"\0\0\0\0\x02ok")]);
        assert_eq!(trailers.unwrap()["x-end"], "failed");
    }
}
