//! A call's end: the hooks interceptors registered for it, run exactly once, and the handle
//! that owns the moment they run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use http::HeaderMap;

use super::{BoxFuture, CallInfo, Direction, Side};
use crate::{Code, Error};

/// How a call ended, as an end hook registered with [`super::Call::on_end`] sees it — and may
/// change, on a server, before the end is written.
pub struct CallEnd<'a> {
    info: &'a CallInfo,
    error: &'a mut Option<Error>,
    trailers: Option<&'a mut HeaderMap>,
    duration: Duration,
    messages: (u64, u64),
    canceled: bool,
    http_version: Option<http::Version>,
}

impl<'a> CallEnd<'a> {
    /// The call.
    pub fn info(&self) -> &CallInfo {
        self.info
    }

    /// `None` when the call completed; the error otherwise.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Replaces how the call ends: e.g. a sanitized error instead of an internal one, or an
    /// error for a stream a policy rejects after the fact. On a server it changes the status
    /// the peer receives (unless the call was abandoned); on a client, what the caller sees.
    /// Clearing the error of a call that failed with no response to give keeps it failed.
    pub fn set_error(&mut self, error: Option<Error>) {
        *self.error = error;
    }

    /// The trailers still to be written (a server's successful end; `None` on a client, for
    /// failed calls, whose metadata travels in the [`Error`], and once abandoned): add a
    /// count or checksum computed from the whole stream.
    pub fn trailers_mut(&mut self) -> Option<&mut HeaderMap> {
        self.trailers.as_deref_mut()
    }

    /// Time from the start of the call to its end.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Messages received and sent, in that order, from this side's point of view.
    pub fn messages(&self) -> (u64, u64) {
        self.messages
    }

    /// The HTTP version the call went over: on a server the request's, on a client the
    /// response's (`None` when no response arrived). A client learns it only from the
    /// response, since its transport negotiates it.
    pub fn http_version(&self) -> Option<http::Version> {
        self.http_version
    }

    /// Whether the call was abandoned before its end (a dropped future or stream, a peer that
    /// went away, a server shutting down); nothing is written then, so changes do nothing.
    pub fn canceled(&self) -> bool {
        self.canceled
    }
}

impl std::fmt::Debug for CallEnd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallEnd")
            .field("procedure", &self.info.spec.procedure())
            .field("error", &self.error)
            .field("duration", &self.duration)
            .field("messages", &self.messages)
            .field("canceled", &self.canceled)
            .finish()
    }
}

/// How a call ended, owned: what [`super::Call::on_end_async`] hooks and
/// [`super::Hooks::on_end`] receive.
#[derive(Clone, Debug)]
pub struct EndSummary {
    /// `None` when the call completed; the error otherwise.
    pub error: Option<Error>,
    /// Time from the start of the call to its end.
    pub duration: Duration,
    /// Messages received and sent, in that order, from this side's point of view.
    pub messages: (u64, u64),
    /// Whether the call was abandoned before its end.
    pub canceled: bool,
}

