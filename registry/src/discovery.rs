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
//!   child is read again.
//! - Snapshots are sorted by node name and published only when they differ.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};
use zookeeper_client as zk;

use crate::error::Result;
use crate::path::validate_path;
use crate::provider_url::ProviderUrl;
use crate::session::{Session, SessionStatus};
use crate::watched::Watched;

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
    /// Starts watching `base_path`; returns after the first listing.
    pub async fn watch(session: &Session, base_path: &str) -> Result<Discovery> {
        let base = validate_path(base_path)?.to_owned();
        let session = session.clone();
        let providers = Watched::start(Arc::new(Vec::new()), |tx, ready| {
            run(session, base, tx, ready)
        })
        .await;
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

type Known = HashMap<String, Child>;

/// A fired (or dropped) data watch: the child's name, the `czxid` it was armed for, the event.
type DataWatches = JoinSet<(String, i64, zk::WatchedEvent)>;

/// The children watch of the last listing, waiting to fire.
type ChildrenWatch = Pin<Box<dyn Future<Output = zk::WatchedEvent> + Send>>;

/// Pause after a failed read before trying again (unless the session changes first).
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The discovery task: lists, reads and watches until the `Discovery` is dropped.
struct Follow {
    base: String,
    tx: watch::Sender<Providers>,
    ready: Option<oneshot::Sender<()>>,
    known: Known,
    /// Children whose data must be read (new, or their data watch fired).
    stale: HashSet<String>,
    /// One armed data watch per known child.
    data_watches: DataWatches,
    /// The children watch; `None` when the children must be listed again.
    children_watch: Option<ChildrenWatch>,
    /// The session generation the data watches belong to.
    generation: Option<u64>,
}

async fn run(
    session: Session,
    base: String,
    tx: watch::Sender<Providers>,
    ready: oneshot::Sender<()>,
) {
    let mut follow = Follow {
        base,
        tx,
        ready: Some(ready),
        known: Known::new(),
        stale: HashSet::new(),
        data_watches: JoinSet::new(),
        children_watch: None,
        generation: None,
    };
    let mut statuses = session.subscribe();
    loop {
        let status = statuses.borrow_and_update().clone();
        if !status.is_connected() {
            // Keep serving the last snapshot; list again when back.
            follow.children_watch = None;
            if statuses.changed().await.is_err() {
                return;
            }
            continue;
        }
        if follow.generation != Some(status.generation) {
            // A new session: the old one's watches are gone. Read every child again.
            follow.data_watches = JoinSet::new();
            follow.stale = follow.known.keys().cloned().collect();
            follow.children_watch = None;
            follow.generation = Some(status.generation);
        }
        match follow.refresh(&status).await {
            Ok(Refreshed::Children) => {
                follow.publish();
                if !follow.wait_for_change(&mut statuses).await {
                    return;
                }
            }
            Ok(Refreshed::Missing(watcher)) => {
                follow.known.clear();
                follow.stale.clear();
                follow.data_watches = JoinSet::new();
                follow.publish();
                debug!(base = %follow.base, "base path does not exist yet; waiting for it");
                tokio::select! {
                    _ = watcher.changed() => {}
                    changed = statuses.changed() => if changed.is_err() { return },
                }
            }
            Ok(Refreshed::Retry) => {}
            Err(e) => {
                // Connection loss, expiry, or an error such as missing permissions. The last
                // snapshot stays; try again when the session changes or after a pause.
                debug!(error = %e, base = %follow.base, "listing failed");
                if matches!(e, zk::Error::NoAuth) {
                    warn!(base = %follow.base, "not authorized to list providers");
                }
                follow.children_watch = None;
                follow.signal_ready();
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                    changed = statuses.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

enum Refreshed {
    /// Children listed (or still valid) and every stale child read.
    Children,
    /// The base path does not exist; the watcher fires when it is created.
    Missing(zk::OneshotWatcher),
    /// The base path appeared or vanished between two reads; list again.
    Retry,
}

impl Follow {
    /// Lists the children if their watch fired, then reads every stale child.
    async fn refresh(&mut self, status: &SessionStatus) -> Result<Refreshed, zk::Error> {
        let client = &status.client;
        if self.children_watch.is_none() {
            let (children, _, watcher) = match client.get_and_watch_children(&self.base).await {
                Ok(listing) => listing,
                Err(zk::Error::NoNode) => {
                    return match client.check_and_watch_stat(&self.base).await? {
                        (None, watcher) => Ok(Refreshed::Missing(watcher)),
                        (Some(_), _) => Ok(Refreshed::Retry),
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
        self.read_stale(client).await?;
        Ok(Refreshed::Children)
    }

    /// Reads (and watches) the data of every stale child.
    async fn read_stale(&mut self, client: &zk::Client) -> Result<(), zk::Error> {
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

    /// Waits until the children change, a known child's data watch fires, or the session
    /// changes. Returns `false` when the session is gone for good.
    async fn wait_for_change(&mut self, statuses: &mut watch::Receiver<SessionStatus>) -> bool {
        loop {
            let Some(children) = self.children_watch.as_mut() else {
                return true;
            };
            tokio::select! {
                event = children => {
                    debug!(?event.event_type, base = %self.base, "children changed");
                    self.children_watch = None;
                    return true;
                }
                Some(fired) = self.data_watches.join_next() => {
                    let Ok((name, created, event)) = fired else { continue };
                    // A watch of a node we no longer know (deleted, replaced) or a session
                    // event (the session handler re-reads everything) is not a change here.
                    let current = self.known.get(&name).is_some_and(|c| c.created == created);
                    if current && event.event_type != zk::EventType::Session {
                        debug!(?event.event_type, node = %name, "provider node changed");
                        self.stale.insert(name);
                        return true;
                    }
                }
                changed = statuses.changed() => {
                    self.children_watch = None;
                    return changed.is_ok();
                }
            }
        }
    }

    fn signal_ready(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
    }

    fn publish(&mut self) {
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
        self.tx.send_if_modified(|current| {
            if **current == providers {
                false
            } else {
                *current = Arc::new(providers);
                true
            }
        });
        self.signal_ready();
    }
}
