//! A soak of a running Eliza server: many concurrent conversations held open for minutes while
//! unary calls flow steadily, every reply checked against the one Eliza must give, and the
//! server's resident memory sampled throughout. Run by `cargo xtask soak`, or by hand:
//!
//! ```text
//! cargo run --release -p eliza --example soak -- --url http://127.0.0.1:8080 \
//!     --pid $(pidof eliza) --streams 10000 --seconds 300 --unary-rate 200
//! ```
//!
//! Each conversation is a `Converse` bidi stream. It says one sentence when it opens, one
//! more on every round (every `--round-seconds`), and a last one before it closes its side,
//! then expects the stream to end with OK. Unary `Say` calls go out at `--unary-rate` per
//! second on a connection of their own. A reply that is not Eliza's answer to its own
//! sentence is mis-answered; a call that fails is lost. Streams go 1,000 to a connection (the
//! server's advertised limit). Prints one line per RSS sample and a summary, and exits
//! non-zero on any lost or mis-answered call, or if the resident memory after warm-up grew
//! by more than `--max-growth-percent`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eliza::doctor;
use eliza::proto::{ConverseRequest, ElizaServiceClient, SayRequest};
use switchboard::client::Client;

/// Streams per connection: the server's advertised limit of concurrent streams.
const STREAMS_PER_CONNECTION: usize = 1000;

struct Options {
    url: String,
    pid: Option<u32>,
    streams: usize,
    seconds: u64,
    unary_rate: u64,
    round_seconds: u64,
    sample_seconds: u64,
    max_growth_percent: f64,
}

#[derive(Default)]
struct Counters {
    replies_checked: AtomicU64,
    unary_ok: AtomicU64,
    lost: AtomicU64,
    mis_answered: AtomicU64,
    streams_ended_ok: AtomicU64,
}

