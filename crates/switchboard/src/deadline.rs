//! Deadlines that follow a call into the calls it makes.
//!
//! While a server runs a handler for a call that has a deadline, that deadline is the
//! *current* one on the handler's task: [`current`] returns it, and every call a
//! [`crate::client::Client`] makes from there is bounded by it (less the client's
//! [`ClientConfig::deadline_margin`](crate::client::ClientConfig::deadline_margin)), whether
//! it sets a timeout of its own or not. A chain of services then gives up together: when the
//! first caller's time is up, no service further down keeps working for it. This is what
//! grpc-go and connect-go do through Go's `context.Context`; here the deadline travels in a
//! tokio task-local, so handlers need not pass anything along.
//!
//! A task-local stays on its task. Work a handler spawns onto another task takes the deadline
//! with it through [`scope`]:
//!
//! ```
//! # async fn handler_body() {
//! let deadline = switchboard::deadline::current();
//! tokio::spawn(switchboard::deadline::scope(deadline, async {
//!     // Calls made here are bounded by the handler's deadline too.
//! }));
//! # }
//! ```
//!
//! A client that must not inherit (a call meant to outlive the one being handled) turns it
//! off with [`ClientConfig::propagate_deadline`](crate::client::ClientConfig::propagate_deadline).

use std::future::Future;
use std::time::Instant;

tokio::task_local! {
    static CURRENT: Instant;
}

/// The deadline of the call being handled on this task, if it has one.
///
/// On the server this is [`crate::Request::deadline`], available anywhere under the handler
/// (in interceptors, in helpers, while its response stream is produced) without passing the
/// request along.
pub fn current() -> Option<Instant> {
    CURRENT.try_with(|deadline| *deadline).ok()
}

/// Runs `future` with `deadline` as the current deadline (none: the future runs as it is,
/// inheriting nothing). Calls made inside are bounded by it.
pub async fn scope<F: Future>(deadline: Option<Instant>, future: F) -> F::Output {
    match deadline {
        Some(deadline) => CURRENT.scope(deadline, future).await,
        None => future.await,
    }
}

/// Runs `f` with `deadline` as the current deadline, for code polled outside the handler's
/// future (a response stream, polled by the HTTP body).
pub(crate) fn sync_scope<R>(deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
    match deadline {
        Some(deadline) => CURRENT.sync_scope(deadline, f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_deadline_is_current_inside_its_scope_only() {
        assert_eq!(current(), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let seen = scope(Some(deadline), async { current() }).await;
        assert_eq!(seen, Some(deadline));
        assert_eq!(current(), None);
        assert_eq!(scope(None, async { current() }).await, None);
        assert_eq!(sync_scope(Some(deadline), current), Some(deadline));
    }

    #[tokio::test]
    async fn an_inner_scope_replaces_the_outer_one_while_it_runs() {
        let outer = Instant::now() + Duration::from_secs(5);
        let inner = outer - Duration::from_secs(1);
        let (inside, after) = scope(Some(outer), async {
            let inside = scope(Some(inner), async { current() }).await;
            (inside, current())
        })
        .await;
        assert_eq!(inside, Some(inner));
        assert_eq!(after, Some(outer));
    }
}
