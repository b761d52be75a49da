//! A deadline for a new connection's first bytes.
//!
//! hyper's HTTP/1 header timeout and HTTP/2 keep-alive pings start only once a connection has
//! sent something it can parse, so a peer that connects (or finishes a TLS handshake) and
//! then stays silent, or sends half an HTTP/2 preface, would hold its socket forever; enough
//! of them exhaust the process's file descriptors. A connection wrapped in [`FirstBytes`]
//! must deliver its first [`FIRST_BYTES`] within the deadline, or its reads fail and hyper
//! closes it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many bytes a new connection must send in time: the length of the HTTP/2 connection
/// preface, and shorter than any real HTTP/1 request head.
pub(crate) const FIRST_BYTES: usize = 24;

/// A connection whose reads fail with `TimedOut` if its first [`FIRST_BYTES`] have not arrived
/// by the deadline; after that it is the plain connection.
pub(crate) struct FirstBytes<S> {
    inner: S,
    /// While the first bytes are awaited. The count of bytes still missing lives in the same
    /// allocation as the timer, so the wrapper adds one pointer to every connection's task.
    deadline: Option<Pin<Box<Deadline>>>,
}

pin_project_lite::pin_project! {
    /// The timer, and the bytes still to arrive before it stops applying.
    struct Deadline {
        #[pin]
        sleep: tokio::time::Sleep,
        missing: usize,
    }
}

impl<S> FirstBytes<S> {
    pub(crate) fn new(inner: S, timeout: Duration) -> Self {
        FirstBytes {
            inner,
            deadline: Some(Box::pin(Deadline {
                sleep: tokio::time::sleep(timeout),
                missing: FIRST_BYTES,
            })),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstBytes<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let arrived = buf.filled().len() - before;
                let complete = this.deadline.as_mut().is_some_and(|deadline| {
                    let missing = deadline.as_mut().project().missing;
                    *missing = missing.saturating_sub(arrived);
                    *missing == 0
                });
                if complete {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().project().sleep.poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.deadline = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection sent no request in time",
                )))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstBytes<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_and_a_talking_one_does_not() {
        let (mut peer, ours) = tokio::io::duplex(64);
        let mut silent = FirstBytes::new(ours, Duration::from_secs(10));
        let mut buf = [0u8; 64];
        let error = silent.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        let (mut peer2, ours2) = tokio::io::duplex(64);
        let mut talking = FirstBytes::new(ours2, Duration::from_secs(10));
        peer2.write_all(&[b'x'; FIRST_BYTES]).await.unwrap();
        assert_eq!(talking.read(&mut buf).await.unwrap(), FIRST_BYTES);
        // Past the first bytes, silence is the protocol's business, not this deadline's.
        let wait = tokio::time::timeout(Duration::from_secs(60), talking.read(&mut buf)).await;
        assert!(wait.is_err(), "still waiting after the deadline");
        peer.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_start_still_times_out() {
        let (mut peer, ours) = tokio::io::duplex(64);
        let mut partial = FirstBytes::new(ours, Duration::from_secs(10));
        peer.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(partial.read(&mut buf).await.unwrap(), 16);
        let error = partial.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