impl Counters {
    fn lose(&self, what: &str, error: impl std::fmt::Display) {
        if self.lost.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("lost: {what}: {error}");
        }
    }

    fn check(&self, sentence: &str, got: &str) {
        let (want, _) = doctor::reply(sentence);
        if want == got {
            self.replies_checked.fetch_add(1, Ordering::Relaxed);
        } else if self.mis_answered.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("mis-answered: {sentence:?} got {got:?}, want {want:?}");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse()?;
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let end = started + Duration::from_secs(options.seconds);

    let idle = options.pid.and_then(rss_mib);
    if let Some(idle) = idle {
        println!("RSS before the conversations open: {idle:.1} MiB");
    }
    // The conversations, all opened at once (1,000 to a connection).
    let connections = options.streams.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let clients: Vec<_> = (0..connections)
        .map(|_| Client::h2c(&options.url).map(ElizaServiceClient::new))
        .collect::<Result<_, _>>()?;
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut conversations = tokio::task::JoinSet::new();
    for index in 0..options.streams {
        let client = clients[index / STREAMS_PER_CONNECTION].clone();
        let counters = counters.clone();
        let opened = opened_tx.clone();
        let round = Duration::from_secs(options.round_seconds);
        conversations.spawn(converse(client, index, end, round, counters, opened));
    }
    drop(opened_tx);
    let mut open = 0;
    while open < options.streams && opened_rx.recv().await.is_some() {
        open += 1;
    }
    println!(
        "{} conversations open on {connections} connections after {:.1}s",
        open,
        started.elapsed().as_secs_f64()
    );
    if let (Some(idle), Some(now)) = (idle, options.pid.and_then(rss_mib)) {
        println!(
            "RSS with them open: {now:.1} MiB, {:.1} KiB per conversation",
            (now - idle) * 1024.0 / open.max(1) as f64
        );
    }

    // Steady unary traffic on a connection of its own.
    let unary = tokio::spawn(unary_traffic(
        ElizaServiceClient::new(Client::h2c(&options.url)?),
        options.unary_rate,
        end,
        counters.clone(),
    ));

    // RSS samples until the end.
    let mut samples: Vec<(f64, f64)> = Vec::new();
    println!(
        "{:>8}  {:>9}  {:>12}  {:>8}",
        "t (s)", "RSS (MiB)", "replies", "unary"
    );
    loop {
        let t = started.elapsed().as_secs_f64();
        if let Some(rss) = options.pid.and_then(rss_mib) {
            samples.push((t, rss));
            println!(
                "{t:>8.0}  {rss:>9.1}  {:>12}  {:>8}",
                counters.replies_checked.load(Ordering::Relaxed),
                counters.unary_ok.load(Ordering::Relaxed)
            );
        }
        if Instant::now() >= end {
            break;
        }
        let next = Duration::from_secs(options.sample_seconds).min(end - Instant::now());
        tokio::time::sleep(next).await;
    }
    unary.await?;
    while conversations.join_next().await.is_some() {}
    let after_close = options.pid.and_then(rss_mib);

    let lost = counters.lost.load(Ordering::Relaxed);
    let mis_answered = counters.mis_answered.load(Ordering::Relaxed);
    let ended_ok = counters.streams_ended_ok.load(Ordering::Relaxed);
    println!(
        "summary: {} streams ({} ended OK), {} stream replies and {} unary calls checked, {lost} lost, {mis_answered} mis-answered, {:.0}s",
        options.streams,
        ended_ok,
        counters.replies_checked.load(Ordering::Relaxed)
            - counters.unary_ok.load(Ordering::Relaxed),
        counters.unary_ok.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    let mut failed = lost > 0 || mis_answered > 0 || ended_ok != options.streams as u64;
    if let Some(growth) = growth_after_warm_up(&samples) {
        let (warm, last) = growth;
        let percent = (last - warm) / warm * 100.0;
        println!(
            "RSS after warm-up {warm:.1} MiB, at the end {last:.1} MiB ({percent:+.1}%), after the streams closed {}",
            after_close.map_or("?".into(), |r| format!("{r:.1} MiB"))
        );
        if percent > options.max_growth_percent {
            println!(
                "RSS grew {percent:.1}% after warm-up (limit {}%)",
                options.max_growth_percent
            );
            failed = true;
        }
    }
    if failed {
        return Err("soak failed".into());
    }
    Ok(())
}

/// One conversation: a sentence on opening, one per round, a last one, then the end.
async fn converse(
    client: ElizaServiceClient,
    index: usize,
    end: Instant,
    round: Duration,
    counters: Arc<Counters>,
    opened: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let sentence = |n: u64| format!("I feel like stream {index} at round {n}.");
    let (tx, rx) = tokio::sync::mpsc::channel::<ConverseRequest>(1);
    let requests = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut replies = match client.converse(switchboard::Request::new(requests)).await {
        Ok(response) => response.into_message(),
        Err(error) => {
            counters.lose("converse open", error);
            let _ = opened.send(());
            return;
        }
    };
    let expect = |said: &str, reply: Result<Option<_>, switchboard::Error>| match reply {
        Ok(Some(eliza::proto::ConverseResponse { sentence, .. })) => {
            counters.check(said, &sentence);
            true
        }
        Ok(None) => {
            counters.lose("converse reply", "stream ended early");
            false
        }
        Err(error) => {
            counters.lose("converse reply", error);
            false
        }
    };
    // Round 0 opens the conversation; then one round every `round` until the end.
    let mut n = 0;
    loop {
        let said = sentence(n);
        let sent = tx
            .send(ConverseRequest {
                sentence: said.clone(),
            })
            .await
            .is_ok();
        let answered = if sent {
            expect(&said, replies.message().await)
        } else {
            counters.lose("converse send", "closed");
            false
        };
        if n == 0 {
            let _ = opened.send(());
        }
        if !answered {
            return;
        }
        if n == 0 {
            // Rounds start at a different moment for each stream, so they do not all speak
            // at once.
            tokio::time::sleep(round.mul_f64((index % 1000) as f64 / 1000.0)).await;
        } else {
            if Instant::now() + round >= end {
                break;
            }
            tokio::time::sleep(round).await;
        }
        n += 1;
    }
    drop(tx);
    match replies.message().await {
        Ok(None) => {
            counters.streams_ended_ok.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(extra)) => counters.lose("converse end", format!("extra reply {extra:?}")),
        Err(error) => counters.lose("converse end", error),
    }
}

/// `rate` unary `Say` calls a second until `end`, each reply checked.
async fn unary_traffic(
    client: ElizaServiceClient,
    rate: u64,
    end: Instant,
    counters: Arc<Counters>,
) {
    if rate == 0 {
        return;
    }
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut calls = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while Instant::now() < end {
        ticks.tick().await;
        n += 1;
        let client = client.clone();
        let counters = counters.clone();
        calls.spawn(async move {
            let sentence = format!("I am unary call {n}.");
            match client
                .say(SayRequest {
                    sentence: sentence.clone(),
                })
                .await
            {
                Ok(reply) => {
                    counters.check(&sentence, &reply.message().sentence);
                    counters.unary_ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => counters.lose("say", error),
            }
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
}

/// The RSS once warmed up (the first sample after a fifth of the run) and the last sample.
fn growth_after_warm_up(samples: &[(f64, f64)]) -> Option<(f64, f64)> {
    let total = samples.last()?.0;
    let warm = samples.iter().find(|(t, _)| *t >= total / 5.0)?.1;
    Some((warm, samples.last()?.1))
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn parse() -> Result<Options, Box<dyn std::error::Error>> {
    let mut options = Options {
        url: "http://127.0.0.1:8080".into(),
        pid: None,
        streams: 10_000,
        seconds: 300,
        unary_rate: 200,
        round_seconds: 30,
        sample_seconds: 10,
        max_growth_percent: 10.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => options.url = value()?,
            "--pid" => options.pid = Some(value()?.parse()?),
            "--streams" => options.streams = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            "--unary-rate" => options.unary_rate = value()?.parse()?,
            "--round-seconds" => options.round_seconds = value()?.parse()?,
            "--sample-seconds" => options.sample_seconds = value()?.parse()?,
            "--max-growth-percent" => options.max_growth_percent = value()?.parse()?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(options)
}
