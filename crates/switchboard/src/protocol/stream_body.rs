//! The response body of a streamed reply, shared by the enveloped protocols: it pulls encoded
//! messages from the handler's stream as the peer reads, compresses and frames them, enforces
//! the deadline and the send limit, and lets the protocol write the end of the stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;

use super::frame_encoded;
use crate::Error;
use crate::body::FrameSource;
use crate::call::Outbound;
use crate::compression::{CompressionPolicy, Compressor, MessageCompression};
use crate::envelope::Encoded;
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

    fn frame_message(&self, payload: Encoded) -> Result<Bytes, Error> {
        check_send_limit(payload.len(), self.send_max_bytes)?;
        frame_encoded(
            self.compression.as_ref(),
            self.policy,
            &self.message_compression,
            payload,
        )
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
        let first = match self.next_framed(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(first)) => first,
            Poll::Ready(Err(error)) => return self.finish(cx, error),
        };
        let mut batch: Option<BytesMut> = None;
        while batch.as_ref().map_or(first.len(), BytesMut::len) < COALESCE_BYTES {
            match self.next_framed(cx) {
                Poll::Pending => break,
                Poll::Ready(Ok(next)) => batch
                    .get_or_insert_with(|| {
                        // Room for the whole batch at once: growing it message by message
                        // reallocated and copied it several times per batch.
                        let mut batch = BytesMut::with_capacity(COALESCE_BYTES + next.len());
                        batch.extend_from_slice(&first);
                        batch
                    })
                    .extend_from_slice(&next),
                Poll::Ready(Err(error)) => {
                    self.ended = Some(error);
                    break;
                }
            }
        }
        Poll::Ready(Some(Frame::data(batch.map_or(first, BytesMut::freeze))))
    }
}

impl<E: StreamEnd> StreamingBody<E> {
    /// The next message, framed; or how the stream ended (`None`: cleanly).
    fn next_framed(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, Option<Error>>> {
        match self.outbound.messages.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Err(None)),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Err(Some(error))),
            Poll::Ready(Some(Ok(payload))) => {
                Poll::Ready(self.frame_message(payload).map_err(Some))
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
        let outbound = Outbound {
            messages: Box::pin(futures_util::stream::iter(messages)),
            trailers: HeaderMap::new(),
            stream_trailers: None,
            deadline: None,
            ender: crate::interceptor::CallEnder::default(),
        };
        SourceBody::new(StreamingBody::new(
            outbound,
            None,
            CompressionPolicy::default(),
            MessageCompression::default(),
            usize::MAX,
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
}
