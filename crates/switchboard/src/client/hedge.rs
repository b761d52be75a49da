//! Hedging: several copies of a call in flight, the first good answer wins.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use prost_reflect::MessageDescriptor;

use super::{Client, Transport};
use crate::codec::Message;
use crate::protocol::{OutgoingBody, OutgoingCall};
use crate::request::Response;
use crate::spec::{Idempotency, Spec};
use crate::{Code, Error};

/// gRPC's cap on copies of a call.
const MAX_ATTEMPTS: u32 = 5;

/// How a side-effect-free call is hedged.
///
/// For methods that declare themselves safe to repeat (`NO_SIDE_EFFECTS` or `IDEMPOTENT` in
/// the schema's `idempotency_level`), a [`HedgingPolicy`] sends the call, and when no answer
/// has come after `delay`, sends it again, up to `max_attempts` copies in flight (gRPC's cap,
/// 5). The first success, or the first failure with a code not listed as non-fatal, is the
/// call's answer, and the copies still running are cancelled (their streams reset). A
/// non-fatal failure sends the next copy at once. Hedges draw on the client's
/// [`RetryBudget`](super::RetryBudget) like retries do, and all copies share the call's one
/// deadline. This trims the tail latency a slow replica adds, at the price of extra load,
/// which the budget bounds. Methods that do not declare idempotency are never hedged; a
/// [`RetryPolicy`](super::RetryPolicy) still applies to them.
#[derive(Clone, Debug, PartialEq)]
pub struct HedgingPolicy {
    max_attempts: u32,
    delay: Duration,
    non_fatal_codes: Vec<Code>,
}

impl Default for HedgingPolicy {
    /// Up to three copies, 50 ms apart; `unavailable` is non-fatal.
    fn default() -> Self {
        HedgingPolicy {
            max_attempts: 3,
            delay: Duration::from_millis(50),
            non_fatal_codes: vec![Code::Unavailable],
        }
    }
}

impl HedgingPolicy {
    /// The default policy (see [`Default`]).
    pub fn new() -> Self {
        HedgingPolicy::default()
    }

    /// Copies in all, the first included: 1 turns hedging off; above 5 counts as 5.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.clamp(1, MAX_ATTEMPTS);
        self
    }

    /// How long to wait for an answer before sending the next copy (zero: all at once).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The codes after which the next copy goes out at once instead of ending the call.
    pub fn non_fatal_codes(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.non_fatal_codes = codes.into_iter().collect();
        self
    }
}

impl HedgingPolicy {
    /// Whether the policy sends more than one copy.
    pub(crate) fn hedges(&self) -> bool {
        self.max_attempts > 1
    }
}

/// Whether `spec` may be hedged: its schema says repeating it is harmless.
pub(crate) fn may_hedge(spec: &Spec) -> bool {
    matches!(
        spec.idempotency(),
        Idempotency::NoSideEffects | Idempotency::Idempotent
    )
}

impl<T: Transport> Client<T> {
    /// A unary call under `policy`: copies sent `policy.delay` apart until one answers.
    pub(super) async fn hedged<Res: Message>(
        &self,
        call: &OutgoingCall,
        payload: &Bytes,
        policy: &HedgingPolicy,
        output: Option<MessageDescriptor>,
    ) -> Result<Response<Res>, Error> {
        let retries = &self.shared.config.retries;
        retries.start();
        let attempt = |previous: u32| {
            let output = output.clone();
            async move {
                let body = OutgoingBody::Unary(payload.clone());
                let incoming = self.exchange_attempt(call, body, previous).await?;
                self.unary_reply::<Res>(incoming, call.codec, output).await
            }
        };
        let mut in_flight = FuturesUnordered::new();
        in_flight.push(attempt(0));
        let mut sent = 1u32;
        let mut throttled = false;
        let mut last_error = None;
        loop {
            let may_send = sent < policy.max_attempts && !throttled;
            let next_copy = async {
                if may_send {
                    tokio::time::sleep(policy.delay).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let send_now = tokio::select! {
                finished = in_flight.next() => match finished {
                    Some(Ok(response)) => return Ok(response),
                    Some(Err(error)) if policy.non_fatal_codes.contains(&error.code()) => {
                        last_error = Some(error);
                        may_send
                    }
                    Some(Err(error)) => return Err(error),
                    None => {
                        return Err(last_error
                            .unwrap_or_else(|| Error::internal("hedging: no attempt ran")));
                    }
                },
                () = next_copy => true,
            };
            if send_now {
                if retries.withdraw_hedge() {
                    in_flight.push(attempt(sent));
                    sent += 1;
                } else {
                    throttled = true;
                }
                if in_flight.is_empty() {
                    return Err(last_error.unwrap_or_else(|| Error::internal("hedging throttled")));
                }
            } else if in_flight.is_empty() {
                return Err(
                    last_error.unwrap_or_else(|| Error::internal("hedging: no attempt ran"))
                );
            }
        }
    }
}
