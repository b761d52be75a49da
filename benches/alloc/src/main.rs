//! `alloc-count`: heap allocations per in-process unary call, for switchboard, tonic and
//! connectrpc.
//!
//! Each library's server-side service for `bench.v1.EchoService` is built as the
//! `tower::Service<http::Request<_>>` a hyper server would drive (switchboard's `Router`,
//! tonic's generated `EchoServiceServer`, connectrpc's `ConnectRpcService` over its
//! generated `EchoServiceServer` dispatcher) and called directly — no sockets, no HTTP
//! codec — with a prebuilt unary Echo request carrying a 64-byte payload: gRPC for all
//! three, Connect for switchboard and connectrpc (tonic speaks only gRPC). A counting
//! global allocator measures each call from `service.call` until the response body has
//! yielded its data and trailers; see [`harness::measure`] for exactly what is counted.
//!
//! Usage: `alloc-count [--json] [--calls N] [--warmup N]`. Prints a table, or with
//! `--json` a JSON array of `{library, protocol, allocs_per_call, bytes_per_call}`.

mod counting;
mod harness;
mod libs;
mod wire;

use std::process::ExitCode;

use counting::{Counting, Snapshot};
use harness::Plan;
use wire::Protocol;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const USAGE: &str = "usage: alloc-count [--json] [--calls N] [--warmup N]
  --json       print a JSON array of {library, protocol, allocs_per_call, bytes_per_call}
  --calls N    counted calls per case (default 10000)
  --warmup N   uncounted calls before them (default 1000)";

/// Command-line options.
struct Options {
    json: bool,
    plan: Plan,
}

/// One measured case.
struct Outcome {
    library: &'static str,
    protocol: Protocol,
    calls: u64,
    counted: Snapshot,
}

impl Outcome {
    fn per_call(&self, value: u64) -> f64 {
        value as f64 / self.calls as f64
    }
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("alloc-count: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One thread: nothing else allocates while a call is being counted.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a current-thread runtime");
    match runtime.block_on(run_all(options.plan)) {
        Ok(outcomes) => {
            if options.json {
                println!("{}", to_json(&outcomes));
            } else {
                print_table(&outcomes, options.plan);
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("alloc-count: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        json: false,
        plan: Plan {
            warmup: 1_000,
            calls: 10_000,
        },
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--calls" => options.plan.calls = count(&arg, args.next())?,
            "--warmup" => options.plan.warmup = count(&arg, args.next())?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.plan.calls == 0 {
        return Err("--calls must be at least 1".into());
    }
    Ok(Some(options))
}

fn count(flag: &str, value: Option<String>) -> Result<u64, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a number"))?;
    value
        .parse()
        .map_err(|error| format!("{flag} {value:?}: {error}"))
}

/// Every case, in the order reported.
async fn run_all(plan: Plan) -> Result<Vec<Outcome>, String> {
    let cases: [(&'static str, Protocol); 5] = [
        ("switchboard", Protocol::Grpc),
        ("tonic", Protocol::Grpc),
        ("connectrpc", Protocol::Grpc),
        ("switchboard", Protocol::Connect),
        ("connectrpc", Protocol::Connect),
    ];
    let mut outcomes = Vec::with_capacity(cases.len());
    for (library, protocol) in cases {
        let counted = libs::measure(library, protocol, plan)
            .await
            .map_err(|error| format!("{library} {protocol}: {error}"))?;
        outcomes.push(Outcome {
            library,
            protocol,
            calls: plan.calls,
            counted,
        });
    }
    Ok(outcomes)
}

fn print_table(outcomes: &[Outcome], plan: Plan) {
    println!(
        "Unary Echo, {}-byte payload, in process; {} counted calls after {} warm-up calls each.",
        wire::PAYLOAD_LEN,
        plan.calls,
        plan.warmup
    );
    println!(
        "{:<12} {:<8} {:>12} {:>12} {:>12}",
        "library", "protocol", "allocs/call", "bytes/call", "frees/call"
    );
    for outcome in outcomes {
        println!(
            "{:<12} {:<8} {:>12.2} {:>12.1} {:>12.2}",
            outcome.library,
            outcome.protocol.to_string(),
            outcome.per_call(outcome.counted.allocations),
            outcome.per_call(outcome.counted.bytes),
            outcome.per_call(outcome.counted.frees),
        );
    }
}

/// One row of `--json` output, in the order the harness reads it.
#[derive(serde::Serialize)]
struct JsonRow {
    library: &'static str,
    protocol: String,
    allocs_per_call: f64,
    bytes_per_call: f64,
}

fn to_json(outcomes: &[Outcome]) -> String {
    let rows: Vec<JsonRow> = outcomes
        .iter()
        .map(|outcome| JsonRow {
            library: outcome.library,
            protocol: outcome.protocol.to_string(),
            allocs_per_call: outcome.per_call(outcome.counted.allocations),
            bytes_per_call: outcome.per_call(outcome.counted.bytes),
        })
        .collect();
    serde_json::to_string_pretty(&rows).expect("JSON of numbers and strings")
}
