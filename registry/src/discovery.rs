//! `Discovery`: the live set of providers under a base path, delivered as a whole snapshot on
//! every change.
//!
//! Guarantees:
//! - `watch` returns after the first listing, so the first snapshot is real (empty when the base
//!   path does not exist yet; it is then watched and picked up when it appears).
//! - The snapshot equals ZooKeeper's children after any change, including an operator's `set` on
//!   an existing node and a node name that comes back after `deleteall` (or a wiped ZooKeeper)
//!   holding another URL: a node is identified by its name *and* its creation (`czxid`).
//! - Incremental, whatever the number of children: one persistent recursive watch on the base
//!   path (ZooKeeper 3.6+, as Curator's `CuratorCache`) delivers each child's creation, deletion
//!   and data change by name. A creation or a change costs one read of that child's data, a
//!   deletion none; the children are listed only at the start and after the link came back.
//! - A provider is any child whose data is a provider URL, whatever its name (zoorpc's own are
//!   `provider<seq>`; a node another registrar or an operator wrote counts too, as Curator's
//!   service discovery names its instances by id).
//! - A child whose data is not a provider URL (not UTF-8, too large, not a URL) is skipped with
//!   one warning; it never ends the watch, and it is picked up if its data is corrected. A child
//!   with children and no data is a folder (`is_folder`), not a provider: skipped without a
//!   warning (`zoorpc ls` lists it as a base path of its own).
//! - In the Curator layout ([`Discovery::watch_curator`], [`NodeFormat::Curator`]) the same,
//!   with each child's data read as Curator's `ServiceInstance` JSON and called at the URL
//!   [`crate::curator`] gives it; an instance not to be called (disabled, not `UP`) is skipped
//!   as bad data is, with a warning saying why.
//! - While ZooKeeper is unreachable the last snapshot stays. After a reconnect (the watch's own
//!   session events say so, even when the link came back too fast for the session's state to
//!   show it) or a new session, the watch is added again (zookeeper-client 0.11 does not restore
//!   persistent watches on a reconnect) and then every child is listed and read again (events
//!   during a disconnect can be lost, ZOOKEEPER-4698). The loop around it is `crate::watched`'s,
//!   shared with [`crate::MasterWatch`].
//! - Snapshots are sorted by node name and published only when they differ.
//! - A snapshot costs pointer copies, whatever the fleet size: each node is built once, when its
//!   data is read, and every snapshot shares its name and URL (`Arc`s).

use std::collections::{BTreeMap, BTreeSet};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::sync::watch;
use tracing::{debug, warn};
use zookeeper_client as zk;

use crate::curator::{CuratorInstance, CuratorService};
use crate::error::Result;
use crate::plumbing::path::validate_path;
use crate::provider_url::ProviderUrl;
use crate::session::{Session, SessionStatus};
use crate::watched::{Follow, Watched};

/// Whether a node is a folder (children and no data), not a provider: what discovery passes
/// over without a warning and `zoorpc ls` walks into, the one rule both apply.
pub(crate) fn is_folder(data: &[u8], stat: &zk::Stat) -> bool {
    data.is_empty() && stat.num_children > 0
}

/// One live provider: its znode name (e.g. `provider0000000042`), its URL and the transaction that
/// created the node. Cloning it copies two pointers (name and URL are shared).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderNode {
    /// Child name under the base path (shared by every snapshot that holds the node; build it
    /// with `name.into()` from a `&str` or a `String`).
    pub name: Arc<str>,
    /// The URL from the node's data.
    pub url: ProviderUrl,
    /// The node's `czxid`. With the name it identifies the node: after `deleteall` of the base
    /// path ZooKeeper's sequence starts again and an old name can come back for another provider.
    pub created: i64,
}

/// How discovery reads a child's data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeFormat {
    /// zoorpc's own: the provider's URL ([`ProviderUrl`]).
    #[default]
    Url,
    /// The Curator layout's: Curator's `ServiceInstance` JSON, called at the URL
    /// [`CuratorInstance::url`] gives.
    Curator,
}

