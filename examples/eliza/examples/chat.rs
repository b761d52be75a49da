//! A chat room over a bidi stream: every sentence said on one `Converse` stream is heard on
//! all of them, prefixed with the speaker's name (the `x-name` request header).
//!
//! `cargo run -p eliza --example chat` serves the room on a free port, lets Ada and Bob talk
//! through it over HTTP/2 (each on a connection of their own), checks that each heard the
//! other, and exits; `-- --addr 127.0.0.1:8082` serves the room until Ctrl-C instead.
//!
//! The room is a `tokio::sync::broadcast` channel. Each stream's handler welcomes its
//! participant, then forwards what they say into the channel and the channel's messages out
//! to them; a participant who leaves ends their request stream, which ends their half of the
//! room.

use std::time::Duration;

use eliza::proto::*;
use futures_util::StreamExt as _;
use switchboard::client::Client;
use switchboard::server::{Router, Server};
use switchboard::{Error, Request, Response, ResponseStream, Streaming};
use tokio::sync::{broadcast, mpsc};

/// The room: one broadcast channel every participant speaks into and listens to.
#[derive(Clone)]
struct Room {
    said: broadcast::Sender<String>,
}

impl ElizaService for Room {
    async fn converse(
        &self,
        request: Request<Streaming<ConverseRequest>>,
    ) -> Result<Response<ResponseStream<ConverseResponse>>, Error> {
        let name = request
            .headers()
            .get("x-name")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("someone")
            .to_owned();
        let mut heard = self.said.subscribe();
        let said = self.said.clone();
        let welcome = format!("welcome, {name}");
        let mut sentences = request.into_message();
        // What this participant says goes to the room, until they leave.
        tokio::spawn(async move {
            while let Some(Ok(message)) = sentences.next().await {
                let _ = said.send(format!("{name}: {}", message.sentence));
            }
        });
        // What the room says goes to this participant; the stream ends when the room
        // closes or the participant stops listening.
        let (tx, rx) = mpsc::channel(16);
        // A welcome first: once a participant has read it, they are in the room and hear
        // everything said from then on (a bidi call's client may not wait for the server).
        tokio::spawn(async move {
            if tx
                .send(Ok(ConverseResponse { sentence: welcome }))
                .await
                .is_err()
            {
                return;
            }
            while let Ok(sentence) = heard.recv().await {
                if tx.send(Ok(ConverseResponse { sentence })).await.is_err() {
                    break;
                }
            }
        });
        let replies = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

fn room() -> Router {
    let (said, _) = broadcast::channel(64);
    Router::new().add_service(ElizaServiceServer::new(Room { said }))
}

/// A participant: a sender for what they say and the stream of what they hear.
async fn join(
    url: &str,
    name: &str,
) -> Result<(mpsc::Sender<String>, Streaming<ConverseResponse>), Box<dyn std::error::Error>> {
    let client = ElizaServiceClient::new(Client::h2c(url)?);
    let (tx, rx) = mpsc::channel::<String>(8);
    let sentences = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|sentence| (ConverseRequest { sentence }, rx))
    });
    let request = Request::new(sentences).with_header(
        http::HeaderName::from_static("x-name"),
        http::HeaderValue::from_str(name)?,
    );
    let mut heard = client.converse(request).await?.into_message();
    let welcome = next(&mut heard).await?;
    assert_eq!(welcome, format!("welcome, {name}"));
    Ok((tx, heard))
}

/// Waits for the next sentence heard, for at most five seconds.
async fn next(
    heard: &mut Streaming<ConverseResponse>,
) -> Result<String, Box<dyn std::error::Error>> {
    let message = tokio::time::timeout(Duration::from_secs(5), heard.message())
        .await
        .map_err(|_| "nothing heard within 5 s")??
        .ok_or("the room closed")?;
    Ok(message.sentence)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    if let (Some(flag), Some(addr)) = (args.next(), args.next())
        && flag == "--addr"
    {
        println!("chat room on http://{addr}");
        Server::new(room()).serve(addr.parse()?).await?;
        return Ok(());
    }

    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse()?).await?;
    tokio::spawn(Server::new(room()).serve_with_shutdown(listener, std::future::pending()));
    let url = format!("http://{addr}");

    let (ada, mut ada_hears) = join(&url, "Ada").await?;
    let (bob, mut bob_hears) = join(&url, "Bob").await?;
    // Both are in the room: each has been welcomed.
    ada.send("hello, is anyone here?".into()).await?;
    let first = next(&mut ada_hears).await?;
    assert_eq!(first, "Ada: hello, is anyone here?");
    println!("Ada hears  {first}");
    let bob_first = next(&mut bob_hears).await?;
    assert_eq!(bob_first, "Ada: hello, is anyone here?");
    println!("Bob hears  {bob_first}");

    bob.send("hi Ada, Bob here".into()).await?;
    for (who, heard) in [("Ada", &mut ada_hears), ("Bob", &mut bob_hears)] {
        let sentence = next(heard).await?;
        assert_eq!(sentence, "Bob: hi Ada, Bob here");
        println!("{who} hears  {sentence}");
    }
    drop((ada, bob));
    println!("chat: both participants heard each other");
    Ok(())
}
