//! `Discovery`: the live set of providers under a base path, delivered as a whole snapshot on
//! every change.
//!
//! Guarantees:
//! - `watch` returns after the first listing, so the first snapshot is real (empty when the base
//!   path does not exist yet; it is then watched and picked up when it appears).
//! - Incremental: a child's data is fetched once, when the child first appears.
//! - A child whose data is not a provider URL (not UTF-8, too large, not a URL) is skipped with
//!   one warning; it never ends the watch.
//! - While ZooKeeper is unreachable the last snapshot stays; after a reconnect or a new session
//!   the children are listed again (events during a disconnect can be lost).
//! - Snapshots are sorted by node name and published only when they differ.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};
use zookeeper_client as zk;

use crate::error::Result;
use crate::path::validate_path;
use crate::provider_url::ProviderUrl;
use crate::session::{Session, SessionStatus};
use crate::watched::Watched;

/// One live provider: its znode name (e.g. `provider0000000042`) and its URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderNode {
    /// Child name under the base path.
    pub name: String,
    /// The URL from the node's data.
    pub url: ProviderUrl,
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

/// What is known of a child: its URL, or `None` if its data is bad (skipped).
type Known = HashMap<String, Option<ProviderUrl>>;

async fn run(
    session: Session,
    base: String,
    tx: watch::Sender<Providers>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut statuses = session.subscribe();
    let mut known: Known = HashMap::new();
    loop {
        let status = statuses.borrow_and_update().clone();
        if !status.is_connected() {
            // Keep serving the last snapshot; re-list when back.
            if statuses.changed().await.is_err() {
                return;
            }
            continue;
        }
        match list_once(&status, &base, &mut known).await {
            Ok(Listing::Children(watcher)) => {
                publish(&tx, &known);
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                tokio::select! {
                    event = watcher.changed() => debug!(?event.event_type, "children changed"),
                    changed = statuses.changed() => if changed.is_err() { return },
                }
            }
            Ok(Listing::Missing(watcher)) => {
                known.clear();
                publish(&tx, &known);
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                debug!(base = %base, "base path does not exist yet; waiting for it");
                tokio::select! {
                    _ = watcher.changed() => {}
                    changed = statuses.changed() => if changed.is_err() { return },
                }
            }
            Ok(Listing::Retry) => {}
            Err(e) => {
                // Connection loss, expiry, or an error such as missing permissions. The last
                // snapshot stays; retry when the session changes or after a pause.
                debug!(error = %e, base = %base, "listing failed");
                if matches!(e, zk::Error::NoAuth) {
                    warn!(base = %base, "not authorized to list providers");
                }
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    changed = statuses.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

enum Listing {
    /// Children listed; the watcher fires on the next change.
    Children(zk::OneshotWatcher),
    /// The base path does not exist; the watcher fires when it is created.
    Missing(zk::OneshotWatcher),
    /// The base path appeared or vanished between two reads; list again.
    Retry,
}

/// Lists the children with a watch and fetches data for the new ones.
async fn list_once(
    status: &SessionStatus,
    base: &str,
    known: &mut Known,
) -> Result<Listing, zk::Error> {
    let client = &status.client;
    let (children, _, watcher) = match client.get_and_watch_children(base).await {
        Ok(listing) => listing,
        Err(zk::Error::NoNode) => {
            return match client.check_and_watch_stat(base).await? {
                (None, watcher) => Ok(Listing::Missing(watcher)),
                (Some(_), _) => Ok(Listing::Retry),
            };
        }
        Err(e) => return Err(e),
    };
    known.retain(|name, _| children.contains(name));
    // Send every read before awaiting any: the client pipelines them on one connection.
    let reads: Vec<_> = children
        .iter()
        .filter(|name| !known.contains_key(*name))
        .map(|name| {
            let path = format!("{base}/{name}");
            (name.clone(), client.get_data(&path))
        })
        .collect();
    for (name, read) in reads {
        match read.await {
            Ok((data, _)) => {
                let url = match ProviderUrl::from_bytes(&data) {
                    Ok(url) => Some(url),
                    Err(e) => {
                        warn!(node = %format!("{base}/{name}"), error = %e, "skipping a provider node with bad data");
                        None
                    }
                };
                known.insert(name, url);
            }
            // Gone between the listing and the read: the next listing drops it.
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Listing::Children(watcher))
}

fn publish(tx: &watch::Sender<Providers>, known: &Known) {
    let mut providers: Vec<ProviderNode> = known
        .iter()
        .filter_map(|(name, url)| {
            url.as_ref().map(|url| ProviderNode {
                name: name.clone(),
                url: url.clone(),
            })
        })
        .collect();
    providers.sort_by(|a, b| a.name.cmp(&b.name));
    tx.send_if_modified(|current| {
        if **current == providers {
            false
        } else {
            *current = Arc::new(providers);
            true
        }
    });
}
