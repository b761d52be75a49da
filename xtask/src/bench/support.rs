//! Which server serves which call over which protocol: every pair is verified on one
//! instance of each server before anything is measured (see [`super::verify`] for the
//! checks). A pair that fails gets no figure; for the peers whose protocol support is probed
//! rather than known (connectrpc, tonic) the failure reads "not supported".

use std::collections::HashMap;

use super::matrix::{Call, Protocol, Server};
use super::results::Results;
use super::{Context, STOP_TIMEOUT, verify};

/// What a server did when verified on one call and protocol.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    Verified,
    Failed(String),
    NotSupported(String),
}

/// The (call, protocol) pairs `server` is verified on.
pub(crate) fn pairs(server: Server) -> Vec<(Call, Protocol)> {
    Call::ALL
        .into_iter()
        .filter(|call| server.serves(*call))
        .flat_map(|call| {
            call.protocols()
                .iter()
                .filter(|p| server.protocols().contains(p))
                .map(move |p| (call, *p))
        })
        .collect()
}

/// Verifies every call and protocol of `server` on one instance.
pub(crate) fn verify_server(
    ctx: &Context,
    server: Server,
    results: &mut Results,
) -> HashMap<(Call, Protocol), Verdict> {
    let mut verdicts = HashMap::new();
    let fail_all = |verdicts: &mut HashMap<_, _>, results: &mut Results, why: String| {
        results.problem(server.key(), &why, true);
        for pair in pairs(server) {
            verdicts.insert(pair, Verdict::Failed(why.clone()));
        }
    };
    if let Some(why) = ctx.binaries.go_error.as_ref().filter(|_| server.is_go()) {
        fail_all(&mut verdicts, results, format!("not built: {why}"));
        return verdicts;
    }
    let mut running = match ctx.start(server, &format!("{} verify", server.key())) {
        Ok(running) => running,
        Err(error) => {
            fail_all(&mut verdicts, results, format!("{error:#}"));
            return verdicts;
        }
    };
    for (call, protocol) in pairs(server) {
        let what = format!(
            "{} {} over {}",
            server.key(),
            call.title(),
            protocol.title()
        );
        let verdict = match verify::verify(&ctx.runtime, running.port, server, call, protocol) {
            Ok(()) => Verdict::Verified,
            Err(error) => {
                let why = format!("{error:#}");
                if server.probed() {
                    results.problem(&what, format!("not supported (verification: {why})"), false);
                    Verdict::NotSupported(why)
                } else {
                    results.problem(&what, format!("failed verification: {why}"), true);
                    Verdict::Failed(why)
                }
            }
        };
        eprintln!(
            "==> bench: {} verify {} {}: {}",
            server.key(),
            call.key(),
            protocol.title(),
            match &verdict {
                Verdict::Verified => "ok",
                Verdict::Failed(_) => "FAILED",
                Verdict::NotSupported(_) => "not supported",
            }
        );
        verdicts.insert((call, protocol), verdict);
        if let Err(why) = running.alive() {
            crate::steps::print_logs(running.logs());
            fail_all(
                &mut verdicts,
                results,
                format!("crashed during verification: {why}"),
            );
            return verdicts;
        }
    }
    if let Err(why) = running.stop(STOP_TIMEOUT) {
        results.problem(server.key(), why, true);
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_follow_each_servers_protocols() {
        let hyper = pairs(Server::Hyper);
        assert!(hyper.contains(&(Call::Echo64, Protocol::ConnectH1)));
        assert!(hyper.iter().all(|(call, _)| call.is_unary()));
        assert!(!hyper.iter().any(|(_, p)| *p == Protocol::GrpcWeb));
        let grpc_go = pairs(Server::GrpcGo);
        assert!(grpc_go.iter().all(|(_, p)| *p == Protocol::Grpc));
        assert_eq!(grpc_go.len(), Call::ALL.len());
        // Connect unary over HTTP/1.1 only for the 64-byte echo.
        let switchboard = pairs(Server::Switchboard);
        assert_eq!(
            switchboard
                .iter()
                .filter(|(_, p)| *p == Protocol::ConnectH1)
                .count(),
            1
        );
    }
}
