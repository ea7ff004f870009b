//! [`ZkProxy`]: a TCP proxy between one ZooKeeper client and its server, for fault tests. It can
//! partition the client silently (packets stop, no FIN, no RST) and heal it, or let one request
//! (of a kind, or naming a path) through and lose its reply (the client times out and reconnects
//! in the same session, never knowing whether the request took effect), or hold the replies from
//! such a request on until released (a reply that is late, not lost). It can also slow the link down: every byte is
//! delivered a set delay after it was read, both ways (a slow network; TCP's own retransmits
//! are what loss looks like to a client, so only the delay is modelled).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A kind of ZooKeeper request, by the opcode it carries on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `create` in any of its forms (`create`, `create2`, container, TTL).
    Create,
    /// `delete`.
    Delete,
    /// A multi-op transaction.
    Multi,
}

impl Request {
    fn matches(self, opcode: i32) -> bool {
        match self {
            // create, create2, createContainer, createTTL
            Request::Create => matches!(opcode, 1 | 15 | 19 | 21),
            Request::Delete => opcode == 2,
            Request::Multi => opcode == 14,
        }
    }

    fn encode(target: Option<Request>) -> i32 {
        match target {
            None => 0,
            Some(Request::Create) => 1,
            Some(Request::Delete) => 2,
            Some(Request::Multi) => 3,
        }
    }

    fn decode(code: i32) -> Option<Request> {
        match code {
            1 => Some(Request::Create),
            2 => Some(Request::Delete),
            3 => Some(Request::Multi),
            _ => None,
        }
    }
}

