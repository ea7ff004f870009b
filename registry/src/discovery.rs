//! `Discovery`: the live set of providers under a base path, delivered as a whole snapshot on
//! every change.
//!
//! Guarantees:
//! - `watch` returns after the first listing, so the first snapshot is real (empty when the base
//!   path does not exist yet; it is then watched and picked up when it appears).
//! - The snapshot equals ZooKeeper's children after any change, including an operator's `set` on
//!   an existing node and a node name that comes back after `deleteall` (or a wiped ZooKeeper)
//!   holding another URL: a node is identified by its name *and* its creation (`czxid`), and every
//!   child's data is watched, as Curator's `PathChildrenCache` does.
//! - Incremental: a child's data is read when it first appears and again only when its data
//!   watch fires (changed, deleted) or a new session has lost the watches.
//! - A child whose data is not a provider URL (not UTF-8, too large, not a URL) is skipped with
//!   one warning; it never ends the watch, and it is picked up if its data is corrected.
//! - While ZooKeeper is unreachable the last snapshot stays; after a reconnect the children are
//!   listed again (the client re-arms data watches within the session), after a new session every
//!   child is read again. The loop around it is `crate::watched`'s, shared with
//!   [`crate::MasterWatch`].
//! - Snapshots are sorted by node name and published only when they differ.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};
use zookeeper_client as zk;

use crate::error::Result;
use crate::plumbing::path::validate_path;
use crate::provider_url::ProviderUrl;
use crate::session::{Session, SessionStatus};
use crate::watched::{Follow, Watched};

/// One live provider: its znode name (e.g. `provider0000000042`), its URL and the transaction that
/// created the node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderNode {
    /// Child name under the base path.
    pub name: String,
    /// The URL from the node's data.
    pub url: ProviderUrl,
    /// The node's `czxid`. With the name it identifies the node: after `deleteall` of the base
    /// path ZooKeeper's sequence starts again and an old name can come back for another provider.
    pub created: i64,
}

/// A snapshot of the providers under a base path, sorted by node name.
pub type Providers = Arc<Vec<ProviderNode>>;

/// Watches a base path. Dropping it stops the watch.
#[derive(Debug)]
pub struct Discovery {
    providers: Watched<Providers>,
}

impl Discovery {
    /// Starts watching `base_path`; returns after the first listing (an error if it cannot be
    /// listed: not authorized, or ZooKeeper out of reach for the session's connect timeout).
    pub async fn watch(session: &Session, base_path: &str) -> Result<Discovery> {
        let base = validate_path(base_path)?.to_owned();
        let providers = Watched::start(session, Children::new(base), Arc::new(Vec::new())).await?;
        Ok(Discovery { providers })
    }

    /// The current snapshot.
    pub fn providers(&self) -> Providers {
        self.providers.get()
    }

    /// A receiver of snapshots.
    pub fn subscribe(&self) -> watch::Receiver<Providers> {
        self.providers.subscribe()
    }
}

/// What is known of a child: the node's creation and its URL (`None` if its data is bad).
struct Child {
    created: i64,
    url: Option<ProviderUrl>,
}

/// A fired (or dropped) data watch: the child's name, the `czxid` it was armed for, the event.
type DataWatches = JoinSet<(String, i64, zk::WatchedEvent)>;

/// A watch of the last read, waiting to fire.
type PendingWatch = Pin<Box<dyn Future<Output = zk::WatchedEvent> + Send>>;

/// The children of a base path and their data, as followed by [`Watched`].
struct Children {
    base: String,
    known: HashMap<String, Child>,
    /// Children whose data must be read (new, or their data watch fired).
    stale: HashSet<String>,
    /// One armed data watch per known child.
    data_watches: DataWatches,
    /// The children watch of the last listing (or the watch for the base path's creation);
    /// `None` when the children must be listed again.
    children_watch: Option<PendingWatch>,
}

impl Children {
    fn new(base: String) -> Children {
        Children {
            base,
            known: HashMap::new(),
            stale: HashSet::new(),
            data_watches: JoinSet::new(),
            children_watch: None,
        }
    }

