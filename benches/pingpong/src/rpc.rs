//! One stream slot: opens a bidi call, plays ping-pong on it for the configured number of
//! round trips, half-closes, checks the outcome, and starts the next call, until the
//! schedule says stop. A slot stops at its first failure (counted as an error): any failure
//! invalidates the run, and retrying would only flood the report.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::time::Instant;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http::Uri;

use crate::args::Protocol;
use crate::codec::{self, Envelope, EnvelopeReader, FLAG_COMPRESSED, FLAG_END_STREAM};
use crate::protocol;
use crate::report::Tally;
use crate::schedule::{Phase, Schedule};

/// State shared by every slot of a run (all on one thread).
#[derive(Debug)]
pub struct Shared {
    /// gRPC or Connect.
    pub protocol: Protocol,
    /// The Bidi method's URI.
    pub uri: Uri,
    /// Round trips per call.
    pub round_trips: u64,
    /// Payload size.
    pub payload: usize,
    /// Warm-up, measurement and stop decisions.
    pub schedule: Schedule,
    /// What has been counted.
    pub tally: RefCell<Tally>,
    /// Round trips completed (warm-up included), for the stall watchdog.
    pub progress: Cell<u64>,
    /// When the last measured round trip completed.
    pub last_measured: Cell<Option<Instant>>,
}

/// Runs slot `slot` on connection `client` until the schedule stops it or it fails.
pub async fn run_slot(shared: &Shared, mut client: SendRequest<Bytes>, slot: u64) {
    let mut payload = Payload::new(shared.payload, slot);
    let mut now = Instant::now();
    loop {
        let phase = shared.schedule.next(now);
        if phase == Phase::Stop {
            return;
        }
        match call(shared, &mut client, &mut payload, phase, &mut now).await {
            Ok(Continue::Yes) => {}
            Ok(Continue::No) => return,
            Err(error) => {
                shared.tally.borrow_mut().error(error);
                return;
            }
        }
    }
}

/// Whether the slot goes on after a call.
enum Continue {
    Yes,
    No,
}

/// The slot's payload: its first (up to) eight bytes hold a counter that starts from the slot
/// number and changes with every round trip, so a stale or misrouted echo is caught, not
/// just a wrong length.
struct Payload {
    bytes: Vec<u8>,
    sequence: u64,
}

impl Payload {
    fn new(len: usize, slot: u64) -> Self {
        let bytes = (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ 0x5a)
            .collect();
        Payload {
            bytes,
            sequence: slot << 40,
        }
    }

    /// Moves to the next round trip's payload and returns it.
    fn advance(&mut self) -> &[u8] {
        self.sequence = self.sequence.wrapping_add(1);
        let stamp = self.sequence.to_le_bytes();
        let n = self.bytes.len().min(stamp.len());
        self.bytes[..n].copy_from_slice(&stamp[..n]);
        &self.bytes
    }

    fn current(&self) -> &[u8] {
        &self.bytes
    }
}

/// One bidi call. `phase` is the schedule's answer for its first round trip; `now` is kept
/// current so the slot asks for the time once per round trip.
async fn call(
    shared: &Shared,
    client: &mut SendRequest<Bytes>,
    payload: &mut Payload,
    mut phase: Phase,
    now: &mut Instant,
) -> Result<Continue, String> {
    poll_fn(|cx| client.poll_ready(cx))
        .await
        .map_err(|e| format!("connection not ready: {e}"))?;
    let (response, mut send) = client
        .send_request(protocol::request(shared.protocol, &shared.uri), false)
        .map_err(|e| format!("opening stream: {e}"))?;
    let mut response = Some(response);
    let mut body: Option<RecvStream> = None;
    let mut reader = EnvelopeReader::new();
    let mut done = 0;
    let mut go_on = Continue::Yes;

    loop {
        let started = *now;
        let envelope = codec::encode_request_envelope(payload.advance());
        send_all(&mut send, envelope).await?;

        // The head is awaited only after the first message is out: a server may hold its
        // response headers until it has something to answer.
        if let Some(response) = response.take() {
            let response = response
                .await
                .map_err(|e| format!("awaiting response headers: {e}"))?;
            let (head, recv) = response.into_parts();
            protocol::check_response_head(shared.protocol, head.status, &head.headers)?;
            body = Some(recv);
        }
        let recv = body.as_mut().expect("set with the first round trip");

        let Some(answer) = next_envelope(recv, &mut reader).await? else {
            return Err(ended_early(shared.protocol, recv).await);
        };
        check_answer(shared.protocol, &answer, payload.current())?;

        *now = Instant::now();
        shared.progress.set(shared.progress.get() + 1);
        if phase == Phase::Measured {
            let micros = now.duration_since(started).as_micros();
            let mut tally = shared.tally.borrow_mut();
            tally.round_trips += 1;
            tally
                .samples
                .push(u32::try_from(micros).unwrap_or(u32::MAX));
            shared.last_measured.set(Some(*now));
        }
        done += 1;
        if done == shared.round_trips {
            break;
        }
        phase = shared.schedule.next(*now);
        if phase == Phase::Stop {
            go_on = Continue::No;
            break;
        }
    }

    send.send_data(Bytes::new(), true)
        .map_err(|e| format!("half-closing: {e}"))?;
    let recv = body.as_mut().expect("at least one round trip was made");
    match shared.protocol {
        Protocol::Grpc => finish_grpc(recv, &mut reader).await?,
        Protocol::Connect => finish_connect(recv, &mut reader).await?,
    }
    *now = Instant::now();
    if *now >= shared.schedule.warmup_end() {
        shared.tally.borrow_mut().rpcs += 1;
    }
    Ok(go_on)
}

