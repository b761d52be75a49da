//! End-to-end tests of the driver against a small in-process h2c server written on `h2`'s
//! server side, which can split its answers into tiny DATA frames and misbehave on demand.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::args::{self, Args, Protocol};
use crate::codec::{self, EnvelopeReader, FLAG_END_STREAM};
use crate::run;

/// How the test server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behavior {
    /// Echo correctly, writing every DATA frame at most `chunk` bytes long.
    Echo { chunk: usize },
    /// Answer with a changed payload.
    Mismatch,
    /// gRPC trailers-only error response.
    TrailersOnly,
    /// Echo, then end with a non-zero grpc-status or a Connect error.
    FailAtEnd,
    /// Answer the first message with two.
    ExtraMessage,
    /// HTTP 503 without a body.
    Unavailable,
    /// Accept the stream and never answer.
    Silent,
}

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    messages: Cell<u64>,
    streams_completed: Cell<u64>,
}

async fn start_server(behavior: Behavior) -> (std::net::SocketAddr, Rc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Rc::new(Seen::default());
    let seen2 = Rc::clone(&seen);
    tokio::task::spawn_local(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tcp.set_nodelay(true).unwrap();
            let seen = Rc::clone(&seen2);
            tokio::task::spawn_local(async move {
                // h2's default budget for small unread DATA frames (about a hundred) would
                // make this server hang up on the many-streams test; see run.rs.
                let Ok(mut connection) = h2::server::Builder::new()
                    .data_frame_budget(1 << 30)
                    .handshake(tcp)
                    .await
                else {
                    return;
                };
                while let Some(Ok((request, respond))) = connection.accept().await {
                    let seen = Rc::clone(&seen);
                    tokio::task::spawn_local(serve_stream(request, respond, behavior, seen));
                }
            });
        }
    });
    (addr, seen)
}

fn envelope(flags: u8, message: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(flags);
    buf.put_u32(message.len() as u32);
    buf.put_slice(message);
    buf.freeze()
}

/// Sends `data` as DATA frames of at most `chunk` bytes (h2 writes each `send_data` call as
/// its own frame when there is window for it).
fn send_chunked(send: &mut h2::SendStream<Bytes>, mut data: Bytes, chunk: usize, end: bool) {
    while data.len() > chunk {
        send.send_data(data.split_to(chunk), false).unwrap();
    }
    send.send_data(data, end).unwrap();
}

async fn next_request(body: &mut RecvStream, reader: &mut EnvelopeReader) -> Option<Vec<u8>> {
    loop {
        if let Some(env) = reader.next_envelope().unwrap() {
            return Some(codec::decode_echo_response(&env.message).unwrap().to_vec());
        }
        let chunk = body.data().await?.ok()?;
        body.flow_control().release_capacity(chunk.len()).unwrap();
        reader.push(&chunk);
    }
}

async fn serve_stream(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    behavior: Behavior,
    seen: Rc<Seen>,
) {
    assert_eq!(request.uri().path(), "/bench.v1.EchoService/Bidi");
    let connect = request.headers()["content-type"] == "application/connect+proto";
    let content_type = if connect {
        "application/connect+proto"
    } else {
        "application/grpc"
    };
    let mut head = Response::builder().header("content-type", content_type);
    match behavior {
        Behavior::Unavailable => {
            let response = Response::builder().status(503).body(()).unwrap();
            respond.send_response(response, true).unwrap();
            return;
        }
        Behavior::TrailersOnly => {
            head = head
                .header("grpc-status", "14")
                .header("grpc-message", "try later");
            respond.send_response(head.body(()).unwrap(), true).unwrap();
            return;
        }
        _ => {}
    }
    let mut body = request.into_body();
    let mut reader = EnvelopeReader::new();
    let mut send = respond
        .send_response(head.status(StatusCode::OK).body(()).unwrap(), false)
        .unwrap();
    let chunk = match behavior {
        Behavior::Echo { chunk } => chunk,
        _ => usize::MAX,
    };
    while let Some(mut payload) = next_request(&mut body, &mut reader).await {
        seen.messages.set(seen.messages.get() + 1);
        match behavior {
            Behavior::Silent => std::future::pending::<()>().await,
            Behavior::Mismatch => payload.push(0),
            _ => {}
        }
        let answer = codec::encode_request_envelope(&payload);
        send_chunked(&mut send, answer.clone(), chunk, false);
        if behavior == Behavior::ExtraMessage {
            send_chunked(&mut send, answer, chunk, false);
        }
    }
    let fail = behavior == Behavior::FailAtEnd;
    if connect {
        let end: &[u8] = if fail {
            br#"{"error":{"code":"internal","message":"boom"}}"#
        } else {
            b"{}"
        };
        send_chunked(&mut send, envelope(FLAG_END_STREAM, end), chunk, true);
    } else {
        let mut trailers = HeaderMap::new();
        let status = if fail { "13" } else { "0" };
        trailers.insert("grpc-status", HeaderValue::from_static(status));
        if send.send_trailers(trailers).is_err() {
            return;
        }
    }
    seen.streams_completed.set(seen.streams_completed.get() + 1);
}

