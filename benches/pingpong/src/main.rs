//! `pingpong`: a ping-pong load driver for `bench.v1.EchoService/Bidi` over h2c.
//!
//! h2load cannot wait for an answer before sending the next message, and driving the
//! benchmark with switchboard's own client would favour switchboard, so this driver is
//! written directly on the `h2` crate with hand-rolled envelopes: it is equally foreign to
//! every server under test. See `pingpong --help` for the flags.
//!
//! Prints a report (text, or one JSON object with `--json`) and exits with status 1 if any
//! error was counted, 2 on bad flags.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod codec;
mod hold;
mod protocol;
mod report;
mod rpc;
mod run;
mod schedule;

#[cfg(test)]
mod tests;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(args::Parsed::Run(args)) => args,
        Ok(args::Parsed::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("pingpong: {error}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };

    // One thread: the harness pins this process to one core.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pingpong: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.hold {
        let held = tokio::task::LocalSet::new().block_on(&runtime, hold::hold(&args));
        // Only reached on failure: a successful hold lasts until the process is killed.
        if let Err(error) = held {
            eprintln!("pingpong: --hold: {error}");
        }
        return ExitCode::FAILURE;
    }
    let outcome = tokio::task::LocalSet::new().block_on(&runtime, run::run(&args));

    for error in &outcome.first_errors {
        eprintln!("pingpong: error: {error}");
    }
    if outcome.report.errors > outcome.first_errors.len() as u64 {
        eprintln!(
            "pingpong: ... and {} more errors",
            outcome.report.errors - outcome.first_errors.len() as u64
        );
    }
    if args.json {
        println!("{}", outcome.report.to_json());
    } else {
        println!("{}", outcome.report.to_text());
    }
    if outcome.report.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
