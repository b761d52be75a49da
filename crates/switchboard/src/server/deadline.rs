//! When the server ends a call that has a deadline.
//!
//! A caller's timeout header says how much time it had left, truncated to the header's unit:
//! `Connect-Timeout-Ms` is whole milliseconds and connect-go, connect-es and this crate's
//! client all round down. Counted from the request's arrival, the deadline a handler sees is
//! therefore the caller's own or up to a millisecond before it, which is right for work it
//! starts and for the calls it makes onwards.
//!
//! Ending the call at that same instant is not. A server that answers `deadline_exceeded`
//! just before the caller's timer fires races it: the caller can receive the reply's headers,
//! then give up on the body it has not read yet, and see a reply cut short. The conformance
//! runner's timeout cases caught this (a truncated Connect error body, about one case in
//! ten thousand under CPU contention; nearly one in seven when the body was held back by
//! 3 ms). So the server enforces a deadline [`DEADLINE_SLACK`] after the one its handler
//! sees: the caller's own deadline passes first and ends the call on its side, while callers
//! with no timer of their own (curl with a timeout header) still get their answer promptly.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Error;

/// How long after a call's deadline the server stops its handler and answers
/// `deadline_exceeded`.
pub(crate) const DEADLINE_SLACK: Duration = Duration::from_millis(20);

/// The instant the server ends a call whose deadline is `deadline`.
pub(crate) fn enforced(deadline: Instant) -> Instant {
    deadline.checked_add(DEADLINE_SLACK).unwrap_or(deadline)
}

/// Runs `work` until the call's deadline (plus [`DEADLINE_SLACK`]); past it, the call fails
/// with `deadline_exceeded` and `work` is dropped. Inside, the deadline is current
/// ([`crate::deadline::current`]): calls `work` makes are bounded by it.
pub(crate) async fn with_deadline<T>(
    deadline: Option<Instant>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let Some(deadline) = deadline else {
        return work.await;
    };
    // Already past when the call arrives (a timeout of 0, or 1 ns): the call fails without
    // running, as tokio's timeout would poll the work once first and let a quick handler
    // answer. This uses the caller's deadline: there is no race to avoid when nothing runs.
    if deadline <= Instant::now() {
        return Err(Error::deadline_exceeded());
    }
    let bounded = tokio::time::timeout_at(enforced(deadline).into(), work);
    crate::deadline::scope(Some(deadline), bounded)
        .await
        .unwrap_or_else(|_| Err(Error::deadline_exceeded()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[tokio::test(start_paused = true)]
    async fn the_call_ends_the_slack_after_its_deadline() {
        let started = tokio::time::Instant::now();
        let deadline = Instant::now() + Duration::from_millis(200);
        let result: Result<(), Error> = with_deadline(Some(deadline), std::future::pending()).await;
        assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
        // The paused clock stands still; the deadline was taken from the real one a moment
        // after `started`, and tokio rounds timers up to whole milliseconds.
        let elapsed = started.elapsed();
        let expected = Duration::from_millis(200) + DEADLINE_SLACK;
        assert!(
            elapsed >= expected && elapsed <= expected + Duration::from_millis(2),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_deadline_already_past_fails_without_running_the_work() {
        let result = with_deadline(Some(Instant::now()), async {
            panic!("the work ran");
            #[allow(unreachable_code)]
            Ok(())
        })
        .await;
        assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
    }

    #[tokio::test]
    async fn the_work_sees_the_call_deadline_as_current() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let seen = with_deadline(Some(deadline), async { Ok(crate::deadline::current()) }).await;
        assert_eq!(seen.unwrap(), Some(deadline));
        let none = with_deadline(None, async { Ok(crate::deadline::current()) }).await;
        assert_eq!(none.unwrap(), None);
    }

    #[tokio::test]
    async fn work_that_finishes_in_time_keeps_its_result() {
        let deadline = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            with_deadline(Some(deadline), async { Ok(7) })
                .await
                .unwrap(),
            7
        );
        assert_eq!(with_deadline(None, async { Ok(8) }).await.unwrap(), 8);
    }
}
