//! Trying failed calls again, after gRPC's retry design (gRFC A6).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tower::retry::budget::{Budget as _, TpsBudget};
use tower::util::rng::{HasherRng, Rng as _};

use super::ClientConfig;
use crate::protocol::OutgoingCall;
use crate::stream::MessageSource;
use crate::{Code, Error};

/// gRPC's cap on attempts per call.
const MAX_ATTEMPTS: u32 = 5;

/// The header a retry carries: how many attempts were made before it.
pub(crate) const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";

/// The header (or trailer) in which a server tells when to retry, in milliseconds.
const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// When and how soon a failed call is tried again.
///
/// A [`RetryPolicy`] says how often and how soon: at most `max_attempts` attempts in all
/// (gRPC caps this at 5, and so does this), the n-th retry after
/// `min(initial_backoff * multiplier^(n-1), max_backoff)` scaled by a random factor in
/// [0.8, 1.2), and only for the codes it lists (`unavailable` by default). Around that:
///
/// * **The deadline is never extended.** Every attempt runs under the call's one deadline; a
///   retry that would start after it is not made, and `deadline_exceeded` is never retried.
/// * **Server pushback.** A failure carrying `grpc-retry-pushback-ms` is retried after exactly
///   that many milliseconds, or not at all when the value is negative or not a number: the
///   server knows best when it can take the call again.
/// * **A budget against retry storms.** Retries draw on a [`RetryBudget`] (tower's
///   `TpsBudget`: each call deposits, each retry withdraws; by default retries may add 20% to
///   the calls of the last 10 s, plus 10 a second). When a struggling service makes every call
///   fail, the clients stop multiplying its load.
/// * **Transparent retry.** A call that provably never reached the service's code (the
///   connection was refused, or the server refused the HTTP/2 stream or ended the connection
///   with GOAWAY before taking it) is tried once more at once, whatever the code, the policy
///   and the method: nothing ran, so nothing can run twice. It does not count as an attempt.
/// * **Replay.** A unary or server-streaming request is one encoded message, kept for the
///   attempts if it is at most `max_replay_bytes` (larger ones get one attempt). A client or
///   bidi stream's messages are kept as they go out, up to `max_replay_bytes` in all, and a
///   retry sends them again before the rest of the stream; a stream that outgrows the limit
///   is not retried.
/// * **Commitment.** A server or bidi stream is retried only until its first response
///   message: under a retry policy that message (or the stream's end) is read ahead before
///   the caller sees the stream — a bidi call's headers too, so [`Streaming::headers`] waits
///   for it — and from then on a failure is the stream's, delivered to the caller.
///
/// [`Streaming::headers`]: crate::Streaming::headers
///
/// Retries go out with `grpc-previous-rpc-attempts`, the number of attempts before.
///
/// Retrying a method that has side effects repeats them when the server did act before
/// failing; the default code (`unavailable`) is the one gRPC deems safe. [`RetryCounts`] tells
/// how many calls were retried, and why others were not.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    codes: Vec<Code>,
    max_replay_bytes: usize,
}

impl Default for RetryPolicy {
    /// Three attempts, 100 ms then 200 ms apart (up to 1 s), for `unavailable`, with requests
    /// of up to 256 KiB replayed (grpc-go's per-call replay buffer).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            codes: vec![Code::Unavailable],
            max_replay_bytes: 256 * 1024,
        }
    }
}

impl RetryPolicy {
    /// The default policy (see [`Default`]).
    pub fn new() -> Self {
        RetryPolicy::default()
    }

