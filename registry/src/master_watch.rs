//! `MasterWatch`: for clients, the current master's address at an election path, following the
//! node as the seeds' client does (read it, watch it, read it again when it changes). (Not a
//! ZooKeeper "follower": those are ensemble members.)
//!
//! Guarantees:
//! - [`MasterWatch::follow`] returns after the first read, so [`MasterWatch::master`] is
//!   real from the start: `Some(address)` (the node's data, `host:port`) or `None` when nobody
//!   holds the node.
//! - Every change of the node is followed: data changed (a designation), deleted (no master),
//!   created (a new master). Watches are re-armed on every read.
//! - While ZooKeeper is unreachable the last known master stays (calls keep going to it); after
//!   a reconnect or a new session the node is read again, since events during a disconnect can
//!   be lost. The loop is `crate::watched`'s, shared with [`crate::Discovery`].
//! - Node data that is not a usable address (not `host:port`: not UTF-8, empty, whitespace, no
//!   port) counts as no master, with one warning; [`MasterWatch::bad_data`] says what is there,
//!   so a caller can name it instead of "nobody holds the node".
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_registry::Error> {
//! use zoorpc_registry::{MasterWatch, Session};
//! let session = Session::connect_to("127.0.0.1:2181").await?;
//! let watch = MasterWatch::follow(&session, "/soa/master/services/HelloService:1.0.0").await?;
//! match watch.master() {
//!     Some(address) => println!("calling http://{address}"),
//!     None => println!("no master right now"),
//! }
//! let mut masters = watch.subscribe();
//! masters.changed().await.ok();
//! println!("the master is now {:?}", *masters.borrow());
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};
use zookeeper_client as zk;

use crate::election::validate_election_path;
use crate::election::{is_host_port, read_address};
use crate::error::{Error, Result};
use crate::session::{Session, SessionStatus};
use crate::watched::{Follow, Watched};

/// Follows the master node at one path. Dropping it stops following.
#[derive(Debug)]
pub struct MasterWatch {
    path: String,
    master: Watched<Option<String>>,
    /// What the node holds when it is not an address (shared with the follow loop).
    bad: Arc<Mutex<Option<String>>>,
}

impl MasterWatch {
    /// Starts following the master node at `path`; returns after the first read (an error if it
    /// cannot be read: not authorized, or ZooKeeper out of reach for the connect timeout).
    pub async fn follow(session: &Session, path: &str) -> Result<MasterWatch> {
        let path = validate_election_path(path)?.to_owned();
        let bad = Arc::new(Mutex::new(None));
        let node = MasterNode {
            path: path.clone(),
            watch: None,
            bad: bad.clone(),
        };
        let master = Watched::start(session, node, None).await?;
        Ok(MasterWatch { path, master, bad })
    }

    /// The master's address now, `None` if nobody holds the node (or its data is no address).
    pub fn master(&self) -> Option<String> {
        self.master.get()
    }

    /// What the master node holds when that is not an address (as text, at most 200 escaped
    /// characters and its size); `None` when it is one, or there is no node.
    pub fn bad_data(&self) -> Option<String> {
        self.bad.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why there is no master to call now: [`Error::MasterBadData`] naming what the node holds,
    /// or [`Error::NoMaster`].
    pub fn no_master_error(&self) -> Error {
        match self.bad_data() {
            Some(data) => Error::MasterBadData {
                path: self.path.clone(),
                data,
            },
            None => Error::NoMaster {
                path: self.path.clone(),
            },
        }
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

/// The master node, as followed by [`Watched`].
struct MasterNode {
    path: String,
    /// The watch armed by the last read (data, or creation of a missing node).
    watch: Option<zk::OneshotWatcher>,
    /// What the node holds when it is not an address (read by [`MasterWatch::bad_data`]).
    bad: Arc<Mutex<Option<String>>>,
}

impl MasterNode {
    fn set_bad(&self, data: Option<String>) {
        *self.bad.lock().unwrap_or_else(|p| p.into_inner()) = data;
    }
}

impl Follow for MasterNode {
    type Value = Option<String>;

    fn path(&self) -> &str {
        &self.path
    }

    fn session_changed(&mut self, _new_session: bool) {
        self.watch = None;
    }

    async fn read(
        &mut self,
        status: &SessionStatus,
    ) -> std::result::Result<Option<Option<String>>, zk::Error> {
        let client = &status.client;
        match client.get_and_watch_data(&self.path).await {
            Ok((data, _, watcher)) => {
                self.watch = Some(watcher);
                let address =
                    read_address(&data).and_then(|a| if is_host_port(&a) { Ok(a) } else { Err(a) });
                let master = match address {
                    Ok(address) => {
                        self.set_bad(None);
                        Some(address)
                    }
                    Err(raw) => {
                        warn!(path = %self.path, data = %raw, "the master node's data is not an address; treating it as no master");
                        self.set_bad(Some(raw));
                        None
                    }
                };
                debug!(path = %self.path, ?master, "master read");
                Ok(Some(master))
            }
            // No data watch is left on a missing node: watch for its creation instead.
            Err(zk::Error::NoNode) => match client.check_and_watch_stat(&self.path).await? {
                (None, watcher) => {
                    self.watch = Some(watcher);
                    self.set_bad(None);
                    Ok(Some(None))
                }
                // It appeared between the two reads: read again.
                (Some(_), _) => Ok(None),
            },
            Err(e) => Err(e),
        }
    }

    async fn changed(&mut self) {
        match self.watch.take() {
            Some(watcher) => {
                watcher.changed().await;
            }
            None => std::future::pending().await,
        }
    }
}
