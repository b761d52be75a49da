//! Serves the library service on 127.0.0.1 for `cargo xtask transcoding`:
//! `library-server [--port PORT]` (0, the default, picks a free port; `--openapi` prints the
//! OpenAPI document instead). Prints
//! `library-server listening on http://ADDR` once it accepts connections. REST requests are
//! transcoded from the `google.api.http` annotations; Connect, gRPC and gRPC-Web are served
//! beside them.

use std::net::{Ipv4Addr, SocketAddr};

const USAGE: &str = "usage: library-server [--port PORT] [--openapi]
  --port PORT   loopback port to listen on (default 0: a free one)
  --openapi     print the service's OpenAPI 3.1 document (from switchboard-build) and exit";

/// The OpenAPI document switchboard-build wrote for the library's annotated methods.
const OPENAPI: &str = include_str!(concat!(env!("OUT_DIR"), "/library.openapi.json"));

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
            "--openapi" => {
                print!("{OPENAPI}");
                return Ok(());
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
