//! [`Liveness`]: how the consumer finds a provider connection whose peer went silent (a paused
//! process, a partition, a dead host) without HTTP/2 PINGs.
//!
//! The rule: a connection from which nothing has been read for [`PROBE_AFTER`] gets one probe,
//! a `grpc.health.v1.Health/Check` request sent *on that connection*; an answer of any kind
//! (`SERVING`, `NOT_SERVING`, `UNIMPLEMENTED` from a server without the health service) or any
//! other bytes read within [`PROBE_TIMEOUT`] mean the peer is there; nothing means it is not,
//! and the connection is shut down (its socket, so every call and stream on it ends at once,
//! `UNAVAILABLE` naming the provider). Busy and idle connections alike: an idle connection to
//! a vanished provider is closed before a call waits on it, and the next call dials again
//! (which fails in a second against a process that does not speak: see the dialer).
//!
//! Why a request and not an HTTP/2 PING: stock gRPC servers police PINGs. grpc-java, grpc-go
//! and C-core (Python, Ruby, C++) servers by default allow one PING per 5 minutes while calls
//! are open and none without calls; a client pinging more often is sent `GOAWAY
//! ENHANCE_YOUR_CALM "too_many_pings"` after two strikes and the connection is closed with every
//! call on it (seen here: a 45 s call to a Python `grpcio` server failed at 40 s with "Too many
//! pings" under 10 s PINGs). A request is what servers exist to answer; a health check every
//! 10 s of silence is what Envoy's and gRPC's own health checking send.
//!
//! The probe is only sent on a connection that exists (a probe never dials), and it goes on as
//! long as the endpoint is in the list or a call on it is still open (a stream from a provider
//! whose node left the list: a paused provider's session expired); then the watchdog ends and
//! lets the connection go.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::Channel;
use tower::{Service, ServiceExt};
use tracing::warn;

/// How long a connection may be silent (nothing read from it) before it is probed.
pub(crate) const PROBE_AFTER: Duration = Duration::from_secs(10);

/// How long a probe may go unanswered (nothing read at all) before the connection is shut down.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the watchdog looks at its connection.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What an endpoint and the connections of its channel share (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    /// Reads with data from the current connection, counted (the watchdog compares counts: no
    /// clock on the read path).
    reads: AtomicU64,
    /// Response bodies of this endpoint not yet ended or dropped (an attempt in progress holds
    /// the endpoint itself, so it is not `gone` meanwhile).
    open: AtomicUsize,
    /// The endpoint has left the list (set when it is dropped).
    gone: AtomicBool,
    /// The current connection's socket, to shut it down.
    current: Mutex<Weak<Socket>>,
}

impl Liveness {
    /// A call on this endpoint, open until the guard is dropped.
    pub(crate) fn open_call(self: &Arc<Self>) -> OpenCall {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenCall(self.clone())
    }

    /// The endpoint left the list: the watchdog ends once no call on it is open.
    pub(crate) fn endpoint_gone(&self) {
        self.gone.store(true, Ordering::Relaxed);
    }

    /// A new connection, `io` on `socket`: counted reads, and shut down by the watchdog.
    pub(crate) fn watch<S>(self: &Arc<Self>, io: S, socket: OwnedFd) -> Watched<S> {
        let socket = Arc::new(Socket(std::net::TcpStream::from(socket)));
        if let Ok(mut current) = self.current.lock() {
            *current = Arc::downgrade(&socket);
        }
        Watched {
            io,
            liveness: self.clone(),
            _socket: socket,
        }
    }

    /// The watchdog of `channel`'s connections (see the module docs), named `provider` in its
    /// log lines: spawned on the current tokio runtime, if there is one.
    pub(crate) fn spawn_watchdog(
        self: &Arc<Self>,
        channel: Channel,
        provider: String,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let liveness = self.clone();
        Some(runtime.spawn(async move { liveness.watchdog(channel, &provider).await }))
    }

