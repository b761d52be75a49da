//! Writes held back one scheduler turn, so the replies of several calls on one connection
//! leave in one system call.
//!
//! On an HTTP/2 connection every call runs in its own task, and the connection's own task
//! writes what the calls have queued. tokio runs a task woken by the running one next (its
//! "LIFO slot"), so when a call queues its reply the connection task runs at once and writes
//! that one reply, then the next call runs and the connection writes again: one `writev` per
//! reply however many calls are ready, and on loopback a `writev` costs several times the CPU
//! of the whole call's user-space work. grpc-go's writer does the remedy below (it yields the
//! processor once before flushing a small batch); hyper and h2 have no such step.
//!
//! [`Coalesce`] sits under hyper. When a small write comes, it first wakes its own task and
//! answers `Pending`: tokio puts a task that woke itself at the back of the run queue, so the
//! other ready calls run first and queue their replies; then the connection writes them all
//! at once. Where holding back gains nothing (one call at a time: the next write carries no
//! more than the held one), it costs one more poll of the connection, so after such a turn
//! the next [`SKIP_AFTER_IDLE_TURN`] writes go out at once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Writes of at least this many bytes go out at once: a full-size HTTP/2 DATA frame's
/// worth, where one more system call is small next to the bytes it carries.
pub(crate) const SMALL_WRITE: usize = 16 * 1024;

/// How many writes go out at once after a held-back turn that gathered nothing more. One
/// idle turn costs about as much as a poll of the connection (some 2,500 instructions);
/// spread over this many writes it is below 1% of a call.
pub(crate) const SKIP_AFTER_IDLE_TURN: u8 = 16;

/// A connection whose small writes wait one scheduler turn for more to write with them.
pub(crate) struct Coalesce<S> {
    inner: S,
    /// The length of the write held back, while one is; 0 when none is (an empty write is
    /// never held). Below [`SMALL_WRITE`], so it fits in 16 bits: the whole state is 3 bytes,
    /// because it sits inside every connection's task (see [`Coalesce`]).
    held: u16,
    /// Writes still to go out at once after an idle turn.
    skip: u8,
}

impl<S> Coalesce<S> {
    pub(crate) fn new(inner: S) -> Self {
        Coalesce {
            inner,
            held: 0,
            skip: 0,
        }
    }

    /// Whether to hold back a write of `len` bytes: if so, the task is already woken to try
    /// again after the other ready tasks.
    fn hold_back(&mut self, cx: &mut Context<'_>, len: usize) -> bool {
        if self.held > 0 {
            // The turn is over: write now, and if nothing joined, stop holding for a while.
            if len <= usize::from(self.held) {
                self.skip = SKIP_AFTER_IDLE_TURN;
            }
            self.held = 0;
            return false;
        }
        let small = match u16::try_from(len) {
            Ok(small) if small > 0 && len < SMALL_WRITE => small,
            _ => return false,
        };
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        self.held = small;
        cx.waker().wake_by_ref();
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    #[inline]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.hold_back(cx, buf.len()) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|buf| buf.len()).sum();
        if self.hold_back(cx, len) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    #[inline]
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::*;

    /// A connection that records each write it is given.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<usize>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.push(buf.len());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn write(
        connection: &mut Coalesce<Recorder>,
        cx: &mut Context<'_>,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        Pin::new(connection).poll_write(cx, &vec![0u8; len])
    }

    #[test]
    fn a_small_write_waits_one_turn_and_then_goes_out_with_what_joined_it() {
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut connection = Coalesce::new(Recorder::default());

        assert!(write(&mut connection, &mut cx, 100).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken to try again");
        assert!(connection.inner.writes.is_empty(), "nothing written yet");

        // Another call's reply joined during the turn: all of it goes out in one write.
        assert!(matches!(
            write(&mut connection, &mut cx, 250),
            Poll::Ready(Ok(250))
        ));
        assert_eq!(connection.inner.writes, [250]);
        // It gathered more, so the next small write waits again.
        assert!(write(&mut connection, &mut cx, 100).is_pending());
    }

    #[test]
    fn after_a_turn_that_gathered_nothing_writes_go_out_at_once_for_a_while() {
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut connection = Coalesce::new(Recorder::default());

        assert!(write(&mut connection, &mut cx, 100).is_pending());
        assert!(
            write(&mut connection, &mut cx, 100).is_ready(),
            "nothing joined"
        );
        for _ in 0..SKIP_AFTER_IDLE_TURN {
            assert!(write(&mut connection, &mut cx, 100).is_ready());
        }
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "no more turns were taken"
        );
        // Then it tries holding back again.
        assert!(write(&mut connection, &mut cx, 100).is_pending());
        assert_eq!(
            connection.inner.writes.len(),
            1 + usize::from(SKIP_AFTER_IDLE_TURN)
        );
    }

    #[test]
    fn a_large_write_goes_out_at_once() {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut connection = Coalesce::new(Recorder::default());
        assert!(write(&mut connection, &mut cx, SMALL_WRITE).is_ready());
        assert_eq!(connection.inner.writes, [SMALL_WRITE]);
    }
}
