//! What the fuzz targets share: reading structured choices from the fuzzer's bytes, a
//! runtime, and a body that arrives in fuzzer-chosen chunks.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::BodyExt as _;

/// Reads choices from the front of the fuzzer's input; what is left is the payload.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// One byte (0 when the input is exhausted).
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    /// One of `choices`.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.byte() as usize % choices.len()]
    }

    /// A string of up to `max` bytes (lossy UTF-8).
    pub fn text(&mut self, max: usize) -> String {
        let len = (self.byte() as usize).min(max).min(self.0.len());
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(text).into_owned()
    }

    /// The rest of the input.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

/// A router serving health (unary and server streaming) and reflection (bidi), built once.
pub fn router() -> &'static switchboard::server::Router {
    static ROUTER: OnceLock<switchboard::server::Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let (reporter, health) = switchboard_health::health();
        reporter.set_serving("");
        let router = switchboard::server::Router::new().add_service(health);
        switchboard_reflection::Reflection::from_router(&router)
            .expect("descriptors")
            .mount(router)
    })
}

/// One current-thread runtime for every run (building one per input would dominate).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime")
    })
}

/// `data` as a body arriving in chunks of `stride` bytes (1-256), then optional trailers.
pub fn chunked_body(
    data: &[u8],
    stride: u8,
    trailers: Option<http::HeaderMap>,
) -> switchboard::Body {
    let stride = usize::from(stride).max(1);
    let mut frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = data
        .chunks(stride)
        .map(|chunk| Ok(http_body::Frame::data(Bytes::copy_from_slice(chunk))))
        .collect();
    if let Some(trailers) = trailers {
        frames.push(Ok(http_body::Frame::trailers(trailers)));
    }
    switchboard::Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )))
}

/// Reads a response body to its end, for at most 64 frames (a stream may never end).
pub async fn drain<B>(body: B)
where
    B: http_body::Body + Unpin,
{
    let mut body = body;
    for _ in 0..64 {
        match body.frame().await {
            Some(Ok(_)) => continue,
            _ => return,
        }
    }
}
