//! [`Hooks`]: the simple form of an interceptor — start, each message, end — written as sugar
//! over the one wrapping model.

use std::any::Any;
use std::sync::Arc;

use http::HeaderMap;

use super::{BoxFuture, Call, CallInfo, Direction, EndSummary, Interceptor, Next, Reply};
use crate::Error;

/// Observes calls through three callbacks; every method has a default that does nothing.
/// Register with `ServerConfig::hooks` or `ClientConfig::hooks`.
///
/// This is an [`Interceptor`] that runs `on_start` before `next`, `on_message` on every
/// message in both directions and `on_end` at the end: use it when those points are all that
/// is needed; write an [`Interceptor`] to change responses, keep state across the call, or
/// run code around it.
pub trait Hooks: Send + Sync + 'static {
    /// Runs before the handler (server) or before the request is sent (client), with the
    /// request headers; returning an error ends the call with it.
    fn on_start<'a>(
        &'a self,
        info: &'a CallInfo,
        headers: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let _ = (info, headers);
        Box::pin(std::future::ready(Ok(())))
    }

    /// Runs for each message; `message` can be downcast to the generated type. Returning an
    /// error ends the call with it.
    fn on_message(
        &self,
        info: &CallInfo,
        direction: Direction,
        message: &(dyn Any + Send),
    ) -> Result<(), Error> {
        let _ = (info, direction, message);
        Ok(())
    }

    /// Runs exactly once when the call has ended: completed, failed, past its deadline,
    /// cancelled by the caller, cut off by the peer (a reset stream, a closed connection) or
    /// by the server shutting down. `end.error` is `None` only for a call that completed.
    ///
    /// It runs before the end reaches the other side of the library: on a server, before the
    /// end of the response stream (trailers, end-of-stream message) is written; on a client,
    /// before the caller sees the response or the end of the response stream. A call
    /// abandoned before its end (a dropped future or stream) ends with `canceled`, from a
    /// task of its own.
    fn on_end<'a>(&'a self, info: &'a CallInfo, end: &'a EndSummary) -> BoxFuture<'a, ()> {
        let _ = (info, end);
        Box::pin(std::future::ready(()))
    }
}

/// A [`Hooks`] as an [`Interceptor`].
pub(crate) struct HooksInterceptor<H>(pub(crate) Arc<H>);

impl<H: Hooks> Interceptor for HooksInterceptor<H> {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Error> {
        let info = call.info().clone();
        // First, so the end is seen even when `on_start` refuses the call.
        let hooks = self.0.clone();
        let end_info = info.clone();
        call.on_end_async(move |summary| async move { hooks.on_end(&end_info, &summary).await });
        self.0.on_start(&info, call.headers_mut()).await?;
        let (hooks, request_info) = (self.0.clone(), info.clone());
        call.on_message(move |message| {
            hooks.on_message(&request_info, Direction::Request, message)
        });
        let mut reply = next.run(call).await?;
        let hooks = self.0.clone();
        reply.on_message(move |message| hooks.on_message(&info, Direction::Response, message));
        Ok(reply)
    }
}
