//! SIGTERM/SIGINT handling: the server stops accepting as soon as either arrives, and the
//! process gives in-flight work a short grace before it exits anyway.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// How long to let open connections drain after a signal. Kept well under the harness's
/// one-second budget for exiting.
const GRACE: Duration = Duration::from_millis(500);

/// A latch set by the first SIGTERM or SIGINT.
pub struct Signals {
    fired: watch::Receiver<bool>,
}

impl Signals {
    /// Registers the handlers and starts the task that sets the latch. Call it before
    /// announcing the address, so no signal can arrive before the handlers exist.
    pub fn install() -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, fired) = watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = tx.send(true);
        });
        Ok(Signals { fired })
    }

    /// Resolves when a signal has arrived: the server's cue to stop accepting.
    pub fn received(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut fired = self.fired.clone();
        async move {
            let _ = fired.wait_for(|fired| *fired).await;
        }
    }

    /// Resolves [`GRACE`] after a signal: the point where the process stops waiting.
    pub fn drain_deadline(&self) -> impl Future<Output = ()> + Send + 'static {
        let received = self.received();
        async move {
            received.await;
            tokio::time::sleep(GRACE).await;
        }
    }
}
