//! Drives one `tower::Service` in process and counts what each call allocates.

use std::pin::pin;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt as _, Full};
use tower::Service;

use crate::counting::Snapshot;
use crate::wire::Prebuilt;

/// Frames a unary response can have (headers are not frames): data and trailers, with
/// room to spare, reserved before the counted window so collecting never allocates.
const FRAME_ROOM: usize = 16;

/// Calls and counts.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Calls made (and verified) before counting starts: lazily built state, pools and
    /// caches settle here.
    pub warmup: u64,
    /// Calls counted.
    pub calls: u64,
}

/// Makes `plan.warmup + plan.calls` calls of `case` on `service`, verifying every
/// response, and returns the allocations of the counted calls.
///
/// The counted window of one call opens just before `service.call(request)` and closes
/// when the response body has yielded its last frame (data and trailers). It includes the
/// service's future, routing, decoding, the handler, encoding and the response body;
/// it excludes building the request (headers and a `Bytes` clone of the body), waiting for
/// readiness, verifying the response, and dropping it (frees are not allocations).
pub async fn measure<S, B>(service: &mut S, case: &Prebuilt, plan: Plan) -> Result<Snapshot, String>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut frames: Vec<Frame<Bytes>> = Vec::with_capacity(FRAME_ROOM);
    let mut total = Snapshot::default();
    for index in 0..plan.warmup + plan.calls {
        let request = case.request();
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(|error| format!("service not ready: {error:?}"))?;

        let before = Snapshot::now();
        let response = service
            .call(request)
            .await
            .map_err(|error| format!("call failed: {error:?}"))?;
        let (parts, body) = response.into_parts();
        let mut body = pin!(body);
        while let Some(frame) = body.as_mut().frame().await {
            let frame = frame.map_err(|error| format!("response body failed: {error:?}"))?;
            if frames.len() == FRAME_ROOM {
                return Err("more response frames than a unary call should have".into());
            }
            frames.push(frame);
        }
        let after = Snapshot::now();

        case.verify(parts.status, &frames)
            .map_err(|error| format!("call {index}: {error}"))?;
        frames.clear();
        if index >= plan.warmup {
            total.add(after.since(before));
        }
    }
    Ok(total)
}
