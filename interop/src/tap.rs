//! A client transport that watches responses on the wire, so that the interop client can check
//! what `server_compressed_unary` and `server_compressed_streaming` ask for: whether each
//! response message carried the compressed flag (for Connect unary responses, which have no
//! envelope, whether the body came with a `Content-Encoding`). It reads the bytes as they go
//! by and changes nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// What was seen of one response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The response's content type.
    pub content_type: String,
    /// For each message, in order: whether it arrived compressed.
    pub compressed: Vec<bool>,
}

/// Wraps a transport (a tower service); clones share what they observed.
#[derive(Clone, Debug)]
pub struct Tap<T> {
    inner: T,
    log: Arc<Mutex<Vec<Arc<Mutex<Observed>>>>>,
}

impl<T> Tap<T> {
    /// Watches the responses of `inner`.
    pub fn new(inner: T) -> Self {
        Tap {
            inner,
            log: Arc::default(),
        }
    }

    /// What was seen of every response so far, oldest first.
    pub fn observed(&self) -> Vec<Observed> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .map(|o| o.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// Forgets what was seen.
    pub fn clear(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<T, B> tower_service::Service<http::Request<switchboard::Body>> for Tap<T>
where
    T: tower_service::Service<http::Request<switchboard::Body>, Response = http::Response<B>>,
    T::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
{
    type Response = http::Response<TapBody<B>>;
    type Error = T::Error;
    type Future = BoxFuture<Result<Self::Response, T::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<switchboard::Body>) -> Self::Future {
        let response = self.inner.call(request);
        let log = self.log.clone();
        Box::pin(async move {
            let (parts, body) = response.await?.into_parts();
            let content_type = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            let enveloped = ["application/grpc", "application/connect+"]
                .iter()
                .any(|prefix| content_type.starts_with(prefix));
            let mut observed = Observed {
                content_type,
                compressed: Vec::new(),
            };
            if !enveloped && parts.status == http::StatusCode::OK {
                // A Connect unary response: the body is the message, compressed as a whole.
                let encoding = parts
                    .headers
                    .get(http::header::CONTENT_ENCODING)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("identity");
                observed.compressed.push(encoding != "identity");
            }
            let observed = Arc::new(Mutex::new(observed));
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(observed.clone());
            let body = TapBody {
                inner: body,
                envelopes: Envelopes {
                    enabled: enveloped,
                    ..Envelopes::default()
                },
                observed,
            };
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the flags of the envelopes going through it.
    pub struct TapBody<B> {
        #[pin]
        inner: B,
        envelopes: Envelopes,
        observed: Arc<Mutex<Observed>>,
    }
}

impl<B: Body<Data = Bytes>> Body for TapBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.envelopes.feed(data, this.observed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Follows the 5-byte envelope prefixes (flags, big-endian length) of a body.
#[derive(Debug, Default)]
struct Envelopes {
    enabled: bool,
    prefix: [u8; 5],
    filled: usize,
    /// Payload bytes of the current envelope still to pass.
    skip: usize,
}

/// Flags of envelopes that carry no message: Connect's end of stream, gRPC-Web's trailers.
const NOT_A_MESSAGE: u8 = 0x02 | 0x80;

impl Envelopes {
    fn feed(&mut self, mut data: &[u8], observed: &Mutex<Observed>) {
        if !self.enabled {
            return;
        }
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.filled).min(data.len());
            self.prefix[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == 5 {
                self.filled = 0;
                let flags = self.prefix[0];
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]);
                self.skip = len as usize;
                if flags & NOT_A_MESSAGE == 0 {
                    observed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .compressed
                        .push(flags & 0x01 != 0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_envelopes_across_chunks() {
        let observed = Mutex::new(Observed::default());
        let mut envelopes = Envelopes {
            enabled: true,
            ..Envelopes::default()
        };
        let mut wire = vec![1, 0, 0, 0, 3, 9, 9, 9, 0, 0, 0, 0, 1, 7];
        wire.extend_from_slice(&[0x80, 0, 0, 0, 2, b'a', b'b', 0x02, 0, 0, 0, 0]);
        for chunk in wire.chunks(2) {
            envelopes.feed(chunk, &observed);
        }
        assert_eq!(observed.lock().unwrap().compressed, [true, false]);
    }
}
