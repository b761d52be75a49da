//! Interceptors: code that wraps every call, on the server and on the client.
//!
//! An [`Interceptor`] gets the [`Call`] and a [`Next`] — the rest of the chain, ending in the
//! handler (server) or the network (client) — and runs code before and after
//! `next.run(call).await`, as a tower or axum middleware does, but at the level of RPCs: the
//! same code sees unary calls and all three streaming shapes. Before `next` it can read and
//! change the request headers, put typed values into the request's extensions for the
//! handler, refuse the call by returning an error, or answer it alone with [`Reply::new`].
//! After `next` it can read and change the response headers and trailers and a unary
//! response ([`Reply::on_headers`] reaches a client's bidi headers, which arrive later). Hooks it registers watch or change every message in each direction
//! ([`Call::on_message`], [`Reply::on_message`]) and see the call's end exactly once,
//! whatever ends it ([`Call::on_end`]): that end may still change the status and trailers a
//! server writes. Per-call state is the interceptor's locals and what its hooks capture.
//!
//! Interceptors run in the order added, the first outermost: requests pass them first to
//! last, replies and ends last to first. [`Hooks`] is the short form for code that only needs
//! the start, each message and the end.
//!
//! ```
//! use switchboard::interceptor::{self, Call, Interceptor, Next, Reply};
//! use switchboard::server::ServerConfig;
//! use switchboard::{Code, Error};
//!
//! /// Who made the call, for handlers: `request.extensions().get::<Caller>()`.
//! #[derive(Clone)]
//! struct Caller(String);
//!
//! struct Authenticate;
//!
//! impl Interceptor for Authenticate {
//!     async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Error> {
//!         let token = call
//!             .headers()
//!             .get("authorization")
//!             .and_then(|value| value.to_str().ok())
//!             .and_then(|value| value.strip_prefix("Bearer "));
//!         let Some(caller) = token.filter(|token| *token == "s3cret").map(|_| Caller("ada".into())) else {
//!             return Err(Error::new(Code::Unauthenticated, "a valid bearer token is required"));
//!         };
//!         call.extensions_mut().insert(caller);
//!         next.run(call).await
//!     }
//! }
//!
//! // A call's duration and outcome, for any shape, from a closure.
//! let timing = interceptor::from_fn(|mut call: Call, next: Next| async move {
//!     let method = call.spec().procedure().to_owned();
//!     call.on_end(move |end| {
//!         println!("{method}: {:?} in {:?}", end.error().map(Error::code), end.duration());
//!     });
//!     next.run(call).await
//! });
//!
//! let config = ServerConfig::default().interceptor(timing).interceptor(Authenticate);
//! # let _ = config;
//! ```

mod call;
mod end;
mod hooks;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub use call::{Call, MessageHook, Reply};
pub(crate) use call::{HeaderHook, MessageHooks, ReplyFuture, run_header_hooks};
pub use end::{CallEnd, EndSummary};
pub(crate) use end::{CallEnder, CallShared, EndFuture};
pub use hooks::Hooks;
pub(crate) use hooks::HooksInterceptor;

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
    /// The server's host and port: on a client, those of the URL it calls; on a server, the
    /// ones the request was sent to (HTTP/2 `:authority`, HTTP/1.1 `Host`), when it said.
    pub authority: Option<http::uri::Authority>,
    /// The HTTP version the call travels on, when this side knows it before the call: on a
    /// server the request's; on a client `None` (the transport picks it).
    pub http_version: Option<http::Version>,
}

/// Code that wraps calls: see the [module documentation](self).
///
/// Implement it with an `async fn`. The future must be `Send` (hold no `Rc` or `MutexGuard`
/// across an `.await`).
pub trait Interceptor: Send + Sync + 'static {
    /// Runs the call: code before `next.run(call)`, then after. Returning without calling
    /// `next` refuses the call (`Err`) or answers it (`Ok(Reply::new(..))`); inner
    /// interceptors and the handler then never run, and the call's end hooks still do.
    fn intercept(
        &self,
        call: Call,
        next: Next,
    ) -> impl Future<Output = Result<Reply, Error>> + Send;

    /// Whether this interceptor wraps calls of `spec`'s method. A server asks once per method
    /// when a service is added; a client asks on every call. Defaults to all.
    fn applies_to(&self, spec: &Spec) -> bool {
        let _ = spec;
        true
    }
}

/// The object-safe form of [`Interceptor`] the chain stores.
pub(crate) trait DynInterceptor: Send + Sync + 'static {
    fn intercept_dyn(&self, call: Call, next: Next) -> BoxFuture<'_, Result<Reply, Error>>;
    fn applies_to_dyn(&self, spec: &Spec) -> bool;
}

impl<I: Interceptor> DynInterceptor for I {
    fn intercept_dyn(&self, call: Call, next: Next) -> BoxFuture<'_, Result<Reply, Error>> {
        Box::pin(self.intercept(call, next))
    }

    fn applies_to_dyn(&self, spec: &Spec) -> bool {
        self.applies_to(spec)
    }
}