fn args(addr: std::net::SocketAddr, protocol: Protocol, extra: &[&str]) -> Args {
    let mut flags = vec![
        "--addr".to_string(),
        addr.to_string(),
        "--protocol".into(),
        match protocol {
            Protocol::Grpc => "grpc".into(),
            Protocol::Connect => "connect".into(),
        },
        "--warmup".into(),
        "0".into(),
    ];
    flags.extend(extra.iter().map(|s| s.to_string()));
    match args::parse(flags).unwrap() {
        args::Parsed::Run(args) => args,
        args::Parsed::Help => unreachable!(),
    }
}

/// Runs a server with `behavior` and the driver against it, both on this thread.
async fn drive(behavior: Behavior, protocol: Protocol, extra: &[&str]) -> (run::Outcome, Rc<Seen>) {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (addr, seen) = start_server(behavior).await;
            let args = args(addr, protocol, extra);
            (run::run(&args).await, seen)
        })
        .await
}

#[tokio::test]
async fn exact_total_over_split_frames() {
    for protocol in [Protocol::Grpc, Protocol::Connect] {
        for chunk in [1, 3, usize::MAX] {
            let (outcome, seen) = drive(
                Behavior::Echo { chunk },
                protocol,
                // Small payloads: h2's client closes a connection that buffers hundreds
                // of tiny frames at once (its data-frame budget), and no real server
                // splits that finely.
                &[
                    "--total",
                    "300",
                    "--streams",
                    "4",
                    "--connections",
                    "2",
                    "--round-trips",
                    "7",
                    "--payload",
                    "20",
                ],
            )
            .await;
            let report = &outcome.report;
            assert_eq!(
                report.errors, 0,
                "{protocol:?} chunk {chunk}: {:?}",
                outcome.first_errors
            );
            assert_eq!(report.round_trips, 300);
            assert_eq!(
                seen.messages.get(),
                300,
                "the server saw exactly --total messages"
            );
            // 300 / 7 = 42 full calls plus at most one shortened call per slot.
            assert!((43..=46).contains(&report.rpcs), "rpcs {}", report.rpcs);
            assert_eq!(report.rpcs, seen.streams_completed.get());
            assert!(report.p50_us <= report.p99_us && report.p99_us <= report.max_us);
            assert!(report.seconds > 0.0 && report.round_trips_per_sec > 0.0);
        }
    }
}

#[tokio::test]
async fn payloads_larger_than_the_flow_control_windows() {
    // 200 kB messages exceed both default 64 KiB windows: the driver must wait for send
    // capacity and release receive capacity, or this stalls.
    for protocol in [Protocol::Grpc, Protocol::Connect] {
        let (outcome, seen) = drive(
            Behavior::Echo { chunk: 16_384 },
            protocol,
            &[
                "--total",
                "20",
                "--streams",
                "2",
                "--round-trips",
                "4",
                "--payload",
                "200000",
                "--stall-timeout",
                "5",
            ],
        )
        .await;
        assert_eq!(
            outcome.report.errors, 0,
            "{protocol:?}: {:?}",
            outcome.first_errors
        );
        assert_eq!(outcome.report.round_trips, 20);
        assert_eq!(seen.messages.get(), 20);
    }
}

