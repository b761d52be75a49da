//! The client side of `cargo xtask scale`: a bounded load of `Say` calls (a unary method
//! declared `NO_SIDE_EFFECTS`) from several tasks, against one URL (a proxy in front of the
//! replicas) or balanced by the client over several, with retries on, while the replicas are
//! stopped and killed under it. Every reply is checked against the one Eliza must give.
//!
//! ```text
//! cargo run -p eliza --example scale -- --protocol grpc --url http://127.0.0.1:8080 \
//!     --seconds 3 --tasks 8
//! cargo run -p eliza --example scale -- --protocol connect \
//!     --balance http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083
//! ```
//!
//! Prints `started` when the load begins (the harness disrupts the replicas from then on) and,
//! at the end, one line of JSON: calls sent, succeeded, failed (by code, and the first few
//! errors), and what the retries did. Exits non-zero if any call failed or was mis-answered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eliza::doctor;
use eliza::proto::{ElizaServiceClient, SayRequest};
use switchboard::Protocol;
use switchboard::client::{
    Balanced, Client, ClientConfig, HedgingPolicy, HttpTransport, RetryCounts, RetryPolicy,
    Transport,
};

struct Options {
    protocol: Protocol,
    url: Option<String>,
    http1: bool,
    balance: Vec<String>,
    seconds: u64,
    tasks: usize,
    hedge: bool,
    retry: bool,
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    sent: u64,
    succeeded: u64,
    failed: BTreeMap<String, u64>,
    first_errors: Vec<String>,
}

const SENTENCES: [&str; 4] = [
    "I feel happy.",
    "Hello",
    "I am sad about my code.",
    "Why do the replicas keep going away?",
];

async fn load<T: Transport>(client: ElizaServiceClient<T>, options: &Options) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let until = Instant::now() + Duration::from_secs(options.seconds);
    let mut tasks = Vec::new();
    for task in 0..options.tasks {
        let client = client.clone();
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = task;
            while Instant::now() < until {
                let sentence = SENTENCES[i % SENTENCES.len()];
                i += 1;
                let result = client
                    .say(SayRequest {
                        sentence: sentence.to_owned(),
                    })
                    .await;
                record(&mut tally.lock().unwrap(), sentence, result);
                // A bounded load: a short pause between one task's calls.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Arc::try_unwrap(tally)
        .map(|tally| tally.into_inner().unwrap())
        .unwrap_or_default()
}

/// Counts one call's outcome.
fn record(
    tally: &mut Tally,
    sentence: &str,
    result: Result<switchboard::Response<eliza::proto::SayResponse>, switchboard::Error>,
) {
    tally.sent += 1;
    match result {
        Ok(reply) if reply.message().sentence == doctor::reply(sentence).0 => {
            tally.succeeded += 1;
        }
        Ok(reply) => {
            *tally.failed.entry("mis-answered".into()).or_default() += 1;
            if tally.first_errors.len() < 5 {
                let got = reply.message().sentence.clone();
                tally.first_errors.push(format!("{sentence:?} -> {got:?}"));
            }
        }
        Err(error) => {
            *tally
                .failed
                .entry(error.code().as_str().into())
                .or_default() += 1;
            if tally.first_errors.len() < 5 {
                tally.first_errors.push(error.to_string());
            }
        }
    }
}

fn config(options: &Options) -> ClientConfig {
    let mut config = ClientConfig::default()
        .protocol(options.protocol)
        .timeout(Duration::from_secs(5));
    if options.retry {
        // `internal` too: a replica killed in the middle of a reply, behind a proxy that ends
        // the client's stream cleanly (HAProxy does), leaves a gRPC response without its
        // status, which gRPC calls internal. Say has no side effects, so trying it again is
        // safe; for methods with side effects keep the default, unavailable alone.
        config = config.retry(
            RetryPolicy::new()
                .max_attempts(5)
                .backoff(Duration::from_millis(50), Duration::from_millis(500), 2.0)
                .retryable_codes([switchboard::Code::Unavailable, switchboard::Code::Internal]),
        );
    }
    if options.hedge {
        config = config.hedge(
            HedgingPolicy::new()
                .max_attempts(3)
                .delay(Duration::from_millis(200)),
        );
    }
    config
}

fn report(tally: &Tally, counts: RetryCounts, took: Duration) -> String {
    let failed: u64 = tally.failed.values().sum();
    let by_code: Vec<String> = tally
        .failed
        .iter()
        .map(|(code, n)| format!("{code:?}:{n}"))
        .collect();
    let errors: Vec<String> = tally
        .first_errors
        .iter()
        .map(|e| format!("{:?}", e.replace('"', "'")))
        .collect();
    format!(
        "{{\"sent\":{},\"succeeded\":{},\"failed\":{failed},\"failed_by_code\":{{{}}},\
         \"retried\":{},\"transparent_retries\":{},\"hedged\":{},\"throttled\":{},\
         \"seconds\":{:.1},\"first_errors\":[{}]}}",
        tally.sent,
        tally.succeeded,
        by_code.join(","),
        counts.retries,
        counts.transparent_retries,
        counts.hedges,
        counts.throttled,
        took.as_secs_f64(),
        errors.join(","),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse()?;
    let started = Instant::now();
    println!("started");
    let (tally, counts) = if options.balance.is_empty() {
        let url = options.url.clone().ok_or("give --url or --balance")?;
        let client = if options.http1 {
            Client::http1(&url)?
        } else {
            Client::h2c(&url)?
        }
        .with_config(config(&options));
        let tally = load(ElizaServiceClient::new(client.clone()), &options).await;
        (tally, client.retry_counts())
    } else {
        let transport =
            HttpTransport::h2c().http2_keepalive(Duration::from_secs(1), Duration::from_secs(1));
        let balanced = Balanced::builder(transport)
            .endpoints(options.balance.iter().map(String::as_str))?
            .build();
        let client = Client::new("http://eliza", balanced)?.with_config(config(&options));
        let tally = load(ElizaServiceClient::new(client.clone()), &options).await;
        (tally, client.retry_counts())
    };
    println!("{}", report(&tally, counts, started.elapsed()));
    if tally.succeeded != tally.sent {
        std::process::exit(1);
    }
    Ok(())
}

fn parse() -> Result<Options, Box<dyn std::error::Error>> {
    let mut options = Options {
        protocol: Protocol::Connect,
        url: None,
        http1: false,
        balance: Vec::new(),
        seconds: 3,
        tasks: 8,
        hedge: false,
        retry: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--protocol" => {
                options.protocol = match value()?.as_str() {
                    "connect" => Protocol::Connect,
                    "grpc" => Protocol::Grpc,
                    "grpc-web" => Protocol::GrpcWeb,
                    other => return Err(format!("unknown protocol {other:?}").into()),
                }
            }
            "--url" => options.url = Some(value()?),
            "--http1" => options.http1 = true,
            "--balance" => options.balance = value()?.split(',').map(str::to_owned).collect(),
            "--seconds" => options.seconds = value()?.parse()?,
            "--tasks" => options.tasks = value()?.parse()?,
            "--hedge" => options.hedge = true,
            "--no-retry" => options.retry = false,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(options)
}
