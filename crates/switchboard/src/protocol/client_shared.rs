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

/// Frames request messages as they are produced.
pub(crate) struct RequestFrames {
    pub(crate) messages:
        std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<Bytes, Error>> + Send>>,
    pub(crate) compression: Option<Arc<dyn Compressor>>,
    pub(crate) policy: CompressionPolicy,
    pub(crate) message_compression: MessageCompression,
}

impl FrameSource for RequestFrames {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        loop {
            return match self.messages.as_mut().poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(error))) => {
                    // The request cannot go on; end the body and let the response tell.
                    tracing::debug!(%error, "request message could not be sent");
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Ok(payload))) => {
                    let Ok((compressed, payload)) = compress(
                        self.compression.as_ref(),
                        self.policy,
                        &self.message_compression,
                        payload,
                    ) else {
                        continue;
                    };
                    let mut buf = BytesMut::with_capacity(PREFIX_LEN + payload.len());
                    if put_prefix(
                        &mut buf,
                        if compressed { FLAG_COMPRESSED } else { 0 },
                        payload.len(),
                    )
                    .is_err()
                    {
                        return Poll::Ready(None);
                    }
                    buf.extend_from_slice(&payload);
                    Poll::Ready(Some(Frame::data(buf.freeze())))
                }
            };
        }
    }
}