    /// Lists the children if their watch fired, then reads every stale child.
    async fn refresh(
        &mut self,
        client: &zk::Client,
    ) -> std::result::Result<Option<Providers>, zk::Error> {
        if self.children_watch.is_none() {
            let (children, _, watcher) = match client.get_and_watch_children(&self.base).await {
                Ok(listing) => listing,
                Err(zk::Error::NoNode) => {
                    return match client.check_and_watch_stat(&self.base).await? {
                        (None, watcher) => {
                            debug!(base = %self.base, "base path does not exist yet; waiting for it");
                            self.known.clear();
                            self.stale.clear();
                            self.data_watches = JoinSet::new();
                            self.children_watch = Some(Box::pin(watcher.changed()));
                            Ok(Some(self.snapshot()))
                        }
                        // It appeared between the two reads: list again.
                        (Some(_), _) => Ok(None),
                    };
                }
                Err(e) => return Err(e),
            };
            self.children_watch = Some(Box::pin(watcher.changed()));
            let children: HashSet<String> = children.into_iter().collect();
            self.known.retain(|name, _| children.contains(name));
            self.stale.retain(|name| children.contains(name));
            for name in children {
                if !self.known.contains_key(&name) {
                    self.stale.insert(name);
                }
            }
        }
        if let Err(e) = self.read_stale(client).await {
            // The listing must be redone with the reads (its watch may be the only one left).
            self.children_watch = None;
            return Err(e);
        }
        Ok(Some(self.snapshot()))
    }

    /// Reads (and watches) the data of every stale child.
    async fn read_stale(&mut self, client: &zk::Client) -> std::result::Result<(), zk::Error> {
        // Send every read before awaiting any: the client pipelines them on one connection.
        let reads: Vec<_> = self
            .stale
            .iter()
            .map(|name| {
                let path = format!("{}/{name}", self.base);
                (name.clone(), client.get_and_watch_data(&path))
            })
            .collect();
        for (name, read) in reads {
            match read.await {
                Ok((data, stat, watcher)) => {
                    let url = match ProviderUrl::from_bytes(&data) {
                        Ok(url) => Some(url),
                        Err(e) => {
                            warn!(node = %format!("{}/{name}", self.base), error = %e, "skipping a provider node with bad data");
                            None
                        }
                    };
                    let created = stat.czxid;
                    self.data_watches.spawn({
                        let name = name.clone();
                        async move { (name, created, watcher.changed().await) }
                    });
                    self.known.insert(name.clone(), Child { created, url });
                }
                // Gone between the listing and the read; the children watch fires too.
                Err(zk::Error::NoNode) => {
                    self.known.remove(&name);
                }
                Err(e) => return Err(e),
            }
            self.stale.remove(&name);
        }
        Ok(())
    }

    /// The known providers with a good URL, sorted by node name.
    fn snapshot(&self) -> Providers {
        let mut providers: Vec<ProviderNode> = self
            .known
            .iter()
            .filter_map(|(name, child)| {
                child.url.as_ref().map(|url| ProviderNode {
                    name: name.clone(),
                    url: url.clone(),
                    created: child.created,
                })
            })
            .collect();
        providers.sort_by(|a, b| a.name.cmp(&b.name));
        Arc::new(providers)
    }
}

impl Follow for Children {
    type Value = Providers;

    fn path(&self) -> &str {
        &self.base
    }

    fn session_changed(&mut self, new_session: bool) {
        self.children_watch = None;
        if new_session {
            // The old session's watches are gone: read every child again.
            self.data_watches = JoinSet::new();
            self.stale = self.known.keys().cloned().collect();
        }
    }

    async fn read(
        &mut self,
        status: &SessionStatus,
    ) -> std::result::Result<Option<Providers>, zk::Error> {
        self.refresh(&status.client).await
    }

    /// Waits until the children change, the base path appears, or a known child's data watch
    /// fires (changed, deleted).
    async fn changed(&mut self) {
        loop {
            let Some(children) = self.children_watch.as_mut() else {
                return;
            };
            tokio::select! {
                event = children => {
                    debug!(?event.event_type, base = %self.base, "children changed");
                    self.children_watch = None;
                    return;
                }
                Some(fired) = self.data_watches.join_next() => {
                    let Ok((name, created, event)) = fired else { continue };
                    // A watch of a node we no longer know (deleted, replaced) or a session
                    // event (the loop re-reads after a session change) is not a change here.
                    let current = self.known.get(&name).is_some_and(|c| c.created == created);
                    if current && event.event_type != zk::EventType::Session {
                        debug!(?event.event_type, node = %name, "provider node changed");
                        self.stale.insert(name);
                        return;
                    }
                }
            }
        }
    }
}
