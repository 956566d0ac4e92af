//! What bounds a client connection: caps on open connections (over both listeners and per
//! client address, refused at accept), a deadline for the TLS handshake and first request
//! head, HTTP/1 header-read and HTTP/2 keep-alive timeouts in hyper, an idle timeout, and
//! the process's open-file limit raised at start so that the caps, not the descriptors,
//! run out first.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use certkeeper_acme::{Caps, Permit};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::config::ServerSettings;

/// Descriptors kept for everything but client connections (database, validations,
/// discovery, alert channels, files) when the connection cap is fitted to the open-file
/// limit.
const RESERVED_DESCRIPTORS: u64 = 1024;

/// The bounds of every connection, shared by both listeners.
#[derive(Debug, Clone)]
pub(crate) struct ConnPolicy {
    caps: Caps<IpAddr>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    keep_alive_interval: Duration,
}

impl ConnPolicy {
    /// The policy of the `[server]` settings, with the connection cap lowered to what the
    /// open-file limit `nofile` (when known) leaves room for.
    pub(crate) fn new(s: &ServerSettings, nofile: Option<u64>) -> ConnPolicy {
        let mut max = s.max_connections;
        if let Some(limit) = nofile {
            let room = limit
                .saturating_sub(RESERVED_DESCRIPTORS)
                .max(limit / 2)
                .max(1);
            let room = usize::try_from(room).unwrap_or(usize::MAX);
            if max == 0 || max > room {
                tracing::warn!(
                    configured = s.max_connections,
                    open_file_limit = limit,
                    used = room,
                    "server.max_connections fitted to the open-file limit"
                );
                max = room;
            }
        }
        ConnPolicy {
            caps: Caps::new(max, s.max_connections_per_ip),
            header_read_timeout: s.header_read_timeout,
            idle_timeout: s.idle_timeout,
            keep_alive_interval: s.keep_alive_interval,
        }
    }

    /// A place for a new connection from `ip`, or `None`: close it at once.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<Permit<IpAddr>> {
        self.caps.try_acquire(&ip).ok()
    }

    /// A hyper connection builder (HTTP/1 and HTTP/2) with this policy's timeouts.
    pub(crate) fn builder(&self) -> Builder<TokioExecutor> {
        let mut b = Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        b.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.keep_alive_interval)
            .keep_alive_timeout(self.header_read_timeout)
            .max_concurrent_streams(100);
        b
    }

    /// Resolves when the connection of `activity` is to be closed: no request head within
    /// the header-read timeout of its start (TLS handshake included), or, after that, no
    /// bytes either way for the idle timeout. Says why.
    pub(crate) async fn expired(&self, activity: &Activity) -> &'static str {
        tokio::time::sleep_until(activity.start + self.header_read_timeout).await;
        if !activity.requested.load(Ordering::Acquire) {
            return "no request head within server.header_read_timeout";
        }
        loop {
            let deadline = activity.last() + self.idle_timeout;
            if Instant::now() >= deadline {
                return "idle for server.idle_timeout";
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// When a connection started, last moved bytes, and whether it sent a request.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last read or write that moved bytes.
    last_ms: AtomicU64,
    requested: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            requested: AtomicBool::new(false),
        })
    }

    /// A request head arrived.
    pub(crate) fn requested(&self) {
        self.requested.store(true, Ordering::Release);
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A socket that records in its [`Activity`] each read or write that moves bytes.
#[derive(Debug)]
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Watched<S> {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
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

/// Raise the soft open-file limit to the hard limit; returns the soft limit now in force
/// (`None` where it cannot be read).
pub(crate) fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The soft open-file limit is raised to the hard one (this test lowers it first, to a
    /// value every test of this binary can live with).
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
        let low = hard.min(4096);
        if low < hard {
            rlimit::Resource::NOFILE.set(low, hard).unwrap();
        }
        assert_eq!(raise_open_file_limit(), Some(hard));
        assert_eq!(rlimit::Resource::NOFILE.get().unwrap(), (hard, hard));
    }

    /// The connection cap is fitted to the open-file limit, leaving descriptors for the rest.
    #[test]
    fn the_connection_cap_fits_the_open_file_limit() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings::load(dir.path(), None).unwrap();
        let mut s = settings.server.clone();
        s.max_connections = 10_000;
        s.max_connections_per_ip = 0;
        let p = ConnPolicy::new(&s, Some(4096));
        let permits: Vec<_> = (0..3072u32)
            .map(|i| p.admit(IpAddr::from(i.to_be_bytes())).expect("room"))
            .collect();
        assert!(p.admit(IpAddr::from([10, 0, 0, 1])).is_none());
        drop(permits);
        // Room under a generous limit is the setting itself.
        let p = ConnPolicy::new(&s, Some(1 << 20));
        let permits: Vec<_> = (0..10_000u32)
            .map(|i| p.admit(IpAddr::from(i.to_be_bytes())).expect("room"))
            .collect();
        assert!(p.admit(IpAddr::from([10, 0, 0, 1])).is_none());
        drop(permits);
    }
}