    /// Attempts in all, the first included: 1 turns retries off; above 5 counts as 5.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.clamp(1, MAX_ATTEMPTS);
        self
    }

    /// The first retry's delay, the longest delay, and the factor between successive delays
    /// (before the random factor). A multiplier below 1 counts as 1.
    pub fn backoff(mut self, initial: Duration, max: Duration, multiplier: f64) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self.multiplier = if multiplier.is_finite() && multiplier >= 1.0 {
            multiplier
        } else {
            1.0
        };
        self
    }

    /// The codes that are retried (replacing the default, `unavailable`).
    /// `deadline_exceeded` is never retried, listed or not.
    pub fn retryable_codes(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.codes = codes
            .into_iter()
            .filter(|code| *code != Code::DeadlineExceeded)
            .collect();
        self
    }

    /// The largest request kept for replay (default 256 KiB); a larger request is sent once.
    pub fn max_replay_bytes(mut self, bytes: usize) -> Self {
        self.max_replay_bytes = bytes;
        self
    }

    pub(crate) fn may_replay(&self, request_bytes: usize) -> bool {
        self.max_attempts > 1 && request_bytes <= self.max_replay_bytes
    }

    /// The delay before retry number `retry` (1 for the first), with `jitter` in [0.8, 1.2).
    fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        Duration::from_secs_f64((capped * jitter).max(0.0))
    }
}

/// How many retries the calls of a client may add: tower's `TpsBudget`, shared by every clone
/// of the [`ClientConfig`](super::ClientConfig) it is set on.
#[derive(Clone)]
pub struct RetryBudget {
    budget: Arc<TpsBudget>,
}

impl std::fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryBudget").finish_non_exhaustive()
    }
}

impl Default for RetryBudget {
    /// Retries may add 20% to the calls of the last 10 s, and 10 a second in any case.
    fn default() -> Self {
        RetryBudget::new(Duration::from_secs(10), 10, 0.2)
    }
}

impl RetryBudget {
    /// Retries may add `ratio` (0.2: 20%) to the calls made in the last `window` (1 to 60 s),
    /// and `min_per_second` a second in any case. Values out of range are brought within it.
    pub fn new(window: Duration, min_per_second: u32, ratio: f32) -> Self {
        let window = window.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1000.0)
        } else {
            0.0
        };
        let min_per_second = min_per_second.min(i32::MAX as u32 - 1);
        RetryBudget {
            budget: Arc::new(TpsBudget::new(window, min_per_second, ratio)),
        }
    }
}

/// What the retries of a client did, counted since it was configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryCounts {
    /// Calls made under a retry policy.
    pub calls: u64,
    /// Retries made after a retryable failure (each retry counts once).
    pub retries: u64,
    /// Retries made because the request never reached the service.
    pub transparent_retries: u64,
    /// Extra copies sent by hedging.
    pub hedges: u64,
    /// Retries and hedges the budget refused.
    pub throttled: u64,
    /// Retries the server's pushback refused.
    pub pushed_back: u64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    retries: AtomicU64,
    transparent_retries: AtomicU64,
    hedges: AtomicU64,
    throttled: AtomicU64,
    pushed_back: AtomicU64,
}

/// The retry state a client's calls share: the budget and the counters.
#[derive(Clone, Debug, Default)]
pub(crate) struct Retries {
    budget: RetryBudget,
    counters: Arc<Counters>,
}

impl Retries {
    pub(crate) fn with_budget(budget: RetryBudget) -> Self {
        Retries {
            budget,
            counters: Arc::default(),
        }
    }

    pub(crate) fn counts(&self) -> RetryCounts {
        let c = &self.counters;
        RetryCounts {
            calls: c.calls.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            transparent_retries: c.transparent_retries.load(Ordering::Relaxed),
            hedges: c.hedges.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            pushed_back: c.pushed_back.load(Ordering::Relaxed),
        }
    }

