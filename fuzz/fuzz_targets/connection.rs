//! Any bytes as a whole client connection to the server's connection handling: hyper's
//! HTTP/1.1 or HTTP/2 (chosen by the first bytes, as the built-in server does) over an
//! in-memory stream, serving a router with health and reflection. Starts with the HTTP/2
//! preface when the first byte is odd, so the fuzzer reaches HTTP/2 frames quickly.
#![no_main]

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::{router, runtime};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let mut wire = Vec::with_capacity(data.len() + PREFACE.len());
    if first % 2 == 1 {
        wire.extend_from_slice(PREFACE);
    }
    wire.extend_from_slice(rest);
    runtime().block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let service =
            hyper::service::service_fn(|request: http::Request<hyper::body::Incoming>| {
                let router = router().clone();
                async move { Ok::<_, std::convert::Infallible>(router.handle(request).await) }
            });
        let connection = tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(server), service)
                .await;
        });
        let _ = client.write_all(&wire).await;
        let _ = client.shutdown().await;
        let mut sink = vec![0u8; 64 * 1024];
        let read_all = async {
            while let Ok(n) = client.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read_all).await;
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
    });
});
