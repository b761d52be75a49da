//! The signals that ask a server to stop.

use std::future::Future;

/// Resolves when the process is asked to stop: SIGTERM (what process managers, systemd,
/// Docker and Kubernetes send) or SIGINT (Ctrl-C) on Unix, Ctrl-C elsewhere. Hand it to
/// [`crate::server::Server::serve_with_shutdown`]: the server then stops accepting, sends
/// HTTP/2 GOAWAY, and lets calls in flight finish within its grace period.
///
/// The handlers are installed when this is called, not when the future is first polled:
/// call it before serving, so a signal that arrives in between is not lost — and does not
/// kill the process with the signal's default action, cutting calls off with no status.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard::server::{Router, Server, bind, shutdown_signal};
///
/// let (listener, _addr) = bind("127.0.0.1:8080".parse()?).await?;
/// let stop = shutdown_signal()?;
/// Server::new(Router::new())
///     .serve_with_shutdown(listener, async {
///         stop.await;
///         // Tell load balancers first, e.g. health.set_not_serving(""), then drain.
///     })
///     .await?;
/// # Ok(())
/// # }
/// ```
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
