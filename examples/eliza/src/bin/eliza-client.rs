//! Talks to the Eliza demo with the generated client:
//! `cargo run -p eliza --bin eliza-client -- [--url http://127.0.0.1:8080] [--h2c] [sentence...]`.

use eliza::proto::{ConverseRequest, ElizaServiceClient, IntroduceRequest, SayRequest};
use futures_util::StreamExt as _;
use switchboard::client::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "http://127.0.0.1:8080".to_owned();
    let mut h2c = false;
    let mut sentences = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next().ok_or("--url needs a value")?,
            "--h2c" => h2c = true,
            _ => sentences.push(arg),
        }
    }
    if sentences.is_empty() {
        sentences = vec![
            "Hello.".into(),
            "I feel happy today.".into(),
            "Goodbye.".into(),
        ];
    }
    let client = ElizaServiceClient::new(if h2c {
        Client::h2c(&url)?
    } else {
        Client::http1(&url)?
    });

    let said = client
        .say(SayRequest {
            sentence: sentences[0].clone(),
        })
        .await?;
    println!("say: {}", said.message().sentence);

    let mut intro = client
        .introduce(IntroduceRequest {
            name: "Rustacean".into(),
        })
        .await?
        .into_message();
    while let Some(message) = intro.next().await {
        println!("introduce: {}", message?.sentence);
    }

    let requests = futures_util::stream::iter(
        sentences
            .into_iter()
            .map(|sentence| ConverseRequest { sentence }),
    );
    let mut replies = client
        .converse(switchboard::Request::new(requests))
        .await?
        .into_message();
    while let Some(reply) = replies.next().await {
        println!("converse: {}", reply?.sentence);
    }
    Ok(())
}
