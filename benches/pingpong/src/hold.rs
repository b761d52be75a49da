//! `--hold`: connections and idle streams kept open, for measuring what a server keeps per
//! idle HTTP/2 connection and per open stream.
//!
//! The calls are opened one after another, never in a burst, so no server's flood
//! protection is what is measured. Each makes one round trip (the server has then run the
//! handler and answered its first message) and is then left open, neither side sending.

use std::future::poll_fn;
use std::io::Write as _;

use bytes::Bytes;
use h2::{RecvStream, SendStream};

use crate::args::Args;
use crate::codec::{self, EnvelopeReader};
use crate::{protocol, rpc, run};

/// Opens everything `args` asks for, prints the `holding` line and never returns unless
/// something fails.
pub async fn hold(args: &Args) -> Result<(), String> {
    let mut clients = Vec::with_capacity(args.connections);
    let mut drivers = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (client, driver) = run::connect(args.addr).await?;
        clients.push(client);
        drivers.push(driver);
    }
    let uri = protocol::bidi_uri(args.addr);
    let payload = vec![0x5a; args.payload];
    let mut held: Vec<(SendStream<Bytes>, RecvStream)> = Vec::with_capacity(args.streams);
    for stream in 0..args.streams {
        let client = &mut clients[stream % args.connections];
        poll_fn(|cx| client.poll_ready(cx))
            .await
            .map_err(|e| format!("connection not ready: {e}"))?;
        let (response, mut send) = client
            .send_request(protocol::request(args.protocol, &uri), false)
            .map_err(|e| format!("opening stream {stream}: {e}"))?;
        rpc::send_all(&mut send, codec::encode_request_envelope(&payload)).await?;
        let (head, mut recv) = response
            .await
            .map_err(|e| format!("stream {stream}: awaiting response headers: {e}"))?
            .into_parts();
        protocol::check_response_head(args.protocol, head.status, &head.headers)?;
        let mut reader = EnvelopeReader::new();
        let answer = rpc::next_envelope(&mut recv, &mut reader)
            .await?
            .ok_or_else(|| format!("stream {stream} ended before the echo"))?;
        rpc::check_answer(args.protocol, &answer, &payload)?;
        held.push((send, recv));
    }
    println!(
        "holding {} streams on {} connections",
        held.len(),
        args.connections
    );
    let _ = std::io::stdout().flush();
    // A connection that ends ends the hold: the measurement would be wrong. (Watching the
    // first one is enough to catch a server that drops everything.)
    match drivers.into_iter().next() {
        Some(driver) => {
            let _ = driver.await;
            Err("a connection closed while held".into())
        }
        None => std::future::pending().await,
    }
}