/// A TCP proxy on a free loopback port in front of one ZooKeeper server. Point a client's
/// connect string at [`ZkProxy::addr`]. Stops relaying when dropped.
pub struct ZkProxy {
    addr: SocketAddr,
    partitioned: Arc<watch::Sender<bool>>,
    lose: Arc<AtomicI32>,
    naming: Arc<Mutex<Option<Vec<u8>>>>,
    hold: Arc<AtomicBool>,
    holding: Arc<watch::Sender<bool>>,
    lost: Arc<AtomicUsize>,
    delay_us: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl ZkProxy {
    /// Starts relaying to `upstream` (needs a Tokio runtime).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<ZkProxy> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let partitioned = Arc::new(watch::channel(false).0);
        let lose = Arc::new(AtomicI32::new(0));
        let naming = Arc::new(Mutex::new(None));
        let hold = Arc::new(AtomicBool::new(false));
        let holding = Arc::new(watch::channel(false).0);
        let lost = Arc::new(AtomicUsize::new(0));
        let delay_us = Arc::new(AtomicU64::new(0));
        let faults = Faults {
            lose: lose.clone(),
            naming: naming.clone(),
            hold: hold.clone(),
            holding: holding.clone(),
            lost: lost.clone(),
            delay_us: delay_us.clone(),
        };
        let cut = partitioned.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, cut.subscribe(), faults.clone()));
            }
        });
        Ok(ZkProxy {
            addr,
            partitioned,
            lose,
            naming,
            hold,
            holding,
            lost,
            delay_us,
            task,
        })
    }

    /// Delivers every byte `delay` after it was read, both ways, on existing and new
    /// connections (zero: at once, the default). Bytes already on their way keep their delay.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_us.store(us, Ordering::SeqCst);
    }

    /// The proxy's address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every packet from now on, both ways, on existing and new connections.
    pub fn cut(&self) {
        self.partitioned.send_replace(true);
    }

    /// Lets packets through again; connections held during the cut are closed.
    pub fn heal(&self) {
        self.partitioned.send_replace(false);
    }

    /// The next request of this kind reaches ZooKeeper, but nothing comes back on that
    /// connection afterwards: the client times out and reconnects through the proxy, in the
    /// same session.
    pub fn lose_reply_to_next(&self, request: Request) {
        self.arm(request, None, false);
    }

    /// As [`ZkProxy::lose_reply_to_next`], for the next request of this kind that names `path`
    /// (e.g. the one transaction of several that writes a given node).
    pub fn lose_reply_to_next_naming(&self, request: Request, path: &str) {
        self.arm(request, Some(path), false);
    }

    /// The next request of this kind that names `path` reaches ZooKeeper; from then on no reply
    /// reaches any client of this proxy until [`ZkProxy::release`], which delivers them all, in
    /// order (late, not lost). [`ZkProxy::wait_holding`] waits for that request.
    pub fn hold_replies_from_next_naming(&self, request: Request, path: &str) {
        self.arm(request, Some(path), true);
    }

    /// Waits until replies are held (see [`ZkProxy::hold_replies_from_next_naming`]).
    pub async fn wait_holding(&self) {
        let _ = self.holding.subscribe().wait_for(|h| *h).await;
    }

    /// Delivers the held replies, and every later one, again.
    pub fn release(&self) {
        self.holding.send_replace(false);
    }

    fn arm(&self, request: Request, path: Option<&str>, hold: bool) {
        *lock(&self.naming) = path.map(|p| p.as_bytes().to_vec());
        self.hold.store(hold, Ordering::SeqCst);
        self.lose
            .store(Request::encode(Some(request)), Ordering::SeqCst);
    }

    /// How many replies were lost so far.
    pub fn lost_replies(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for ZkProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which reply to lose next, and how many were lost; shared by all connections.
#[derive(Clone)]
struct Faults {
    lose: Arc<AtomicI32>,
    /// A path the request whose reply is lost must name (`None`: any of its kind).
    naming: Arc<Mutex<Option<Vec<u8>>>>,
    /// The armed fault holds the replies (until released) rather than losing them.
    hold: Arc<AtomicBool>,
    /// Replies are held, on every connection, while this is `true`.
    holding: Arc<watch::Sender<bool>>,
    lost: Arc<AtomicUsize>,
    delay_us: Arc<AtomicU64>,
}

impl Faults {
    /// Whether the reply to this request (its opcode and whole frame) is to be lost (at most
    /// once per arming).
    fn take(&self, opcode: i32, frame: &[u8]) -> bool {
        let armed = self.lose.load(Ordering::SeqCst);
        let named = match lock(&self.naming).as_deref() {
            Some(path) => path.is_empty() || frame.windows(path.len()).any(|w| w == path),
            None => true,
        };
        let hit = Request::decode(armed).is_some_and(|r| r.matches(opcode))
            && named
            && self
                .lose
                .compare_exchange(armed, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        if hit {
            self.lost.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }

    /// When bytes read now are to be delivered.
    fn due(&self) -> Instant {
        Instant::now() + Duration::from_micros(self.delay_us.load(Ordering::SeqCst))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bytes on their way, with the time they are due.
type InFlight = mpsc::UnboundedSender<(Instant, Vec<u8>)>;

/// Writes what `queue` brings to `to`, each piece at its due time, in order.
async fn deliver(
    mut queue: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    mut to: impl AsyncWriteExt + Unpin,
) -> std::io::Result<()> {
    while let Some((due, bytes)) = queue.recv().await {
        tokio::time::sleep_until(due).await;
        to.write_all(&bytes).await?;
    }
    Ok(())
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut cut: watch::Receiver<bool>,
    faults: Faults,
) {
    if *cut.borrow_and_update() {
        // A connection attempt during the partition goes nowhere.
        let _ = cut.wait_for(|p| !*p).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_rx, client_tx) = client.split();
    let (server_rx, server_tx) = server.split();
    let (mute_tx, mute) = watch::channel(false);
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let (down_tx, down_rx) = mpsc::unbounded_channel();
    tokio::select! {
        _ = forward_requests(client_rx, up_tx, faults.clone(), mute_tx) => return,
        _ = forward_replies(server_rx, down_tx, faults, mute) => return,
        _ = deliver(up_rx, server_tx) => return,
        _ = deliver(down_rx, client_tx) => return,
        _ = cut.wait_for(|p| *p) => {}
    }
    // Partitioned: hold both ends silently until healed, then drop them.
    let _ = cut.wait_for(|p| !*p).await;
}

/// Client to server, frame by frame (4-byte length, then the request; every request after the
/// connect request starts with its xid and opcode). Mutes the replies after a request whose
/// reply is to be lost.
async fn forward_requests(
    mut client: impl AsyncReadExt + Unpin,
    server: InFlight,
    faults: Faults,
    mute: watch::Sender<bool>,
) -> std::io::Result<()> {
    let mut first = true;
    loop {
        let mut len = [0u8; 4];
        client.read_exact(&mut len).await?;
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        client.read_exact(&mut frame).await?;
        let mut bytes = len.to_vec();
        bytes.extend_from_slice(&frame);
        server
            .send((faults.due(), bytes))
            .map_err(|_| std::io::Error::other("the server side is closed"))?;
        let opcode = match frame[..] {
            [_, _, _, _, a, b, c, d, ..] if !first => Some(i32::from_be_bytes([a, b, c, d])),
            _ => None,
        };
        if opcode.is_some_and(|op| faults.take(op, &frame)) {
            if faults.hold.load(Ordering::SeqCst) {
                faults.holding.send_replace(true);
            } else {
                mute.send_replace(true);
            }
        }
        first = false;
    }
}

/// Server to client, until muted; then nothing more. Ends when the server closes.
async fn forward_replies(
    mut server: impl AsyncReadExt + Unpin,
    client: InFlight,
    faults: Faults,
    mut mute: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            n = server.read(&mut buf) => n?,
            _ = mute.wait_for(|m| *m) => break,
        };
        if n == 0 {
            return Ok(());
        }
        if *mute.borrow() {
            break;
        }
        // Held: these bytes (and the socket's) wait until released.
        let _ = faults.holding.subscribe().wait_for(|h| !*h).await;
        client
            .send((faults.due(), buf[..n].to_vec()))
            .map_err(|_| std::io::Error::other("the client side is closed"))?;
    }
    // Muted: send nothing more (the client is left to time out).
    std::future::pending().await
}
