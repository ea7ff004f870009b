//! Helpers of the active/standby tests: a TCP proxy between one contender and ZooKeeper that can
//! partition it silently, or lose the reply to its next multi-op (a takeover whose reply never
//! arrives).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// ZooKeeper's opcode of a multi-op request.
const OP_MULTI: i32 = 14;

/// A TCP proxy in front of ZooKeeper. A cut is silent (no FIN, no RST: packets just stop, as in
/// a network partition) until healed.
pub struct Proxy {
    pub addr: SocketAddr,
    partitioned: Arc<watch::Sender<bool>>,
    lose_multi_reply: Arc<AtomicBool>,
    lost_replies: Arc<AtomicUsize>,
    _task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let partitioned = Arc::new(watch::channel(false).0);
        let lose_multi_reply = Arc::new(AtomicBool::new(false));
        let lost_replies = Arc::new(AtomicUsize::new(0));
        let (cut, lose, lost) = (
            partitioned.clone(),
            lose_multi_reply.clone(),
            lost_replies.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let lossy = Lossy {
                    lose: lose.clone(),
                    lost: lost.clone(),
                };
                tokio::spawn(relay(client, upstream, cut.subscribe(), lossy));
            }
        });
        Proxy {
            addr,
            partitioned,
            lose_multi_reply,
            lost_replies,
            _task: task,
        }
    }

    /// Drops every packet from now on, both ways, on existing and new connections.
    pub fn cut(&self) {
        self.partitioned.send_replace(true);
    }

    /// Lets packets through again; connections held during the cut are closed.
    pub fn heal(&self) {
        self.partitioned.send_replace(false);
    }

    /// The next multi-op request reaches ZooKeeper, but nothing comes back on that connection
    /// afterwards (the client times out and reconnects through the proxy, in the same session).
    pub fn lose_reply_to_next_multi(&self) {
        self.lose_multi_reply.store(true, Ordering::SeqCst);
    }

    /// How many multi-op replies were lost so far.
    pub fn lost_replies(&self) -> usize {
        self.lost_replies.load(Ordering::SeqCst)
    }
}

/// Whether to lose the reply to the next multi-op, and how many were lost.
struct Lossy {
    lose: Arc<AtomicBool>,
    lost: Arc<AtomicUsize>,
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut cut: watch::Receiver<bool>,
    lossy: Lossy,
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
    let requests = forward_requests(client_rx, server_tx, lossy, mute_tx);
    let replies = forward_replies(server_rx, client_tx, mute);
    tokio::select! {
        _ = requests => return,
        _ = replies => return,
        _ = cut.wait_for(|p| *p) => {}
    }
    // Partitioned: hold both ends silently until healed, then drop them.
    let _ = cut.wait_for(|p| !*p).await;
}

/// Client to server, frame by frame (4-byte length, then the request; every request after the
/// connect request starts with its xid and opcode). Mutes the replies after a multi-op when
/// asked to.
async fn forward_requests(
    mut client: impl AsyncReadExt + Unpin,
    mut server: impl AsyncWriteExt + Unpin,
    lossy: Lossy,
    mute: watch::Sender<bool>,
) -> std::io::Result<()> {
    let mut first = true;
    loop {
        let mut len = [0u8; 4];
        client.read_exact(&mut len).await?;
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        client.read_exact(&mut frame).await?;
        server.write_all(&len).await?;
        server.write_all(&frame).await?;
        if !first
            && frame.len() >= 8
            && i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) == OP_MULTI
            && lossy.lose.swap(false, Ordering::SeqCst)
        {
            lossy.lost.fetch_add(1, Ordering::SeqCst);
            mute.send_replace(true);
        }
        first = false;
    }
}

/// Server to client, until muted; then nothing more. Ends when the server closes.
async fn forward_replies(
    mut server: impl AsyncReadExt + Unpin,
    mut client: impl AsyncWriteExt + Unpin,
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
        client.write_all(&buf[..n]).await?;
    }
    // Muted: send nothing more (the client is left to time out).
    std::future::pending().await
}
