//! A connection's writes must make progress: a client that sends requests but never reads the responses fills
//! the socket's buffers, and hyper (which has no write timeout) would then wait on it forever, holding one of the
//! server's bounded connection slots. [`StallGuard`] fails a write (and so closes the connection) that has made
//! no progress for `write_stall_timeout`.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct StallGuard<T> {
    inner: T,
    timeout: Duration,
    /// Armed while a write is blocked: when it fires before the write progresses, the write fails.
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, timeout: Duration) -> StallGuard<T> {
        StallGuard { inner, timeout, stalled_since: None }
    }

    /// Called when a write is pending: arms the timer once, and fails if it fired.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.timeout;
        let timer =
            self.stalled_since.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {} ms: closing its connection", timeout.as_millis()),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(&mut self, result: Poll<R>, cx: &mut Context<'_>) -> Poll<Result<R, io::Error>> {
        match result {
            Poll::Ready(value) => {
                self.stalled_since = None;
                Poll::Ready(Ok(value))
            }
            Poll::Pending => self.check_stall(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // Reads are bounded by hyper's header read timeout and the handlers' body read timeout.
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        flatten(self.progressed(result, cx))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        flatten(self.progressed(result, cx))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        flatten(self.progressed(result, cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        flatten(self.progressed(result, cx))
    }
}

fn flatten<R>(poll: Poll<Result<io::Result<R>, io::Error>>) -> Poll<io::Result<R>> {
    poll.map(|outer| outer.and_then(|inner| inner))
}
