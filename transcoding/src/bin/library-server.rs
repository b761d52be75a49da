//! Serves the library service on 127.0.0.1 for `cargo xtask transcoding`:
//! `library-server [--port PORT]` (0, the default, picks a free port). Prints
//! `library-server listening on http://ADDR` once it accepts connections. REST requests are
//! transcoded from the `google.api.http` annotations; Connect, gRPC and gRPC-Web are served
//! beside them.

use std::net::{Ipv4Addr, SocketAddr};

const USAGE: &str = "usage: library-server [--port PORT]
  --port PORT   loopback port to listen on (default 0: a free one)";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a number")?;
                port = value
                    .parse()
                    .map_err(|e| format!("invalid --port {value:?}: {e}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; try --help").into()),
        }
    }
    let (listener, local) =
        switchboard::server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    // SIGTERM and SIGINT stop it gracefully; installed before the banner.
    let stop = switchboard::server::shutdown_signal()?;
    println!("library-server listening on http://{local} (REST, Connect, gRPC and gRPC-Web)");
    switchboard::server::Server::new(switchboard_transcoding::router())
        .serve_with_shutdown(listener, stop)
        .await?;
    Ok(())
}