/// Sends `data` within the stream's send window, waiting for capacity when it runs out,
/// rather than letting h2 buffer without bound.
pub(crate) async fn send_all(send: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), String> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        while send.capacity() == 0 {
            match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("waiting for send capacity: {e}")),
                None => return Err("stream closed while sending".into()),
            }
        }
        let chunk = data.split_to(send.capacity().min(data.len()));
        send.send_data(chunk, false)
            .map_err(|e| format!("sending: {e}"))?;
    }
    Ok(())
}

/// The next whole envelope, reading (and releasing flow-control capacity for) as many DATA
/// frames as it takes; `None` when the stream ends cleanly between envelopes.
pub(crate) async fn next_envelope(
    recv: &mut RecvStream,
    reader: &mut EnvelopeReader,
) -> Result<Option<Envelope>, String> {
    loop {
        if let Some(envelope) = reader.next_envelope().map_err(|e| e.to_string())? {
            return Ok(Some(envelope));
        }
        match recv.data().await {
            Some(Ok(chunk)) => {
                // Give the window back at once: the bytes now live in `reader`.
                recv.flow_control()
                    .release_capacity(chunk.len())
                    .map_err(|e| format!("releasing capacity: {e}"))?;
                reader.push(&chunk);
            }
            Some(Err(e)) => return Err(format!("receiving: {e}")),
            None if reader.buffered() > 0 => {
                return Err("stream ended inside an envelope".into());
            }
            None => return Ok(None),
        }
    }
}

/// Checks one response envelope against the payload just sent.
pub(crate) fn check_answer(
    protocol: Protocol,
    answer: &Envelope,
    sent: &[u8],
) -> Result<(), String> {
    if protocol == Protocol::Connect && answer.flags & FLAG_END_STREAM != 0 {
        return Err(match protocol::check_connect_end(&answer.message) {
            Ok(()) => "end of stream instead of a response".into(),
            Err(error) => error,
        });
    }
    if answer.flags & FLAG_COMPRESSED != 0 {
        return Err("compressed response, though the driver offers no compression".into());
    }
    if answer.flags != 0 {
        return Err(format!("unexpected envelope flags {:#04x}", answer.flags));
    }
    let echoed = codec::decode_echo_response(&answer.message).map_err(|e| e.to_string())?;
    if echoed != sent {
        return Err(format!(
            "payload mismatch: sent {} bytes, got {} bytes",
            sent.len(),
            echoed.len()
        ));
    }
    Ok(())
}

/// Explains a stream that ended where a response was expected.
async fn ended_early(protocol: Protocol, recv: &mut RecvStream) -> String {
    if protocol == Protocol::Grpc
        && let Ok(Some(trailers)) = recv.trailers().await
        && let Err(error) = protocol::check_grpc_trailers(&trailers)
    {
        return format!("stream ended before the response: {error}");
    }
    "stream ended before the response".into()
}

/// After the half-close: no further message, then trailers with `grpc-status: 0`.
async fn finish_grpc(recv: &mut RecvStream, reader: &mut EnvelopeReader) -> Result<(), String> {
    if next_envelope(recv, reader).await?.is_some() {
        return Err("message after the half-close".into());
    }
    let trailers = recv
        .trailers()
        .await
        .map_err(|e| format!("reading trailers: {e}"))?
        .ok_or("stream ended without trailers")?;
    protocol::check_grpc_trailers(&trailers)
}

/// After the half-close: exactly one end-of-stream envelope without an error, then the end.
async fn finish_connect(recv: &mut RecvStream, reader: &mut EnvelopeReader) -> Result<(), String> {
    let end = next_envelope(recv, reader)
        .await?
        .ok_or("stream ended without an end-of-stream message")?;
    if end.flags != FLAG_END_STREAM {
        return Err(format!(
            "expected the end-of-stream message, got flags {:#04x}",
            end.flags
        ));
    }
    protocol::check_connect_end(&end.message)?;
    if next_envelope(recv, reader).await?.is_some() {
        return Err("data after the end-of-stream message".into());
    }
    Ok(())
}
