//! Client-side pieces every protocol shares: framing request messages, reading response
//! compression and metadata, and errors known only by their HTTP status.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body::Frame;

use crate::body::FrameSource;
use crate::compression::{CompressionPolicy, CompressionRegistry, Compressor, MessageCompression};
use crate::envelope::{FLAG_COMPRESSED, PREFIX_LEN, put_prefix};
use crate::metadata::is_reserved_header;
use crate::protocol::compress;
use crate::{Code, Error};

/// The response headers a user sees: everything the protocol does not reserve.
pub(crate) fn user_headers(all: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(all.len());
    for (name, value) in all {
        if !is_reserved_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// The error a response tells only by its HTTP status.
pub(crate) fn error_from_status(status: StatusCode) -> Error {
    Error::wire(
        Code::from_http_status(status),
        format!("HTTP status {status}"),
    )
}

/// The compression a response declares in header `name`; an algorithm this client did not
/// offer is an `internal` error.
pub(crate) fn response_compression(
    headers: &HeaderMap,
    name: &str,
    registry: &CompressionRegistry,
) -> Result<Option<Arc<dyn Compressor>>, Error> {
    match headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("") | Some("identity") => Ok(None),
        Some(encoding) => registry.get(encoding).cloned().map(Some).ok_or_else(|| {
            Error::new(
                Code::Internal,
                format!(
                    "the server used compression {encoding:?}, which this client does not support"
                ),
            )
        }),
    }
}

/// Where a request body records why it failed, so the call reports that local error to its
/// caller whatever the server answered to the cut-off stream.
///
/// A request stream that fails (a message over the send limit, an encoding or compression
/// error) resets the HTTP/2 stream or aborts the HTTP/1.1 connection; the response the caller
/// then sees is a transport error or whatever the server made of a reset. Neither is the
/// reason, so the client checks this slot first.
#[derive(Clone, Default)]
pub(crate) struct SendFailure(Arc<std::sync::Mutex<Option<Error>>>);

impl SendFailure {
    /// Records the first failure; later ones are consequences of it.
    pub(crate) fn record(&self, error: &Error) {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(error.clone());
        }
    }

    /// The recorded failure, if the request body failed.
    pub(crate) fn get(&self) -> Option<Error> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `result`, unless the request body failed: then that failure.
    pub(crate) fn or<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        match self.get() {
            Some(error) => Err(error),
            None => result,
        }
    }
}

/// Frames request messages as they are produced. A message that cannot be sent ends the body
/// with an error (never a clean, shorter stream) and is recorded in `failure`.
pub(crate) struct RequestFrames {
    pub(crate) messages:
        std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<Bytes, Error>> + Send>>,
    pub(crate) compression: Option<Arc<dyn Compressor>>,
    pub(crate) policy: CompressionPolicy,
    pub(crate) message_compression: MessageCompression,
    pub(crate) failure: SendFailure,
}

impl RequestFrames {
    fn frame(&self, payload: Bytes) -> Result<Bytes, Error> {
        let (compressed, payload) = compress(
            self.compression.as_ref(),
            self.policy,
            &self.message_compression,
            payload,
        )?;
        let mut buf = BytesMut::with_capacity(PREFIX_LEN + payload.len());
        put_prefix(
            &mut buf,
            if compressed { FLAG_COMPRESSED } else { 0 },
            payload.len(),
        )?;
        buf.extend_from_slice(&payload);
        Ok(buf.freeze())
    }
}

impl FrameSource for RequestFrames {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let framed = match self.messages.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(message)) => message.and_then(|payload| self.frame(payload)),
        };
        Poll::Ready(Some(match framed {
            Ok(frame) => Ok(Frame::data(frame)),
            Err(error) => {
                tracing::debug!(%error, "request message could not be sent; failing the request body");
                self.failure.record(&error);
                Err(error)
            }
        }))
    }
}
