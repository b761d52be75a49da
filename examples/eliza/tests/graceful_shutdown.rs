//! SIGTERM, the stop signal of process managers and Kubernetes, stops the demo gracefully:
//! health turns NOT_SERVING, new connections are refused, and a conversation in flight goes
//! on until its caller ends it, with an ordinary status; then the process exits 0. (Before,
//! SIGTERM killed the process and cut every call off.)
#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::start_demo;
use eliza::proto::{ConverseRequest, ElizaServiceClient};
use switchboard::client::Client;
use switchboard::{Code, Request};
use switchboard_health::{HealthCheckRequest, HealthClient, ServingStatus};

#[tokio::test]
async fn sigterm_lets_the_call_in_flight_finish_and_exits_cleanly() {
    let (mut demo, addr) = start_demo();
    let url = format!("http://{addr}");

    // A conversation in flight, fed one sentence at a time.
    let (say, said) = tokio::sync::mpsc::channel::<ConverseRequest>(1);
    let requests = futures_util::stream::unfold(said, |mut said| async move {
        said.recv().await.map(|sentence| (sentence, said))
    });
    let eliza = ElizaServiceClient::new(Client::h2c(&url).unwrap());
    let mut answers = eliza
        .converse(Request::new(requests))
        .await
        .unwrap()
        .into_message();
    let sentence = |text: &str| ConverseRequest {
        sentence: text.into(),
    };
    say.send(sentence("Hello")).await.unwrap();
    assert!(answers.message().await.unwrap().is_some());

    // A health watch, SERVING until the signal.
    let health = HealthClient::new(Client::h2c(&url).unwrap());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_message();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    let pid = demo.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    // Load balancers hear first.
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the watch hears of the shutdown")
        .unwrap()
        .expect("a status before the watch ends");
    assert_eq!(next.status(), ServingStatus::NotServing);

    // New connections are refused (the listener is closed once shutdown has begun).
    let fresh = ElizaServiceClient::new(Client::h2c(&url).unwrap());
    let refused = fresh
        .say(eliza::proto::SayRequest {
            sentence: "Anyone?".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");

    // The conversation in flight is still answered, and ends cleanly when its caller ends it.
    say.send(sentence("I feel happy.")).await.unwrap();
    let answer = answers
        .message()
        .await
        .unwrap()
        .expect("an answer during shutdown");
    assert!(!answer.sentence.is_empty());
    drop(say);
    assert!(answers.message().await.unwrap().is_none(), "a clean end");

    // Then the process exits by itself, successfully.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}