    /// Whether the budget allows one more hedged copy (counted either way).
    pub(crate) fn withdraw_hedge(&self) -> bool {
        if self.budget.budget.withdraw() {
            self.counters.hedges.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// The transparent retry, once per call (`used`): whether `error` is a failure that never
    /// reached the server, counted when it is.
    fn transparent(&self, used: &mut bool, error: &Error) -> bool {
        if *used || !never_processed(error) {
            return false;
        }
        *used = true;
        self.counters
            .transparent_retries
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// A call starts: it pays into the budget.
    pub(crate) fn start(&self) -> Attempts {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        self.budget.budget.deposit();
        Attempts {
            made: 1,
            transparent_used: false,
            rng: HasherRng::new(),
        }
    }
}

/// One call's attempts so far.
#[derive(Debug)]
pub(crate) struct Attempts {
    /// Attempts counted against the policy (a transparent retry is not counted).
    made: u32,
    transparent_used: bool,
    rng: HasherRng,
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq)]
pub(crate) enum Next {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Give up: the failure is the call's.
    Stop,
}

impl Attempts {
    /// How many attempts went out before the next one (for `grpc-previous-rpc-attempts`).
    pub(crate) fn previous(&self) -> u32 {
        self.made + u32::from(self.transparent_used) - 1
    }

    /// Decides what follows `error`, the failure of the attempt just made.
    pub(crate) fn after(
        &mut self,
        error: &Error,
        policy: &RetryPolicy,
        retries: &Retries,
        deadline: Option<Instant>,
    ) -> Next {
        let counters = &retries.counters;
        if error.code() == Code::DeadlineExceeded {
            return Next::Stop;
        }
        if retries.transparent(&mut self.transparent_used, error) {
            return Next::RetryAfter(Duration::ZERO);
        }
        if !policy.codes.contains(&error.code()) || self.made >= policy.max_attempts {
            return Next::Stop;
        }
        let delay = match pushback(error) {
            Some(Pushback::After(delay)) => delay,
            Some(Pushback::DoNotRetry) => {
                counters.pushed_back.fetch_add(1, Ordering::Relaxed);
                return Next::Stop;
            }
            None => {
                let jitter = 0.8 + 0.4 * self.rng.next_f64();
                policy.delay(self.made, jitter)
            }
        };
        if deadline.is_some_and(|deadline| Instant::now() + delay >= deadline) {
            return Next::Stop;
        }
        if !retries.budget.budget.withdraw() {
            counters.throttled.fetch_add(1, Ordering::Relaxed);
            return Next::Stop;
        }
        self.made += 1;
        counters.retries.fetch_add(1, Ordering::Relaxed);
        Next::RetryAfter(delay)
    }
}

/// The retries of one call, driven by its attempt loop: after each failed attempt,
/// [`Retrying::again`] says whether (and when) to go again.
pub(crate) struct Retrying<'c> {
    policy: Option<&'c RetryPolicy>,
    retries: &'c Retries,
    attempts: Option<Attempts>,
    deadline: Option<Instant>,
    transparent_done: bool,
}

impl<'c> Retrying<'c> {
    /// For `call`, whose request (`request_bytes` long) is kept for replay. Without a policy
    /// this costs nothing until an attempt fails.
    pub(crate) fn new(config: &'c ClientConfig, call: &OutgoingCall, request_bytes: usize) -> Self {
        let policy = config
            .retry_policy(call.spec.procedure())
            .filter(|policy| policy.may_replay(request_bytes));
        Retrying {
            policy,
            retries: &config.retries,
            attempts: policy.map(|_| config.retries.start()),
            deadline: policy.and_then(|_| super::deadline_of(call.timeout)),
            transparent_done: false,
        }
    }

    /// Whether a retry policy applies (not only the transparent retry).
    pub(crate) fn has_policy(&self) -> bool {
        self.policy.is_some()
    }

    /// How many bytes of a request stream the policy keeps for replay; `None` without one.
    pub(crate) fn replay_limit(&self) -> Option<usize> {
        self.policy.map(|policy| policy.max_replay_bytes)
    }

    /// How many attempts went out before the next one.
    pub(crate) fn previous(&self) -> u32 {
        match &self.attempts {
            Some(attempts) => attempts.previous(),
            None => u32::from(self.transparent_done),
        }
    }