type SyncEndHook = Box<dyn FnOnce(&mut CallEnd<'_>) + Send>;
type AsyncEndHook = Box<dyn FnOnce(EndSummary) -> BoxFuture<'static, ()> + Send>;

pub(crate) enum EndHook {
    Sync(SyncEndHook),
    Async(AsyncEndHook),
}

/// What every piece of one intercepted call shares: who it is, its message counts and the
/// hooks its end runs.
pub(crate) struct CallShared {
    pub(crate) info: Arc<CallInfo>,
    counts: [AtomicU64; 2],
    end_hooks: Mutex<Vec<EndHook>>,
    /// The response's HTTP version, on a client (a server knows it from the start).
    response_version: OnceLock<http::Version>,
}

impl CallShared {
    pub(crate) fn new(info: CallInfo) -> Arc<Self> {
        Arc::new(CallShared {
            info: Arc::new(info),
            counts: Default::default(),
            end_hooks: Mutex::new(Vec::new()),
            response_version: OnceLock::new(),
        })
    }

    pub(crate) fn add_end_hook(&self, hook: EndHook) {
        self.end_hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(hook);
    }

    /// Whether any end hook waits for this call's end (the call's end costs nothing more
    /// when none does).
    fn has_end_hooks(&self) -> bool {
        !self
            .end_hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Records the HTTP version of a client's response (the first attempt's to arrive).
    pub(crate) fn saw_http_version(&self, version: http::Version) {
        let _ = self.response_version.set(version);
    }

    /// Counts one message travelling `direction`.
    pub(crate) fn count(&self, direction: Direction) {
        let slot = match (self.info.side, direction) {
            (Side::Server, Direction::Request) | (Side::Client, Direction::Response) => 0,
            _ => 1,
        };
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
    }

    fn messages(&self) -> (u64, u64) {
        (
            self.counts[0].load(Ordering::Relaxed),
            self.counts[1].load(Ordering::Relaxed),
        )
    }

    /// Runs the end hooks, innermost interceptor first (the reverse of registration), each
    /// seeing what the ones before it changed.
    async fn run_end(
        self: Arc<Self>,
        mut error: Option<Error>,
        mut trailers: Option<HeaderMap>,
        canceled: bool,
    ) -> (Option<Error>, Option<HeaderMap>) {
        let hooks = std::mem::take(
            &mut *self
                .end_hooks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let duration = self.info.started.elapsed();
        let messages = self.messages();
        let http_version = self
            .info
            .http_version
            .or_else(|| self.response_version.get().copied());
        for hook in hooks.into_iter().rev() {
            match hook {
                EndHook::Sync(hook) => hook(&mut CallEnd {
                    info: &self.info,
                    error: &mut error,
                    trailers: trailers.as_mut(),
                    duration,
                    messages,
                    canceled,
                    http_version,
                }),
                EndHook::Async(hook) => {
                    hook(EndSummary {
                        error: error.clone(),
                        duration,
                        messages,
                        canceled,
                    })
                    .await
                }
            }
        }
        (error, trailers)
    }
}

/// The end of one call, for its interceptors: runs the end hooks exactly once, either through
/// [`CallEnder::end`] when the call's owner knows how it ended, or — when the owner is dropped
/// first (a cancelled call, a peer that went away, a server shutting down) — with `canceled`
/// from a task of its own. Owning this is owning the call's end: it moves from the handler to
/// the response body on the server, and from the call to the response stream on the client.
/// Empty (and free) for calls no interceptor sees.
#[derive(Default)]
pub(crate) struct CallEnder {
    shared: Option<Arc<CallShared>>,
}

impl std::fmt::Debug for CallEnder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.shared.is_some() {
            "CallEnder(armed)"
        } else {
            "CallEnder"
        })
    }
}

impl CallEnder {
    pub(crate) fn new(shared: Arc<CallShared>) -> Self {
        CallEnder {
            shared: Some(shared),
        }
    }

    /// Whether interceptors wait for this call's end.
    pub(crate) fn is_armed(&self) -> bool {
        self.shared.is_some()
    }

    /// Ends the call with `error` and, on a server's successful end, the trailers about to be
    /// written; the returned future yields both as the end hooks left them. Later calls (and
    /// calls on an empty ender) yield their input at once.
    pub(crate) fn end(&mut self, error: Option<Error>, trailers: Option<HeaderMap>) -> EndFuture {
        match self.shared.take() {
            Some(shared) if shared.has_end_hooks() => {
                EndFuture::Running(Box::pin(shared.run_end(error, trailers, false)))
            }
            _ => EndFuture::Ready(Some((error, trailers))),
        }
    }

    /// Ends a call whose outcome is a `Result`: the error the end hooks leave replaces the
    /// outcome's (a success they fail becomes that error).
    pub(crate) async fn settle<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if self.shared.is_none() {
            return result;
        }
        match result {
            Ok(value) => match self.end(None, None).await.0 {
                None => Ok(value),
                Some(error) => Err(error),
            },
            Err(error) => {
                let fallback = error.clone();
                Err(self.end(Some(error), None).await.0.unwrap_or(fallback))
            }
        }
    }
}

impl Drop for CallEnder {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take().filter(|shared| shared.has_end_hooks()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let error = Error::new(
            Code::Canceled,
            "the call was abandoned before it ended (cancelled, or the peer went away)",
        );
        runtime.spawn(shared.run_end(Some(error), None, true));
    }
}

/// The end hooks of a call running (or nothing to run): yields the error and trailers as they
/// left them.
pub(crate) enum EndFuture {
    Ready(Option<(Option<Error>, Option<HeaderMap>)>),
    Running(BoxFuture<'static, (Option<Error>, Option<HeaderMap>)>),
}

impl std::future::Future for EndFuture {
    type Output = (Option<Error>, Option<HeaderMap>);

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            EndFuture::Ready(value) => std::task::Poll::Ready(
                value
                    .take()
                    .expect("an EndFuture is polled to its end once"),
            ),
            EndFuture::Running(future) => future.as_mut().poll(cx),
        }
    }
}
