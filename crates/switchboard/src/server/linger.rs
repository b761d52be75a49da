//! A lingering close for accepted connections.
//!
//! When the server closes a connection while the peer is still sending (an HTTP/1.1 reply
//! with `Connection: close` to a request whose body was too large to drain, a shutdown), a
//! plain close with unread bytes in the socket makes the kernel send a TCP reset. The reset
//! can reach the peer before it has read the reply that was just written, and the peer then
//! reports a broken pipe or a reset instead of the reply. Go's net/http avoids this by
//! closing the write side and waiting before the full close; this does the same, reading and
//! discarding what the peer still sends for a bounded time and amount.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a closing connection keeps reading what the peer still sends (Go's
/// `rstAvoidanceDelay` is 500 ms).
const LINGER_TIME: Duration = Duration::from_millis(500);
/// How much a closing connection reads and discards at most.
const LINGER_BYTES: usize = 1 << 20;

/// An accepted connection whose shutdown closes the write side first, then reads and discards
/// until the peer closes too, [`LINGER_TIME`] passes or [`LINGER_BYTES`] have been read.
pub(crate) struct Linger<S> {
    inner: S,
    state: State,
}

enum State {
    Open,
    Lingering {
        deadline: Pin<Box<tokio::time::Sleep>>,
        discarded: usize,
    },
    Closed,
}

impl<S> Linger<S> {
    pub(crate) fn new(inner: S) -> Self {
        Linger {
            inner,
            state: State::Open,
        }
    }
}

impl<S: AsyncRead + Unpin> Linger<S> {
    /// Reads and discards until the peer closes or a bound is reached.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let State::Lingering {
            deadline,
            discarded,
        } = &mut self.state
        else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 8192];
        loop {
            if deadline.as_mut().poll(cx).is_ready() || *discarded > LINGER_BYTES {
                break;
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                Poll::Ready(Ok(())) => *discarded += buf.filled().len(),
                Poll::Ready(Err(_)) => break,
            }
        }
        self.state = State::Closed;
        Poll::Ready(())
    }
}

use std::future::Future as _;

impl<S: AsyncRead + Unpin> AsyncRead for Linger<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Linger<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let State::Open = this.state {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.state = State::Lingering {
                deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                discarded: 0,
            };
        }
        this.poll_linger(cx).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn shutdown_reads_what_the_peer_still_sends_until_it_closes() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut near = Linger::new(near);
        let peer = tokio::spawn(async move {
            // The peer keeps writing past the buffer, then reads the close, then closes.
            far.write_all(&[1u8; 4096]).await.unwrap();
            let mut rest = Vec::new();
            far.read_to_end(&mut rest).await.unwrap();
            drop(far);
            rest.len()
        });
        near.shutdown().await.unwrap();
        assert_eq!(peer.await.unwrap(), 0);
        assert!(matches!(near.state, State::Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_up_after_the_linger_time() {
        let (near, _far) = tokio::io::duplex(64);
        let mut near = Linger::new(near);
        let started = tokio::time::Instant::now();
        near.shutdown().await.unwrap();
        assert_eq!(started.elapsed(), LINGER_TIME);
    }
}