    /// After a failed attempt: `Err` ends the call with that error; `Ok` means go again, once
    /// the delay has passed.
    pub(crate) async fn again(&mut self, error: Error) -> Result<(), Error> {
        let next = match (self.policy, self.attempts.as_mut()) {
            (Some(policy), Some(attempts)) => {
                attempts.after(&error, policy, self.retries, self.deadline)
            }
            _ if self.retries.transparent(&mut self.transparent_done, &error) => {
                Next::RetryAfter(Duration::ZERO)
            }
            _ => Next::Stop,
        };
        let Next::RetryAfter(delay) = next else {
            return Err(error);
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }
}

type EncodedStream =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<bytes::Bytes, Error>> + Send>>;

/// A request stream's messages as they went out, kept so another attempt can send them again.
///
/// Each attempt's body ([`ReplayLog::replay`]) sends the messages kept so far, then takes the
/// next ones from the caller's stream, keeping them too. Past `limit` bytes nothing more is
/// kept and the call can no longer be retried ([`ReplayLog::overflowed`]): grpc-go's
/// per-call replay buffer.
#[derive(Clone)]
pub(crate) struct ReplayLog {
    shared: Arc<std::sync::Mutex<Kept>>,
}

struct Kept {
    messages: Vec<bytes::Bytes>,
    bytes: usize,
    limit: usize,
    overflowed: bool,
    source: EncodedStream,
    ended: bool,
    /// The attempt whose body is live; older bodies end at their next poll.
    attempt: u64,
    /// Wakes the live body when the caller's stream had nothing yet, so that a newer
    /// attempt can end it.
    waiting: Option<std::task::Waker>,
}

impl ReplayLog {
    pub(crate) fn new(source: super::OutgoingBody, limit: usize) -> Self {
        let source: EncodedStream = match source {
            super::OutgoingBody::Stream(stream) => stream,
            super::OutgoingBody::Unary(message) => {
                Box::pin(futures_util::stream::once(std::future::ready(Ok(message))))
            }
        };
        ReplayLog {
            shared: Arc::new(std::sync::Mutex::new(Kept {
                messages: Vec::new(),
                bytes: 0,
                limit,
                overflowed: false,
                source,
                ended: false,
                attempt: 0,
                waiting: None,
            })),
        }
    }

    /// Whether the stream outgrew what is kept: another attempt could not send it whole.
    pub(crate) fn overflowed(&self) -> bool {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .overflowed
    }

