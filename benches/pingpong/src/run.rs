//! A whole run: open the connections, start the stream slots, watch for stalls, and sum up.
//!
//! Everything runs on one thread inside a `LocalSet`: the harness pins the driver to one
//! core, where a multi-thread runtime would only add cross-thread wake-ups.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::args::{Args, Limit};
use crate::protocol;
use crate::report::{Report, Tally};
use crate::rpc::{self, Shared};
use crate::schedule::Schedule;

/// Receive windows large enough that the driver never throttles a server's answers, even
/// for large payloads on many streams: what is measured is the server, within its own send
/// and receive windows.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// See [`STREAM_WINDOW`].
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// h2 (0.4.20 and later) closes a connection with ENHANCE_YOUR_CALM once too many small
/// DATA frames sit unread in its buffers (about a hundred by default). With many streams
/// on one connection, a burst of small answers arrives before this single thread gets to
/// read them, so the default would make the driver hang up on a well-behaved server. The
/// limit guards against hostile peers; the server under test is not one.
const DATA_FRAME_BUDGET: usize = 1 << 30;

/// How long the connections get to close politely once the slots are done.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The outcome: the report and the first few error messages.
pub struct Outcome {
    /// Printed for the harness.
    pub report: Report,
    /// Printed to stderr.
    pub first_errors: Vec<String>,
}

/// Runs the load described by `args`. Must be called inside a `LocalSet`.
pub async fn run(args: &Args) -> Outcome {
    let mut tally = Tally::default();
    if let Limit::Total(total) = args.limit {
        tally
            .samples
            .reserve(usize::try_from(total).unwrap_or(0).min(1 << 26));
    }

    let mut clients = Vec::with_capacity(args.connections);
    let mut drivers = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        match connect(args.addr).await {
            Ok((client, driver)) => {
                clients.push(client);
                drivers.push(driver);
            }
            Err(error) => tally.error(error),
        }
    }
    if clients.len() < args.connections {
        // A run on fewer connections than asked would measure something else.
        return finish(tally, 0.0, drivers).await;
    }

    let start = Instant::now();
    let shared = Rc::new(Shared {
        protocol: args.protocol,
        uri: protocol::bidi_uri(args.addr),
        round_trips: args.round_trips,
        payload: args.payload,
        schedule: Schedule::new(start, args.warmup, args.limit),
        tally: RefCell::new(tally),
        progress: Cell::new(0),
        last_measured: Cell::new(None),
    });

    let mut slots: Vec<JoinHandle<()>> = (0..args.streams)
        .map(|slot| {
            let shared = Rc::clone(&shared);
            let client = clients[slot % clients.len()].clone();
            tokio::task::spawn_local(
                async move { rpc::run_slot(&shared, client, slot as u64).await },
            )
        })
        .collect();
    drop(clients);

    let stalled = tokio::select! {
        () = join_all(&mut slots) => false,
        () = watchdog(&shared.progress, args.stall_timeout) => true,
    };
    if stalled {
        let mut tally = shared.tally.borrow_mut();
        for slot in &slots {
            if !slot.is_finished() {
                slot.abort();
                tally.error(format!(
                    "no round trip completed for {:?}; stream abandoned",
                    args.stall_timeout
                ));
            }
        }
    }
    // Let aborted slots drop their streams before the connections are closed.
    join_all(&mut slots).await;

    let seconds = shared
        .last_measured
        .get()
        .map(|last| {
            last.duration_since(shared.schedule.warmup_end())
                .as_secs_f64()
        })
        .unwrap_or(0.0);
    let shared = Rc::try_unwrap(shared).expect("every slot has ended");
    finish(shared.tally.into_inner(), seconds, drivers).await
}

/// Opens one h2c connection (prior knowledge) and spawns the task that drives it.
pub(crate) async fn connect(
    addr: SocketAddr,
) -> Result<(SendRequest<Bytes>, JoinHandle<()>), String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    // Ping-pong sends one small frame and waits: Nagle would add a delayed-ACK stall.
    tcp.set_nodelay(true)
        .map_err(|e| format!("setting TCP_NODELAY: {e}"))?;
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .data_frame_budget(DATA_FRAME_BUDGET)
        .handshake(tcp)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))?;
    let driver = tokio::task::spawn_local(async move {
        // Failures surface on the streams, where they are counted.
        let _ = connection.await;
    });
    Ok((client, driver))
}

/// Waits for every handle, ignoring how each ended (slots record their own failures).
/// Finished handles are removed, so a wait cut short can be resumed without polling a
/// completed handle again.
async fn join_all(handles: &mut Vec<JoinHandle<()>>) {
    while let Some(last) = handles.last_mut() {
        let _ = last.await;
        handles.pop();
    }
}

/// Completes once `progress` has not moved for `timeout`.
async fn watchdog(progress: &Cell<u64>, timeout: Duration) {
    let tick = timeout.min(Duration::from_secs(1));
    let mut last = progress.get();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = progress.get();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= timeout {
            return;
        }
    }
}

/// Closes the connections (every `SendRequest` is gone, so h2 ends them once idle) and
/// builds the report.
async fn finish(mut tally: Tally, seconds: f64, drivers: Vec<JoinHandle<()>>) -> Outcome {
    let close = async {
        for driver in drivers {
            let _ = driver.await;
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, close).await;
    let report = Report::new(&mut tally, seconds);
    Outcome {
        report,
        first_errors: tally.first_errors,
    }
}
