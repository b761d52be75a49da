//! The built-in server: HTTP/1.1 and h2c (HTTP/2 without TLS) on one port, with graceful
//! shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::either::Either;

use crate::server::Router;
use crate::server::linger::Linger;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a connection may take to send a complete HTTP/1 request head. hyper also applies
/// it to idle keep-alive connections waiting for their next request, so it must outlast the
/// idle timeouts of common clients (Go's transport and switchboard's pool: 90 s): otherwise a
/// client can send a request on a connection the server is closing at that very moment, and a
/// non-idempotent call fails with an unexpected EOF.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// How often an idle HTTP/2 connection is pinged, and how long the answer may take.
const KEEP_ALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves a [`Router`] on a TCP listener.
///
/// Both HTTP/1.1 and HTTP/2 with prior knowledge are accepted on the same port (the
/// protocol is detected from the connection preface). On shutdown the listener closes,
/// HTTP/2 peers get GOAWAY, and the calls already in flight run to completion.
pub struct Server {
    router: Router,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    grace: std::time::Duration,
}

/// How long shutdown waits for calls in flight by default before closing what is left.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

impl Server {
    /// A server for `router` with hyper's defaults.
    pub fn new(router: Router) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // A peer that never finishes sending its request head is dropped (slow-loris).
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        // Keep-alive pings find HTTP/2 peers that vanished without closing the connection.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
            .keep_alive_timeout(KEEP_ALIVE_INTERVAL)
            .max_concurrent_streams(None)
            .adaptive_window(true);
        Server {
            router,
            builder,
            tls: None,
            grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// How long shutdown waits for calls in flight (default 30 s). Long-lived streams — a
    /// health `Watch`, a chat — would otherwise hold the server open forever; when the time
    /// is up, the remaining connections are closed.
    pub fn shutdown_grace(mut self, grace: std::time::Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Serves over TLS with this configuration (see [`crate::server::tls::server_config`]).
    /// HTTP/2 and HTTP/1.1 are chosen by ALPN.
    pub fn with_tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// hyper's connection builder, to tune HTTP/1 and HTTP/2 settings.
    pub fn http(&mut self) -> &mut auto::Builder<TokioExecutor> {
        &mut self.builder
    }

    /// Binds `addr` and serves until the process ends.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves on `listener` until `signal` completes, then stops accepting and waits for
    /// in-flight calls to finish, for at most the shutdown grace period
    /// ([`Server::shutdown_grace`]).
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let graceful = GracefulShutdown::new();
        let mut connections = tokio::task::JoinSet::new();
        let mut signal = std::pin::pin!(signal);
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            let _ = stream.set_nodelay(true);
            // Closing a connection the peer still writes to lingers, so the peer reads the
            // last reply instead of a reset (see `linger`).
            let stream = Linger::new(stream);
            let router = self.router.clone();
            let builder = self.builder.clone();
            let tls = self.tls.clone();
            let watcher = graceful.watcher();
            // Reap finished connections so the set stays as large as the live ones.
            while connections.try_join_next().is_some() {}
            connections.spawn(async move {
                let mut certificates = None;
                let io = match tls {
                    None => Either::Left(stream),
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                        match handshake.await {
                            Ok(Ok(tls_stream)) => {
                                certificates =
                                    tls_stream.get_ref().1.peer_certificates().map(|chain| {
                                        chain
                                            .iter()
                                            .map(|cert| {
                                                bytes::Bytes::copy_from_slice(cert.as_ref())
                                            })
                                            .collect::<std::sync::Arc<[bytes::Bytes]>>()
                                    });
                                Either::Right(Box::new(tls_stream))
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%error, %remote, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                let service =
                    hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let router = router.clone();
                        let certificates = certificates.clone();
                        async move {
                            Ok::<_, Infallible>(
                                router.handle_from(request, remote, certificates).await,
                            )
                        }
                    });
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                if let Err(error) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(self.grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::info!(grace = ?self.grace, "shutdown grace period over; closing the remaining connections");
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        Ok(())
    }
}

/// Binds a listener on `addr` (use port 0 for any free port) and returns it with the address
/// it got; a convenience for tests and examples.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
