//! Serves the Eliza demo: `cargo run -p eliza -- --addr 127.0.0.1:8080`, or over TLS with
//! `--tls-cert cert.pem --tls-key key.pem`.

use std::net::SocketAddr;
use std::path::PathBuf;

const USAGE: &str = "usage: eliza [--addr HOST:PORT] [--tls-cert PATH --tls-key PATH]
  --addr HOST:PORT   where to listen (default 127.0.0.1:8080; port 0 picks a free one)
  --tls-cert PATH    PEM certificate chain, leaf first (needs --tls-key)
  --tls-key PATH     PEM private key (needs --tls-cert)";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let mut server = switchboard::server::Server::new(eliza::router());
    match tls {
        Some(config) => {
            server = server.with_tls(config);
            println!(
                "eliza listening on https://{local} (Connect, gRPC and gRPC-Web over HTTP/1.1 and HTTP/2, TLS)"
            );
        }
        None => println!(
            "eliza listening on http://{local} (Connect, gRPC and gRPC-Web over HTTP/1.1 and h2c)"
        ),
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down: finishing calls in flight");
    };
    server.serve_with_shutdown(listener, shutdown).await?;
    Ok(())
}