impl NodeFormat {
    /// The URL to call the provider whose node holds `data` at, or why there is none.
    pub fn url_of(self, data: &[u8]) -> Result<ProviderUrl> {
        match self {
            NodeFormat::Url => ProviderUrl::from_bytes(data),
            NodeFormat::Curator => CuratorInstance::url_of(data),
        }
    }
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
        Discovery::watch_format(session, base_path, NodeFormat::Url).await
    }

    /// Starts watching the instances of `service` in the Curator layout (the children of
    /// `<base>/<name>`, each holding Curator's JSON), with the same single watch and the same
    /// guarantees as [`Discovery::watch`]; an instance that is not to be called (not Curator's
    /// JSON, disabled, out of service) is skipped with a warning saying why.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_registry::Error> {
    /// use zoorpc_registry::{CuratorService, Discovery, Session};
    /// let session = Session::connect_to("127.0.0.1:2181").await?;
    /// let discovery = Discovery::watch_curator(&session, &CuratorService::new("greeter")).await?;
    /// for provider in discovery.providers().iter() {
    ///     println!("{} {}", provider.name, provider.url);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn watch_curator(session: &Session, service: &CuratorService) -> Result<Discovery> {
        Discovery::watch_format(session, &service.path()?, NodeFormat::Curator).await
    }

    /// Starts watching `base_path`, reading each child's data as `format` says.
    pub async fn watch_format(
        session: &Session,
        base_path: &str,
        format: NodeFormat,
    ) -> Result<Discovery> {
        let base = validate_path(base_path)?.to_owned();
        let children = Children::new(base, format);
        let providers = Watched::start(session, children, Arc::new(Vec::new())).await?;
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

/// The children of a base path and their data, as followed by [`Watched`].
struct Children {
    base: String,
    /// How a child's data is read.
    format: NodeFormat,
    /// `base` followed by `/` (just `/` for the root): what a child's path starts with.
    prefix: String,
    /// The known children by name (so a snapshot comes out sorted), each with its node as
    /// every snapshot shares it (`None` while its data is not a provider URL).
    known: BTreeMap<Arc<str>, Option<ProviderNode>>,
    /// Children whose data must be read (new, changed, or after a relisting).
    stale: BTreeSet<String>,
    /// The persistent recursive watch on the base path; `None` when it must be added (at the
    /// start, after a new session, after the session's end was delivered through it).
    watcher: Option<zk::PersistentWatcher>,
    /// Whether the watch must be added again and the children listed and read (the start, a
    /// reconnect, a new session).
    relist: bool,
}

impl Children {
    fn new(base: String, format: NodeFormat) -> Children {
        let prefix = if base == "/" {
            base.clone()
        } else {
            format!("{base}/")
        };
        Children {
            base,
            format,
            prefix,
            known: BTreeMap::new(),
            stale: BTreeSet::new(),
            watcher: None,
            relist: true,
        }
    }

    /// Adds the watch and lists the children if needed, then reads every stale child.
    async fn refresh(&mut self, client: &zk::Client) -> std::result::Result<Providers, zk::Error> {
        if self.relist || self.watcher.is_none() {
            // The watch first, then the listing: every change after the listing is an event.
            // The old watcher goes only once the new one is registered: dropped earlier, the
            // client would remove the server's watch on the path, the new one's included.
            let watcher = client
                .watch(&self.base, zk::AddWatchMode::PersistentRecursive)
                .await?;
            self.watcher = Some(watcher);
            let children = match client.list_children(&self.base).await {
                Ok(children) => children,
                Err(zk::Error::NoNode) => {
                    debug!(base = %self.base, "base path does not exist yet; waiting for it");
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            // Events during a disconnect can be lost: read every child again.
            self.stale = children.into_iter().collect();
            self.known.retain(|name, _| self.stale.contains(&**name));
            self.relist = false;
        }
        self.read_stale(client).await?;
        Ok(self.snapshot())
    }

    /// Reads the data of every stale child.
    async fn read_stale(&mut self, client: &zk::Client) -> std::result::Result<(), zk::Error> {
        // Send every read before awaiting any: the client pipelines them on one connection.
        let reads: Vec<_> = self
            .stale
            .iter()
            .map(|name| {
                let path = format!("{}{name}", self.prefix);
                (name.clone(), client.get_data(&path))
            })
            .collect();
        for (name, read) in reads {
            match read.await {
                Ok((data, stat)) => {
                    let name: Arc<str> = name.as_str().into();
                    let node = match self.format.url_of(&data) {
                        Ok(url) => Some(ProviderNode {
                            name: name.clone(),
                            url,
                            created: stat.czxid,
                        }),
                        Err(_) if is_folder(&data, &stat) => {
                            debug!(node = %format!("{}{name}", self.prefix), "a folder, not a provider");
                            None
                        }
                        Err(e) => {
                            warn!(node = %format!("{}{name}", self.prefix), error = %e, "skipping a provider node with bad data (or one not to be called)");
                            None
                        }
                    };
                    self.known.insert(name, node);
                }
                // Gone since the event or the listing; its deletion is an event too.
                Err(zk::Error::NoNode) => {
                    self.known.remove(name.as_str());
                }
                Err(e) => return Err(e),
            }
            self.stale.remove(&name);
        }
        Ok(())
    }

    /// The known providers with a good URL, sorted by node name: pointer copies of the nodes.
    fn snapshot(&self) -> Providers {
        Arc::new(self.known.values().flatten().cloned().collect())
    }

    /// Takes in one event of the watch; `true` if the snapshot may have changed or the
    /// children must be read again.
    fn note(&mut self, event: zk::WatchedEvent) -> bool {
        if event.event_type == zk::EventType::Session {
            // Disconnected, reconnected or ended: whatever happened meanwhile may be lost.
            debug!(state = ?event.session_state, base = %self.base, "session event on the watch");
            self.relist = true;
            if event.session_state.is_terminated() {
                // Nothing more comes through it (and waiting on it again would panic).
                self.watcher = None;
            }
            return true;
        }
        if event.path == self.base {
            if event.event_type == zk::EventType::NodeDeleted {
                // Each child's deletion came first; forget anything left.
                self.known.clear();
                self.stale.clear();
                return true;
            }
            return false;
        }
        let Some(name) = event.path.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        if name.is_empty() || name.contains('/') {
            // Not a child (a grandchild, say): not a provider.
            return false;
        }
        debug!(?event.event_type, node = %name, "provider node changed");
        match event.event_type {
            zk::EventType::NodeDeleted => {
                self.stale.remove(name);
                self.known.remove(name).is_some()
            }
            zk::EventType::NodeCreated | zk::EventType::NodeDataChanged => {
                self.stale.insert(name.to_owned());
                true
            }
            _ => false,
        }
    }
}

impl Follow for Children {
    type Value = Providers;

    fn path(&self) -> &str {
        &self.base
    }

    fn session_changed(&mut self, new_session: bool) {
        self.relist = true;
        if new_session {
            // The old session's watch is gone with it.
            self.watcher = None;
        }
    }

    async fn read(
        &mut self,
        status: &SessionStatus,
    ) -> std::result::Result<Option<Providers>, zk::Error> {
        self.refresh(&status.client).await.map(Some)
    }

    /// Waits for a change of a child (created, deleted, data set) or a session event on the
    /// watch, then takes in every event already delivered with it, so a burst is read once.
    async fn changed(&mut self) {
        loop {
            if self.relist {
                return;
            }
            let Some(watcher) = self.watcher.as_mut() else {
                return;
            };
            let event = watcher.changed().await;
            if self.note(event) {
                break;
            }
        }
        while !self.relist {
            let Some(watcher) = self.watcher.as_mut() else {
                return;
            };
            // What is already delivered, without waiting for more.
            let polled = {
                let mut next = pin!(watcher.changed());
                next.as_mut().poll(&mut Context::from_waker(Waker::noop()))
            };
            let Poll::Ready(event) = polled else {
                return;
            };
            self.note(event);
        }
    }
}
