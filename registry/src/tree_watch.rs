//! `TreeWatch`: hears of every change anywhere under a root (a node created, deleted or set),
//! for views that show a whole subtree (the console) and re-read it when it changes, instead of
//! one watch per node or a poll.
//!
//! Guarantees:
//! - One persistent recursive watch on the root, however many readers subscribe.
//! - The published count grows by at least one after every change under the root, and after a
//!   reconnect or a new session (events during a disconnect can be lost, so a reader must read
//!   again then); it never shrinks. Bursts may be folded into one step: a reader re-reads
//!   whatever it shows when the count moves, never counts events.
//! - While ZooKeeper is unreachable the count stays; the watch is added again once the link is
//!   back (zookeeper-client 0.11 does not restore persistent watches). The loop is
//!   `crate::watched`'s, shared with [`crate::Discovery`] and [`crate::MasterWatch`].

use tokio::sync::watch;
use zookeeper_client as zk;

use crate::error::Result;
use crate::plumbing::path::validate_path;
use crate::session::{Session, SessionStatus};
use crate::watched::{Follow, Watched};

/// Watches everything under a root. Dropping it stops the watch.
#[derive(Debug)]
pub struct TreeWatch {
    changes: Watched<u64>,
}

impl TreeWatch {
    /// Starts watching under `root` (`/` for the whole tree); returns once the watch is in
    /// place (an error if ZooKeeper is out of reach for the session's connect timeout).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_registry::Error> {
    /// use zoorpc_registry::{Session, TreeWatch, inspect};
    /// let session = Session::connect_to("127.0.0.1:2181").await?;
    /// let tree = TreeWatch::start(&session, "/").await?;
    /// let mut changes = tree.subscribe();
    /// loop {
    ///     let listing = inspect::services(&session, "/").await?;
    ///     println!("{} services", listing.services.len());
    ///     if changes.changed().await.is_err() {
    ///         return Ok(());
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn start(session: &Session, root: &str) -> Result<TreeWatch> {
        let root = if root == "/" {
            root.to_owned()
        } else {
            validate_path(root)?.to_owned()
        };
        let tree = Tree {
            root,
            watcher: None,
            count: 0,
        };
        let changes = Watched::start(session, tree, 0).await?;
        Ok(TreeWatch { changes })
    }

    /// A receiver of the change count; `changed()` fires after every change under the root.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// The root and its watch, as followed by [`Watched`].
struct Tree {
    root: String,
    /// The persistent recursive watch; `None` when it must be added (at the start, after a
    /// reconnect or a new session, after the session's end was delivered through it).
    watcher: Option<zk::PersistentWatcher>,
    /// Changes seen (plus one per time the watch was added).
    count: u64,
}

impl Follow for Tree {
    type Value = u64;

    fn path(&self) -> &str {
        &self.root
    }

    fn session_changed(&mut self, _new_session: bool) {
        // A reconnect may have lost events, a new session every watch: add it again.
        self.watcher = None;
    }

    async fn read(
        &mut self,
        status: &SessionStatus,
    ) -> std::result::Result<Option<u64>, zk::Error> {
        if self.watcher.is_none() {
            let watcher = status
                .client
                .watch(&self.root, zk::AddWatchMode::PersistentRecursive)
                .await?;
            self.watcher = Some(watcher);
            self.count += 1;
        }
        Ok(Some(self.count))
    }

    async fn changed(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let event = watcher.changed().await;
        if event.event_type == zk::EventType::Session {
            // Disconnected, reconnected or ended: add the watch again and let readers re-read
            // (waiting on a watch that delivered the session's end would panic).
            self.watcher = None;
        }
        self.count += 1;
    }
}