#[tokio::test]
async fn duration_mode_with_warmup() {
    let local = tokio::task::LocalSet::new();
    let (outcome, seen) = local
        .run_until(async {
            let (addr, seen) = start_server(Behavior::Echo { chunk: 16 }).await;
            let mut args = args(
                addr,
                Protocol::Connect,
                &["--duration", "0.3", "--payload", "0"],
            );
            args.warmup = Duration::from_millis(200);
            (run::run(&args).await, seen)
        })
        .await;
    let report = &outcome.report;
    assert_eq!(report.errors, 0, "{:?}", outcome.first_errors);
    assert!(report.round_trips > 0);
    // Warm-up round trips reached the server but were not counted.
    assert!(seen.messages.get() > report.round_trips);
    assert!(
        report.seconds >= 0.25 && report.seconds < 1.0,
        "{}",
        report.seconds
    );
}

async fn expect_errors(behavior: Behavior, protocol: Protocol, needle: &str) {
    expect_errors_with(behavior, protocol, "5", needle).await;
}

async fn expect_errors_with(
    behavior: Behavior,
    protocol: Protocol,
    round_trips: &str,
    needle: &str,
) {
    let (outcome, _) = drive(
        behavior,
        protocol,
        &[
            "--total",
            "50",
            "--streams",
            "2",
            "--round-trips",
            round_trips,
            "--stall-timeout",
            "0.5",
        ],
    )
    .await;
    assert_eq!(
        outcome.report.errors, 2,
        "{behavior:?} {protocol:?}: one per slot"
    );
    assert!(
        outcome.first_errors.iter().all(|e| e.contains(needle)),
        "{behavior:?} {protocol:?}: {:?} should mention {needle:?}",
        outcome.first_errors
    );
}

#[tokio::test]
async fn failures_are_counted() {
    for protocol in [Protocol::Grpc, Protocol::Connect] {
        expect_errors(Behavior::Mismatch, protocol, "payload mismatch").await;
        expect_errors(
            Behavior::FailAtEnd,
            protocol,
            if protocol == Protocol::Grpc {
                "grpc-status \"13\""
            } else {
                "boom"
            },
        )
        .await;
        // A surplus answer is taken for the next one, or found after the half-close.
        expect_errors(Behavior::ExtraMessage, protocol, "payload mismatch").await;
        let after = if protocol == Protocol::Grpc {
            "message after the half-close"
        } else {
            "expected the end-of-stream message"
        };
        expect_errors_with(Behavior::ExtraMessage, protocol, "1", after).await;
        expect_errors(Behavior::Unavailable, protocol, "HTTP status 503").await;
        expect_errors(Behavior::Silent, protocol, "abandoned").await;
    }
    expect_errors(Behavior::TrailersOnly, Protocol::Grpc, "trailers-only").await;
}

#[tokio::test]
async fn refused_connection_is_an_error() {
    // Bind and drop to find a port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let args = args(addr, Protocol::Grpc, &["--total", "1"]);
    let outcome = tokio::task::LocalSet::new()
        .run_until(run::run(&args))
        .await;
    assert_eq!(outcome.report.errors, 1);
    assert_eq!(outcome.report.round_trips, 0);
}

/// 200 streams on one connection answer at once: the driver must not take the burst of
/// small frames for an attack (h2's default data-frame budget would).
#[tokio::test]
async fn many_streams_on_one_connection() {
    for protocol in [Protocol::Grpc, Protocol::Connect] {
        let (outcome, _) = drive(
            Behavior::Echo { chunk: usize::MAX },
            protocol,
            &[
                "--total",
                "5000",
                "--streams",
                "200",
                "--round-trips",
                "1",
                "--payload",
                "0",
            ],
        )
        .await;
        assert_eq!(
            outcome.report.errors, 0,
            "{protocol:?}: {:?}",
            outcome.first_errors
        );
    }
}
