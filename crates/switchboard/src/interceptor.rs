//! Interceptors: code that sees every call, on the server and on the client.
//!
//! An interceptor is told when a call starts (and may change the request headers or refuse
//! the call), sees each message in either direction, and is told how and when the call ended.
//! That is enough for authentication, logging, metrics and tracing of unary and streaming
//! calls alike. `on_start` and `on_end` are async (they may look things up); `on_message` is
//! synchronous on purpose: it runs on the hot path of every message and must not allocate a
//! future per message.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;

use crate::Error;
use crate::spec::{Peer, Spec};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which side of the call an interceptor runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// In a server, around a handler.
    Server,
    /// In a client, around an outgoing call.
    Client,
}

/// Which way a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From client to server.
    Request,
    /// From server to client.
    Response,
}

/// What an interceptor knows about a call.
#[derive(Debug)]
pub struct CallInfo {
    /// The method.
    pub spec: Spec,
    /// The peer (the client on a server; the server's protocol on a client).
    pub peer: Option<Peer>,
    /// Server or client.
    pub side: Side,
    /// When the call started.
    pub started: Instant,
}

/// How a call ended.
#[derive(Debug)]
pub struct CallEnd<'a> {
    /// `None` on success, the error otherwise.
    pub error: Option<&'a Error>,
    /// Time from the start of the call to its end (the last message or the error).
    pub duration: Duration,
    /// Messages received and sent.
    pub messages: (u64, u64),
}

/// Observes calls. Every method has a default that does nothing.
pub trait Interceptor: Send + Sync + 'static {
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
    fn on_end<'a>(&'a self, info: &'a CallInfo, end: CallEnd<'a>) -> BoxFuture<'a, ()> {
        let _ = (info, end);
        Box::pin(std::future::ready(()))
    }
}

/// An ordered list of interceptors; the first added runs first on the way in.
#[derive(Clone, Default)]
pub struct Interceptors {
    list: Arc<[Arc<dyn Interceptor>]>,
}

impl std::fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interceptors({})", self.list.len())
    }
}

impl Interceptors {
    /// Adds one interceptor at the end.
    pub fn push(&mut self, interceptor: impl Interceptor) {
        let mut list: Vec<_> = self.list.iter().cloned().collect();
        list.push(Arc::new(interceptor));
        self.list = list.into();
    }

    /// Whether there are none (the common case, which costs nothing per call).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Starts a call: runs every `on_start` in order; `None` when there are no interceptors.
    pub(crate) async fn start(
        &self,
        spec: &Spec,
        peer: Option<Peer>,
        side: Side,
        headers: &mut HeaderMap,
    ) -> Result<Option<Arc<CallObserver>>, (Error, Option<Arc<CallObserver>>)> {
        if self.list.is_empty() {
            return Ok(None);
        }
        let observer = Arc::new(CallObserver {
            interceptors: self.clone(),
            info: CallInfo {
                spec: spec.clone(),
                peer,
                side,
                started: Instant::now(),
            },
            counts: Default::default(),
        });
        for interceptor in self.list.iter() {
            if let Err(e) = interceptor.on_start(&observer.info, headers).await {
                return Err((e, Some(observer)));
            }
        }
        Ok(Some(observer))
    }
}

/// The per-call state interceptors need: shared by the pieces that carry a call's messages.
#[derive(Debug)]
pub(crate) struct CallObserver {
    interceptors: Interceptors,
    info: CallInfo,
    counts: [std::sync::atomic::AtomicU64; 2],
}

impl CallObserver {
    pub(crate) fn message(
        &self,
        direction: Direction,
        message: &(dyn Any + Send),
    ) -> Result<(), Error> {
        let slot = match (self.info.side, direction) {
            (Side::Server, Direction::Request) | (Side::Client, Direction::Response) => 0,
            _ => 1,
        };
        self.counts[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for interceptor in self.interceptors.list.iter() {
            interceptor.on_message(&self.info, direction, message)?;
        }
        Ok(())
    }

    pub(crate) async fn end(&self, error: Option<&Error>) {
        let messages = (
            self.counts[0].load(std::sync::atomic::Ordering::Relaxed),
            self.counts[1].load(std::sync::atomic::Ordering::Relaxed),
        );
        for interceptor in self.interceptors.list.iter() {
            interceptor
                .on_end(
                    &self.info,
                    CallEnd {
                        error,
                        duration: self.info.started.elapsed(),
                        messages,
                    },
                )
                .await;
        }
    }
}

/// The end of one call, for its interceptors: fires `on_end` exactly once, either through
/// [`CallEnder::finish`] when the call's owner knows how it ended, or — when the owner is
/// dropped first (a cancelled call, a peer that went away, a server shutting down) — with
/// `canceled` from a task of its own. Owning this is owning the call's end: it moves from the
/// handler to the response body on the server, and from the call to the response stream on
/// the client.
#[derive(Debug, Default)]
pub(crate) struct CallEnder {
    observer: Option<Arc<CallObserver>>,
}

impl CallEnder {
    pub(crate) fn new(observer: Option<Arc<CallObserver>>) -> Self {
        CallEnder { observer }
    }

    /// Ends the call (once; later calls do nothing).
    pub(crate) async fn finish(&mut self, error: Option<&Error>) {
        if let Some(observer) = self.observer.take() {
            observer.end(error).await;
        }
    }

    /// Ends the call from a body or stream that must hand out `last` (its end frame or last
    /// item) only once the interceptors have seen the end: poll the returned [`Ending`].
    pub(crate) fn ending<T>(&mut self, error: Option<Error>, last: T) -> Ending<T> {
        let on_end = self
            .observer
            .take()
            .map(|observer| -> BoxFuture<'static, ()> {
                Box::pin(async move { observer.end(error.as_ref()).await })
            });
        Ending {
            on_end,
            last: Some(last),
        }
    }
}

/// A call's end in progress: the interceptors' `on_end` (if any) running, then the item that
/// ends the stream.
pub(crate) struct Ending<T> {
    on_end: Option<BoxFuture<'static, ()>>,
    last: Option<T>,
}

impl<T> Ending<T> {
    /// `last`, once `on_end` has completed.
    pub(crate) fn poll(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<T> {
        if let Some(on_end) = &mut self.on_end {
            std::task::ready!(on_end.as_mut().poll(cx));
            self.on_end = None;
        }
        std::task::Poll::Ready(
            self.last
                .take()
                .expect("an Ending is polled to its end once"),
        )
    }
}

impl Drop for CallEnder {
    fn drop(&mut self) {
        let Some(observer) = self.observer.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let error = Error::new(
                crate::Code::Canceled,
                "the call was abandoned before it ended (cancelled, or the peer went away)",
            );
            observer.end(Some(&error)).await;
        });
    }
}