    async fn watchdog(&self, channel: Channel, provider: &str) {
        let mut seen = self.reads.load(Ordering::Relaxed);
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            if self.gone.load(Ordering::Relaxed) && self.open.load(Ordering::Relaxed) == 0 {
                return;
            }
            let reads = self.reads.load(Ordering::Relaxed);
            let connected = self.socket().is_some();
            if reads != seen || !connected {
                (seen, quiet) = (reads, Duration::ZERO);
                continue;
            }
            quiet += LOOK_EVERY;
            if quiet < PROBE_AFTER {
                continue;
            }
            quiet = Duration::ZERO;
            if !self.probe(channel.clone(), seen).await {
                self.shut_down(provider);
            }
            seen = self.reads.load(Ordering::Relaxed);
        }
    }

    /// One health check on the current connection: whether anything was read within
    /// [`PROBE_TIMEOUT`] (its answer or anything else; `reads_before` is the count it started
    /// from).
    async fn probe(&self, channel: Channel, reads_before: u64) -> bool {
        let answered = tokio::time::timeout(PROBE_TIMEOUT, health_check(channel)).await;
        answered.is_ok() || self.reads.load(Ordering::Relaxed) != reads_before
    }

    fn socket(&self) -> Option<Arc<Socket>> {
        self.current.lock().ok()?.upgrade()
    }

    /// Shuts the current connection's socket down: its reader sees the end at once, and every
    /// call on it fails.
    fn shut_down(&self, provider: &str) {
        let Some(socket) = self.socket() else {
            return;
        };
        warn!(
            %provider,
            "no answer on the connection for {}s, nor to a health check within {}s: closing it \
             (its calls and streams end UNAVAILABLE)",
            PROBE_AFTER.as_secs(),
            PROBE_TIMEOUT.as_secs()
        );
        // Already closed by the other side: nothing to do.
        let _ = socket.0.shutdown(std::net::Shutdown::Both);
    }
}

/// One open call (see [`Liveness::open_call`]).
#[derive(Debug)]
pub(crate) struct OpenCall(Arc<Liveness>);

impl Drop for OpenCall {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A second descriptor of a connection's TCP socket, held as long as the connection is.
#[derive(Debug)]
struct Socket(std::net::TcpStream);

/// A second descriptor of `tcp`'s socket, for [`Liveness::watch`].
pub(crate) fn socket_of(tcp: &tokio::net::TcpStream) -> io::Result<OwnedFd> {
    tcp.as_fd().try_clone_to_owned()
}

/// A `grpc.health.v1.Health/Check` for the whole server (an empty request), sent on `channel`;
/// ends with the response headers, whatever they say.
async fn health_check(channel: Channel) {
    // A gRPC message: not compressed, length 0 (an empty `HealthCheckRequest`).
    let body = tonic::body::Body::new(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])));
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri("/grpc.health.v1.Health/Check")
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(body);
    let Ok(request) = request else {
        return;
    };
    let mut channel = channel;
    if let Ok(ready) = channel.ready().await {
        let _ = ready.call(request).await;
    }
}

/// A connection whose reads are counted for its [`Liveness`].
pub(crate) struct Watched<S> {
    io: S,
    liveness: Arc<Liveness>,
    /// Keeps the socket's second descriptor for the watchdog while the connection lives.
    _socket: Arc<Socket>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.liveness.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lazy_channel() -> Channel {
        tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy()
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_ends_once_its_endpoint_is_gone_and_no_call_is_open() {
        let liveness = Arc::new(Liveness::default());
        let watchdog = liveness
            .spawn_watchdog(lazy_channel(), "http://127.0.0.1:9".into())
            .expect("a runtime");
        let open = liveness.open_call();
        liveness.endpoint_gone();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(
            !watchdog.is_finished(),
            "a call is still open: still watched"
        );
        drop(open);
        tokio::time::sleep(LOOK_EVERY * 2).await;
        assert!(watchdog.is_finished(), "gone and idle: the watchdog ended");
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_of_a_listed_endpoint_runs_on_without_calls() {
        let liveness = Arc::new(Liveness::default());
        let watchdog = liveness
            .spawn_watchdog(lazy_channel(), "http://127.0.0.1:9".into())
            .expect("a runtime");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!watchdog.is_finished());
        // Never connected: nothing to probe, nothing dialled for a probe.
        assert!(liveness.socket().is_none());
        watchdog.abort();
    }
}