    /// The body of one attempt: what was kept, then the rest of the stream. The body of the
    /// attempt before ends (cleanly: its attempt has already ended with a status), so that
    /// its HTTP/2 stream closes and only one body takes messages from the caller's stream.
    pub(crate) fn replay(&self) -> EncodedStream {
        let log = self.clone();
        let mut next = 0usize;
        let attempt = {
            let mut kept = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            kept.attempt += 1;
            if let Some(previous) = kept.waiting.take() {
                previous.wake();
            }
            kept.attempt
        };
        Box::pin(futures_util::stream::poll_fn(move |cx| {
            let mut kept = log.shared.lock().unwrap_or_else(|p| p.into_inner());
            if kept.attempt != attempt {
                return std::task::Poll::Ready(None);
            }
            if next < kept.messages.len() {
                next += 1;
                return std::task::Poll::Ready(Some(Ok(kept.messages[next - 1].clone())));
            }
            if kept.ended {
                return std::task::Poll::Ready(None);
            }
            match kept.source.as_mut().poll_next(cx) {
                std::task::Poll::Ready(Some(Ok(message))) => {
                    if !kept.overflowed {
                        if kept.bytes + message.len() > kept.limit {
                            kept.overflowed = true;
                            kept.messages.clear();
                        } else {
                            kept.bytes += message.len();
                            kept.messages.push(message.clone());
                            next += 1;
                        }
                    }
                    std::task::Poll::Ready(Some(Ok(message)))
                }
                std::task::Poll::Ready(None) => {
                    kept.ended = true;
                    std::task::Poll::Ready(None)
                }
                std::task::Poll::Ready(Some(Err(error))) => {
                    std::task::Poll::Ready(Some(Err(error)))
                }
                std::task::Poll::Pending => {
                    kept.waiting = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            }
        }))
    }
}

/// A response stream whose first item was read ahead (to see whether the call failed before
/// its first message), then the rest.
struct ReadAhead {
    first: Option<Option<Result<bytes::Bytes, Error>>>,
    rest: Box<dyn MessageSource>,
}

/// `rest`, after `first`, its first item read ahead.
pub(crate) fn read_ahead(
    first: Option<Result<bytes::Bytes, Error>>,
    rest: Box<dyn MessageSource>,
) -> Box<dyn MessageSource> {
    Box::new(ReadAhead {
        first: Some(first),
        rest,
    })
}

impl MessageSource for ReadAhead {
    fn poll_message(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<bytes::Bytes, Error>>> {
        match self.first.take() {
            Some(first) => std::task::Poll::Ready(first),
            None => self.rest.poll_message(cx),
        }
    }

    fn trailers(&self) -> Option<&http::HeaderMap> {
        self.rest.trailers()
    }

    fn last_compressed(&self) -> Option<bool> {
        self.rest.last_compressed()
    }

    fn poll_headers(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Error>> {
        self.rest.poll_headers(cx)
    }

    fn headers(&self) -> Option<&http::HeaderMap> {
        self.rest.headers()
    }

    fn defer_header_hooks(
        &mut self,
        hooks: Vec<crate::interceptor::HeaderHook>,
    ) -> Option<Vec<crate::interceptor::HeaderHook>> {
        self.rest.defer_header_hooks(hooks)
    }
}

enum Pushback {
    After(Duration),
    DoNotRetry,
}

/// The server's `grpc-retry-pushback-ms`: a delay, or "do not retry" when it is negative, not
/// a number or given more than once.
fn pushback(error: &Error) -> Option<Pushback> {
    let mut values = error.metadata().get_all(PUSHBACK).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return Some(Pushback::DoNotRetry);
    }
    let parsed = value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok());
    Some(match parsed {
        Some(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms as u64)),
        _ => Pushback::DoNotRetry,
    })
}

/// Whether the failed attempt provably never reached the service's code: the connection was
/// refused, or the server refused the stream (HTTP/2 REFUSED_STREAM, HTTP/3
/// H3_REQUEST_REJECTED) or closed the connection (GOAWAY) below it. Only errors of this side's transport qualify, never what a server said.
pub(crate) fn never_processed(error: &Error) -> bool {
    if error.is_wire() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(client) = current.downcast_ref::<hyper_util::client::legacy::Error>() {
            if client.is_connect() {
                return true;
            }
        }
        if let Some(h2) = current.downcast_ref::<h2::Error>() {
            if h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away() && h2.is_remote())
            {
                return true;
            }
        }
        #[cfg(feature = "http3")]
        if super::h3_transport::is_not_sent(current) {
            return true;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = current.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn unavailable() -> Error {
        let mut error = Error::new(Code::Unavailable, "try later");
        error.mark_wire();
        error
    }

    #[test]
    fn backoff_grows_by_the_multiplier_up_to_the_cap_with_jitter_around_it() {
        let policy =
            RetryPolicy::new().backoff(Duration::from_millis(100), Duration::from_millis(500), 3.0);
        assert_eq!(policy.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(policy.delay(2, 1.0), Duration::from_millis(300));
        assert_eq!(policy.delay(3, 1.0), Duration::from_millis(500));
        assert_eq!(policy.delay(2, 0.8), Duration::from_millis(240));
        assert_eq!(policy.delay(2, 1.2), Duration::from_millis(360));
    }

    #[test]
    fn attempts_stop_at_the_policy_and_count_what_happened() {
        let policy = RetryPolicy::new().max_attempts(3);
        let retries = Retries::default();
        let mut attempts = retries.start();
        assert_eq!(attempts.previous(), 0);
        assert!(matches!(
            attempts.after(&unavailable(), &policy, &retries, None),
            Next::RetryAfter(_)
        ));
        assert_eq!(attempts.previous(), 1);
        assert!(matches!(
            attempts.after(&unavailable(), &policy, &retries, None),
            Next::RetryAfter(_)
        ));
        assert_eq!(
            attempts.after(&unavailable(), &policy, &retries, None),
            Next::Stop
        );
        let counts = retries.counts();
        assert_eq!((counts.calls, counts.retries), (1, 2));
    }

    #[test]
    fn codes_outside_the_policy_and_deadlines_are_not_retried() {
        let policy =
            RetryPolicy::new().retryable_codes([Code::Unavailable, Code::DeadlineExceeded]);
        let retries = Retries::default();
        let mut attempts = retries.start();
        let mut internal = Error::internal("bug");
        internal.mark_wire();
        assert_eq!(
            attempts.after(&internal, &policy, &retries, None),
            Next::Stop
        );
        let mut late = Error::deadline_exceeded();
        late.mark_wire();
        assert_eq!(attempts.after(&late, &policy, &retries, None), Next::Stop);
    }

    #[test]
    fn a_retry_that_would_start_past_the_deadline_is_not_made() {
        let policy =
            RetryPolicy::new().backoff(Duration::from_secs(5), Duration::from_secs(5), 1.0);
        let retries = Retries::default();
        let mut attempts = retries.start();
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            attempts.after(&unavailable(), &policy, &retries, Some(deadline)),
            Next::Stop
        );
    }

    #[test]
    fn pushback_sets_the_delay_or_forbids_the_retry() {
        let policy = RetryPolicy::new();
        let retries = Retries::default();
        let mut attempts = retries.start();
        let wait = unavailable().with_metadata(
            http::HeaderName::from_static(PUSHBACK),
            HeaderValue::from_static("1234"),
        );
        assert_eq!(
            attempts.after(&wait, &policy, &retries, None),
            Next::RetryAfter(Duration::from_millis(1234))
        );
        for refusal in ["-1", "soon"] {
            let stop = unavailable().with_metadata(
                http::HeaderName::from_static(PUSHBACK),
                HeaderValue::from_static(refusal),
            );
            assert_eq!(attempts.after(&stop, &policy, &retries, None), Next::Stop);
        }
        assert_eq!(retries.counts().pushed_back, 2);
    }

    #[test]
    fn the_budget_stops_a_retry_storm() {
        let policy = RetryPolicy::new();
        // No retries beyond 1% of calls, none for free.
        let retries = Retries::with_budget(RetryBudget::new(Duration::from_secs(10), 0, 0.01));
        let mut refused = 0;
        for _ in 0..50 {
            let mut attempts = retries.start();
            if attempts.after(&unavailable(), &policy, &retries, None) == Next::Stop {
                refused += 1;
            }
        }
        assert!(refused >= 49, "{refused} of 50 retries refused");
        assert_eq!(retries.counts().throttled, refused);
    }

    #[test]
    fn a_refused_connection_is_retried_once_whatever_the_code() {
        let policy = RetryPolicy::new().retryable_codes([]);
        let retries = Retries::default();
        let mut attempts = retries.start();
        let refused = Error::from_source(
            Code::Unavailable,
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        );
        assert_eq!(
            attempts.after(&refused, &policy, &retries, None),
            Next::RetryAfter(Duration::ZERO)
        );
        assert_eq!(attempts.previous(), 1);
        assert_eq!(
            attempts.after(&refused, &policy, &retries, None),
            Next::Stop
        );
        // What a server said is never taken for a transport failure.
        assert!(!never_processed(&unavailable()));
    }

    #[test]
    fn max_attempts_is_capped_at_five() {
        assert_eq!(RetryPolicy::new().max_attempts(9).max_attempts, 5);
        assert_eq!(RetryPolicy::new().max_attempts(0).max_attempts, 1);
    }

    #[tokio::test]
    async fn a_new_attempt_ends_the_body_of_the_one_before_and_replays_what_it_sent() {
        use futures_util::StreamExt as _;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let source = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let log = ReplayLog::new(super::super::OutgoingBody::Stream(Box::pin(source)), 1024);
        let mut first = log.replay();
        tx.send(Ok(bytes::Bytes::from_static(b"a"))).unwrap();
        assert_eq!(first.next().await.unwrap().unwrap(), "a");
        // The first body now waits on the caller's stream, in a task of its own.
        let first = tokio::spawn(async move { first.count().await });
        tokio::task::yield_now().await;
        let mut second = log.replay();
        // Starting the second attempt ends the first body, with nothing more taken.
        let more = tokio::time::timeout(std::time::Duration::from_secs(5), first)
            .await
            .expect("the first body ended")
            .unwrap();
        assert_eq!(more, 0);
        assert_eq!(second.next().await.unwrap().unwrap(), "a");
        tx.send(Ok(bytes::Bytes::from_static(b"b"))).unwrap();
        assert_eq!(second.next().await.unwrap().unwrap(), "b");
        drop(tx);
        assert!(second.next().await.is_none());
        assert!(!log.overflowed());
    }
}
