//! `MasterFollower`: for clients, the current master's address at an election path, following
//! the node as the seeds' client does (read it, watch it, read it again when it changes).
//!
//! Guarantees:
//! - [`MasterFollower::follow`] returns after the first read, so [`MasterFollower::master`] is
//!   real from the start: `Some(address)` (the node's data, `host:port`) or `None` when nobody
//!   holds the node.
//! - Every change of the node is followed: data changed (a designation), deleted (no master),
//!   created (a new master). Watches are re-armed on every read.
//! - While ZooKeeper is unreachable the last known master stays (calls keep going to it); after
//!   a reconnect or a new session the node is read again, since events during a disconnect can
//!   be lost.
//! - Node data that is not a usable address (not UTF-8, empty, whitespace) counts as no master,
//!   with one warning.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_registry::Error> {
//! use zoorpc_registry::{MasterFollower, Session};
//! let session = Session::connect_to("127.0.0.1:2181").await?;
//! let follower = MasterFollower::follow(&session, "/soa/master/services/HelloService:1.0.0").await?;
//! match follower.master() {
//!     Some(address) => println!("calling http://{address}"),
//!     None => println!("no master right now"),
//! }
//! let mut masters = follower.subscribe();
//! masters.changed().await.ok();
//! println!("the master is now {:?}", *masters.borrow());
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tracing::{debug, warn};
use zookeeper_client as zk;

use crate::election::validate_address;
use crate::error::Result;
use crate::path::validate_path;
use crate::session::{Session, SessionStatus};
use crate::watched::Watched;

/// Follows the master node at one path. Dropping it stops following.
#[derive(Debug)]
pub struct MasterFollower {
    path: String,
    master: Watched<Option<String>>,
}

impl MasterFollower {
    /// Starts following the master node at `path`; returns after the first read.
    pub async fn follow(session: &Session, path: &str) -> Result<MasterFollower> {
        let path = validate_path(path)?.to_owned();
        let (session, followed) = (session.clone(), path.clone());
        let master = Watched::start(None, |tx, ready| run(session, followed, tx, ready)).await;
        Ok(MasterFollower { path, master })
    }

    /// The master's address now, `None` if nobody holds the node.
    pub fn master(&self) -> Option<String> {
        self.master.get()
    }

    /// The master's address as a watch: `changed()` fires on every change.
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.master.subscribe()
    }

    /// The election path followed.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits until the master satisfies `predicate`, at most `timeout`; returns it, or `None` on
    /// timeout (`Some(None)` means the predicate accepted "no master").
    pub async fn wait_for(
        &self,
        timeout: Duration,
        predicate: impl FnMut(&Option<String>) -> bool,
    ) -> Option<Option<String>> {
        let mut masters = self.subscribe();
        match tokio::time::timeout(timeout, masters.wait_for(predicate)).await {
            Ok(Ok(master)) => Some(master.clone()),
            _ => None,
        }
    }
}

/// What one read found, and how to hear about the next change.
enum Read {
    Found(Option<String>, zk::OneshotWatcher),
    /// The node vanished or appeared between two reads: read again.
    Again,
}

async fn run(
    session: Session,
    path: String,
    tx: watch::Sender<Option<String>>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut statuses = session.subscribe();
    loop {
        let status = statuses.borrow_and_update().clone();
        if !status.is_connected() {
            // Keep the last known master; read again when the link is back.
            if statuses.changed().await.is_err() {
                return;
            }
            continue;
        }
        match read(&status, &path).await {
            Ok(Read::Found(master, watcher)) => {
                tx.send_if_modified(|current| {
                    if *current == master {
                        false
                    } else {
                        debug!(path = %path, ?master, "master changed");
                        *current = master;
                        true
                    }
                });
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                tokio::select! {
                    _ = watcher.changed() => {}
                    changed = statuses.changed() => if changed.is_err() { return },
                }
            }
            Ok(Read::Again) => {}
            Err(e) => {
                debug!(error = %e, path = %path, "cannot read the master node");
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    changed = statuses.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

async fn read(status: &SessionStatus, path: &str) -> Result<Read, zk::Error> {
    let client = &status.client;
    match client.get_and_watch_data(path).await {
        Ok((data, _, watcher)) => Ok(Read::Found(address(path, &data), watcher)),
        // No data watch is left on a missing node: watch for its creation instead.
        Err(zk::Error::NoNode) => match client.check_and_watch_stat(path).await? {
            (None, watcher) => Ok(Read::Found(None, watcher)),
            (Some(_), _) => Ok(Read::Again),
        },
        Err(e) => Err(e),
    }
}

fn address(path: &str, data: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(data) {
        Ok(text) => text.trim(),
        Err(_) => {
            warn!(
                path,
                "the master node's data is not UTF-8; treating it as no master"
            );
            return None;
        }
    };
    match validate_address(text) {
        Ok(address) => Some(address.to_owned()),
        Err(e) => {
            warn!(path, error = %e, "the master node's data is not an address; treating it as no master");
            None
        }
    }
}