/// An interceptor from an async closure taking the call and `next`.
///
/// ```
/// use switchboard::client::ClientConfig;
/// use switchboard::interceptor::{self, Call, Next};
///
/// let config = ClientConfig::default().interceptor(interceptor::from_fn(
///     |mut call: Call, next: Next| async move {
///         call.headers_mut().insert("x-request-id", "42".parse().unwrap());
///         next.run(call).await
///     },
/// ));
/// # let _ = config;
/// ```
pub fn from_fn<F, Fut>(f: F) -> FromFn<F>
where
    F: Fn(Call, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, Error>> + Send + 'static,
{
    FromFn(f)
}

/// The interceptor [`from_fn`] makes.
pub struct FromFn<F>(F);

impl<F> std::fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromFn")
    }
}

impl<F, Fut> Interceptor for FromFn<F>
where
    F: Fn(Call, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, Error>> + Send + 'static,
{
    fn intercept(
        &self,
        call: Call,
        next: Next,
    ) -> impl Future<Output = Result<Reply, Error>> + Send {
        (self.0)(call, next)
    }
}

/// Interceptors resolved for calls: outermost first.
pub(crate) type Chain = Arc<[Arc<dyn DynInterceptor>]>;

/// The end of a chain: the handler (server) or the exchange with the server (client).
pub(crate) trait Terminal: Send + 'static {
    fn call(self: Box<Self>, call: Call) -> ReplyFuture;
}

impl<F: FnOnce(Call) -> ReplyFuture + Send + 'static> Terminal for F {
    fn call(self: Box<Self>, call: Call) -> ReplyFuture {
        self(call)
    }
}

/// The rest of the call after this interceptor: the inner interceptors, then the handler
/// (server) or the network (client).
pub struct Next {
    chain: Chain,
    position: usize,
    /// Whether each interceptor is asked [`Interceptor::applies_to`] on the way: a client's
    /// chain is every interceptor; a server's was resolved for the route when it was built.
    filter: bool,
    terminal: Box<dyn Terminal>,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.chain.len() - self.position))
            .finish()
    }
}

impl Next {
    /// The rest of a call whose chain holds only interceptors that apply to it (a server
    /// route's, resolved when it was built).
    pub(crate) fn new(chain: Chain, terminal: Box<dyn Terminal>) -> Self {
        Next {
            chain,
            position: 0,
            filter: false,
            terminal,
        }
    }

    /// The rest of a call whose chain holds every interceptor (a client's); each is asked
    /// whether it applies as the call reaches it.
    pub(crate) fn filtering(chain: Chain, terminal: Box<dyn Terminal>) -> Self {
        Next {
            filter: true,
            ..Next::new(chain, terminal)
        }
    }

    /// Runs the rest of the call; once, as a request stream cannot be replayed.
    pub async fn run(mut self, call: Call) -> Result<Reply, Error> {
        while let Some(interceptor) = self.chain.get(self.position).cloned() {
            self.position += 1;
            if !self.filter || interceptor.applies_to_dyn(call.spec()) {
                return interceptor.intercept_dyn(call, self).await;
            }
        }
        self.terminal.call(call).await
    }
}

/// An ordered list of interceptors; the first added runs first on the way in.
#[derive(Clone)]
pub(crate) struct Interceptors {
    list: Chain,
}

impl Default for Interceptors {
    fn default() -> Self {
        Interceptors { list: Arc::new([]) }
    }
}

impl std::fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interceptors({})", self.list.len())
    }
}

impl Interceptors {
    /// Adds one interceptor at the end (innermost).
    pub(crate) fn push(&mut self, interceptor: impl Interceptor) {
        let mut list = self.list.to_vec();
        list.push(Arc::new(interceptor));
        self.list = list.into();
    }

    /// Adds hooks at the end (innermost).
    pub(crate) fn push_hooks(&mut self, hooks: impl Hooks) {
        self.push(HooksInterceptor(Arc::new(hooks)));
    }

    /// The chain for calls of `spec`, these interceptors inside `outer`'s; `None` when none
    /// applies, so such calls take the path with no interceptor code at all.
    pub(crate) fn chain_for(&self, outer: Option<&Interceptors>, spec: &Spec) -> Option<Chain> {
        let chain: Vec<_> = outer
            .into_iter()
            .flat_map(|outer| outer.list.iter())
            .chain(self.list.iter())
            .filter(|interceptor| interceptor.applies_to_dyn(spec))
            .cloned()
            .collect();
        (!chain.is_empty()).then(|| chain.into())
    }

    /// Every interceptor, for a client (which asks `applies_to` per call); `None` when empty.
    pub(crate) fn all(&self) -> Option<Chain> {
        (!self.list.is_empty()).then(|| self.list.clone())
    }
}
