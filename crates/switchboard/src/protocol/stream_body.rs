//! The response body of a streamed reply, shared by the enveloped protocols: it pulls encoded
//! messages from the handler's stream as the peer reads, compresses and frames them, enforces
//! the deadline and the send limit, and lets the protocol write the end of the stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;

use super::{Outbound, frame_encoded};
use crate::body::FrameSource;
use crate::compression::{CompressionPolicy, Compressor, MessageCompression};
use crate::envelope::Encoded;
use crate::{Code, Error};

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
    done: bool,
}

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
            done: false,
        }
    }

    fn finish(&mut self, error: Option<Error>) -> Frame<Bytes> {
        self.done = true;
        self.sleep = None;
        if let Some(observer) = self.outbound.observer.take() {
            let for_observer = error.clone();
            tokio::spawn(async move { observer.end(for_observer.as_ref()).await });
        }
        let trailers = std::mem::take(&mut self.outbound.trailers);
        self.end.end(error.as_ref(), trailers)
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
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(sleep) = &mut self.sleep {
            if sleep.as_mut().poll(cx).is_ready() {
                let error = Error::new(Code::DeadlineExceeded, "the call's deadline passed");
                return Poll::Ready(Some(self.finish(Some(error))));
            }
        }
        match self.outbound.messages.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Some(self.finish(None))),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(self.finish(Some(error)))),
            Poll::Ready(Some(Ok(payload))) => match self.frame_message(payload) {
                Ok(framed) => Poll::Ready(Some(Frame::data(framed))),
                Err(error) => Poll::Ready(Some(self.finish(Some(error)))),
            },
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
