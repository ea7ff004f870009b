//! Helpers of the active/standby tests: a TCP proxy that can partition a contender from
//! ZooKeeper.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy in front of ZooKeeper whose link can be cut silently (no FIN, no RST: packets
/// just stop, as in a network partition) and healed.
pub struct Proxy {
    pub addr: SocketAddr,
    partitioned: Arc<watch::Sender<bool>>,
    _task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let partitioned = Arc::new(watch::channel(false).0);
        let cut = partitioned.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cut.subscribe();
                tokio::spawn(async move {
                    if !*cut.borrow_and_update() {
                        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                            _ = cut.wait_for(|p| *p) => {}
                        }
                        // Partitioned: hold both ends silently until healed, then drop them.
                        let _ = cut.wait_for(|p| !*p).await;
                        return;
                    }
                    // A connection attempt during the partition goes nowhere.
                    let _ = cut.wait_for(|p| !*p).await;
                });
            }
        });
        Proxy {
            addr,
            partitioned,
            _task: task,
        }
    }

    pub fn cut(&self) {
        self.partitioned.send_replace(true);
    }

    pub fn heal(&self) {
        self.partitioned.send_replace(false);
    }
}
