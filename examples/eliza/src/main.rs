//! Serves the Eliza demo: `cargo run -p eliza -- --addr 127.0.0.1:8080`, or over TLS with
//! `--tls-cert cert.pem --tls-key key.pem`, which also serves HTTP/3 (QUIC) on the same port
//! number.
//!
//! Pages on any origin may call it (CORS, as Connect's public demo allows). It serves
//! `grpc.health.v1.Health` too, reporting the server (`""`) and Eliza SERVING;
//! SIGUSR1 toggles both between SERVING and NOT_SERVING (for health-check tests). SIGTERM or
//! SIGINT stops it gracefully: health reports NOT_SERVING, new connections are refused,
//! HTTP/2 peers get GOAWAY, and calls in flight finish (within 30 s).

use std::net::SocketAddr;
use std::path::PathBuf;

use tower::Layer as _;

const USAGE: &str = "usage: eliza [--addr HOST:PORT] [--tls-cert PATH --tls-key PATH]
  --addr HOST:PORT   where to listen (default 127.0.0.1:8080; port 0 picks a free one)
  --tls-cert PATH    PEM certificate chain, leaf first (needs --tls-key); with TLS the
                     demo also serves HTTP/3 over QUIC on the same port number (UDP)
  --tls-key PATH     PEM private key (needs --tls-cert)

Health: grpc.health.v1.Health reports the server (\"\") and connectrpc.eliza.v1.ElizaService
SERVING. Send SIGUSR1 (kill -USR1 PID) to toggle both between SERVING and NOT_SERVING.";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server's own log (failed accepts, TLS handshakes that fail) on stderr; RUST_LOG
    // changes the level (e.g. RUST_LOG=switchboard=debug adds connections ending in errors).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut addr: SocketAddr = "127.0.0.1:8080".parse()?;
    let mut tls_cert: Option<PathBuf> = None;
    let mut tls_key: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().ok_or("--addr needs HOST:PORT")?;
                addr = value
                    .parse()
                    .map_err(|e| format!("invalid --addr {value:?}: {e}"))?;
            }
            "--tls-cert" => tls_cert = Some(args.next().ok_or("--tls-cert needs a PATH")?.into()),
            "--tls-key" => tls_key = Some(args.next().ok_or("--tls-key needs a PATH")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; try --help").into()),
        }
    }
    let tls = match (tls_cert, tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(&cert)
                .map_err(|e| format!("cannot read --tls-cert {}: {e}", cert.display()))?;
            let key_pem = std::fs::read(&key)
                .map_err(|e| format!("cannot read --tls-key {}: {e}", key.display()))?;
            Some(switchboard::server::tls::server_config(
                &cert_pem, &key_pem, None,
            )?)
        }
        _ => return Err("--tls-cert and --tls-key go together: give both or neither".into()),
    };
    let (listener, local) = switchboard::server::bind(addr).await?;
    let (router, health) = eliza::router_with_health();
    // Listening for SIGUSR1 before the banner: from then on it toggles, never kills.
    toggle_health_on_sigusr1(health.clone())?;
    // Pages on any origin may call the demo, as they may call Connect's public demo: the
    // preflight is answered, and the headers the protocols need are allowed and exposed.
    let mut server =
        switchboard::server::Server::from_service(switchboard::cors::any_origin().layer(router));
    match tls {
        Some(config) => {
            server = server.with_tls(config).http3();
            println!(
                "eliza listening on https://{local} (Connect, gRPC and gRPC-Web over HTTP/1.1 and HTTP/2 with TLS, and HTTP/3 on UDP port {})",
                local.port()
            );
        }
        None => println!(
            "eliza listening on http://{local} (Connect, gRPC and gRPC-Web over HTTP/1.1 and h2c)"
        ),
    }
    // SIGTERM (process managers, Kubernetes) and SIGINT (Ctrl-C), installed before serving.
    let stop = switchboard::server::shutdown_signal()?;
    let shutdown = async {
        stop.await;
        println!("shutting down: finishing calls in flight");
        // Reports NOT_SERVING and ends open health watches, which would keep the server up.
        health.shutdown();
    };
    server.serve_with_shutdown(listener, shutdown).await?;
    Ok(())
}

/// Toggles the server's (`""`) and Eliza's health between SERVING and NOT_SERVING on each
/// SIGUSR1, printing the new status.
#[cfg(unix)]
fn toggle_health_on_sigusr1(health: switchboard_health::HealthReporter) -> std::io::Result<()> {
    use switchboard_health::ServingStatus;
    use tokio::signal::unix::{SignalKind, signal};

    let mut signals = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while signals.recv().await.is_some() {
            let status = match health.status("") {
                Some(ServingStatus::Serving) => ServingStatus::NotServing,
                _ => ServingStatus::Serving,
            };
            health.set_status("", status);
            health.set_status(eliza::proto::ELIZA_SERVICE_NAME, status);
            println!("health: {} (SIGUSR1)", status.as_str_name());
        }
    });
    Ok(())
}

/// SIGUSR1 is Unix only: elsewhere the health statuses stay SERVING.
#[cfg(not(unix))]
fn toggle_health_on_sigusr1(_health: switchboard_health::HealthReporter) -> std::io::Result<()> {
    Ok(())
}
