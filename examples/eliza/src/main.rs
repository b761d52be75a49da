//! Serves the Eliza demo: `cargo run -p eliza -- --addr 127.0.0.1:8080`.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr: SocketAddr = "127.0.0.1:8080".parse()?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().ok_or("--addr needs HOST:PORT")?;
                addr = value
                    .parse()
                    .map_err(|e| format!("invalid --addr {value:?}: {e}"))?;
            }
            "-h" | "--help" => {
                println!("usage: eliza [--addr HOST:PORT]   (default 127.0.0.1:8080)");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; try --help").into()),
        }
    }
    let (listener, local) = switchboard::server::bind(addr).await?;
    println!("eliza listening on http://{local} (Connect over HTTP/1.1 and h2c)");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down: finishing calls in flight");
    };
    switchboard::server::Server::new(eliza::router())
        .serve_with_shutdown(listener, shutdown)
        .await?;
    Ok(())
}
