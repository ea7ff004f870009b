//! The state machine behind a [`MasterElection`](super::MasterElection): read the node (and its
//! companion), decide (master, standby, hand over, take the vacancy, wait), publish the role,
//! wait for a watch or the session. The transactions it decides on are in `writes.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::address::read_address;
use super::prepare;
use super::role::{Held, Role, Shared};
use crate::plumbing::{RETRY_PAUSE, parent};
use crate::session::{Session, SessionStatus};

/// How long contenders other than the last holder leave a vacancy nobody announced (the node
/// deleted by someone else, or its holder's session expired) to its last holder: a holder whose
/// node was deleted under it hears of it at about the time the others do, and must have stepped
/// down before anyone else can be master. A resign or a handover announces itself by writing
/// `<path>.epoch` in the transaction that deletes the node, and is taken over at once.
const VACANCY_SETTLE: Duration = Duration::from_millis(50);

/// What the campaign waits for before deciding again.
pub(super) enum Next {
    /// The node's watch (or a session change).
    Watch(zk::OneshotWatcher),
    /// The watch on our own node while master: if it reports the node deleted, step down at
    /// once, before reading anything (another contender may be taking the node already).
    /// The companion's watch too: a deleted or rewritten companion is repaired.
    Master(zk::OneshotWatcher, zk::OneshotWatcher),
    /// The node's watch, but at most until `deadline`.
    WatchUntil(zk::OneshotWatcher, Instant),
    /// Nothing: decide again at once.
    Again,
    /// A pause after an error (or a session change).
    Pause,
    /// ZooKeeper refused this identity the takeover of this node: contending cannot succeed;
    /// stop.
    Refused(String),
}

/// The task behind a [`MasterElection`].
pub(super) struct Campaign {
    pub(super) session: Session,
    pub(super) path: String,
    /// `<path>.epoch`, the companion.
    pub(super) companion: String,
    pub(super) address: String,
    pub(super) grace: Duration,
    pub(super) shared: Arc<Shared>,
    /// A pending designation of someone else: the companion's version and when we first saw it.
    pub(super) designation: Option<(i32, Instant)>,
    /// The epoch of our current node: its `czxid` and the companion's `mzxid` our takeover or
    /// our last repair of the companion wrote.
    pub(super) epoch: Option<(i64, i64)>,
    /// The session in which we last held the node: only a holder whose node was deleted in that
    /// same session runs again at once after an unannounced vacancy (after a session expiry
    /// the standbys that heard of it first go first, as they always did).
    pub(super) held_in: Option<i64>,
    /// The highest epoch this contender reported: a lower one means a new ZooKeeper history.
    pub(super) highest: i64,
    /// An unannounced vacancy (the parent's `pzxid`, the zxid that deleted the node), the
    /// session we saw it in and when we first saw it in that session (a contender back in a new
    /// session starts its wait again, behind those that heard of the vacancy first).
    pub(super) vacancy: Option<(i64, i64, Instant)>,
}

impl Campaign {
    pub(super) async fn run(mut self) {
        let mut statuses = self.session.subscribe();
        loop {
            let status = statuses.borrow_and_update().clone();
            if !status.is_connected() {
                // Step down at once: ZooKeeper may expire us and let another take over while
                // we cannot hear about it.
                self.shared.held().take();
                if self.shared.publish(Role::Disconnected) {
                    warn!(path = %self.path, "connection to ZooKeeper lost; not master until it is back");
                }
                if statuses.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let next = self.step(&status).await;
            if let Next::Refused(node) = next {
                warn!(path = %self.path, %node, "ZooKeeper refused this identity the takeover (NoAuth); not contending any more");
                *self
                    .shared
                    .refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(node);
                self.publish(Role::Left);
                return;
            }
            let wake = async {
                match next {
                    Next::Watch(watcher) => {
                        watcher.changed().await;
                    }
                    Next::Master(watcher, companion_watcher) => {
                        tokio::select! {
                            event = watcher.changed() => {
                                if event.event_type == zk::EventType::NodeDeleted {
                                    self.lost_node();
                                }
                            }
                            _ = companion_watcher.changed() => {}
                        }
                    }
                    Next::WatchUntil(watcher, deadline) => {
                        tokio::select! {
                            _ = watcher.changed() => {}
                            _ = tokio::time::sleep_until(deadline) => {}
                        }
                    }
                    Next::Again => {}
                    Next::Pause => tokio::time::sleep(RETRY_PAUSE).await,
                    Next::Refused(_) => {}
                }
            };
            tokio::select! {
                biased;
                changed = statuses.changed() => if changed.is_err() { return },
                _ = wake => {}
            }
        }
    }

    /// Our node is gone: not master any more, reported before anything else happens.
    fn lost_node(&self) {
        self.shared.held().take();
        if self.shared.master.load(Ordering::SeqCst) {
            warn!(path = %self.path, "the master node was deleted by someone else; running again");
            self.publish(Role::Electing);
        }
    }

    pub(super) fn publish(&self, role: Role) {
        if self.shared.publish(role.clone()) {
            info!(path = %self.path, address = %self.address, %role, "election role");
        }
    }

    /// Reads the node and acts on what it says.
    async fn step(&mut self, status: &SessionStatus) -> Next {
        let client = &status.client;
        let me = client.session_id().0;
        // Pipelined: all four requests leave before we wait for any, and ZooKeeper answers a
        // session's requests in order. The companion is read before the node (what we hold is
        // then consistent, see `release`) and after it (a handover that deleted the node has
        // named its designee by then: both happen in one transaction). The parent, read after
        // the node, tells whether a vacancy was announced (see `Campaign::vacant`).
        let companion = client.get_data(&self.companion);
        let node = client.get_and_watch_data(&self.path);
        let siblings = client.check_stat(parent(&self.path).unwrap_or("/"));
        let companion_after = client.get_data(&self.companion);
        // Used while master only: a master watches its companion, to repair it if tampered with.
        let companion_watch = client.check_and_watch_stat(&self.companion);
        let (companion, node, siblings, companion_after, companion_watch) = (
            companion.await,
            node.await,
            siblings.await,
            companion_after.await,
            companion_watch.await,
        );
        match node {
            Ok((data, stat, watcher)) => {
                let holder = read_address(&data).unwrap_or_else(|raw| raw);
                if stat.ephemeral_owner == me && holder == self.address {
                    self.designation = None;
                    self.master(client, &stat, watcher, companion, companion_watch)
                        .await
                } else if stat.ephemeral_owner == me {
                    // Designated away: stop being master first, then hand over.
                    self.shared.held().take();
                    self.publish(Role::Standby {
                        master: holder.clone(),
                    });
                    self.hand_over(client, stat.version, &holder, companion.ok().map(|m| m.1))
                        .await
                } else {
                    if stat.ephemeral_owner == 0 {
                        warn!(path = %self.path, "the master node is not ephemeral; nobody can take over until it is deleted");
                    }
                    self.shared.held().take();
                    if holder == self.address {
                        // Designated: the holder is handing the node over to us. Not master
                        // yet, and no other master to name (a standby of itself would send
                        // its clients round in a circle).
                        self.publish(Role::Electing);
                    } else {
                        self.publish(Role::Standby { master: holder });
                    }
                    Next::Watch(watcher)
                }
            }
            Err(zk::Error::NoNode) => {
                self.lost_node();
                match companion_after {
                    Ok((data, stat)) => {
                        // Announced: the last change among the parent's children, made before the
                        // node was found missing, is the one that wrote the companion as read
                        // before the node. Only a resign or a handover deletes the node and
                        // writes the companion at once (a takeover creates the node, so it
                        // would be there). Anything else, or a failed read, is unannounced.
                        let announced = matches!(
                            (&companion, &siblings),
                            (Ok((_, m)), Ok(Some(p))) if m.mzxid == p.pzxid
                        );
                        let deleted = siblings.ok().flatten().map_or(0, |p| p.pzxid);
                        self.vacant(client, &data, stat, (!announced).then_some(deleted))
                            .await
                    }
                    Err(zk::Error::NoNode) => {
                        match prepare(client, &self.path, self.session.node_acl()).await {
                            Ok(()) => Next::Again,
                            Err(e) => {
                                warn!(error = %e, "cannot prepare the election nodes");
                                Next::Pause
                            }
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "cannot read the epoch node");
                        Next::Pause
                    }
                }
            }
            Err(e) => {
                debug!(error = %e, path = %self.path, "cannot read the master node");
                Next::Pause
            }
        }
    }

    /// Our node holds our address: master, with the epoch `<path>.epoch` holds, or repair it.
    ///
    /// `companion` is the companion as read before the node (what [`Held`] needs), `companion_watch`
    /// the watch on it registered after.
    async fn master(
        &mut self,
        client: &zk::Client,
        node: &zk::Stat,
        watcher: zk::OneshotWatcher,
        companion: std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
        companion_watch: std::result::Result<(Option<zk::Stat>, zk::OneshotWatcher), zk::Error>,
    ) -> Next {
        let (now, companion_watcher) = match companion_watch {
            Ok(watched) => watched,
            Err(e) => {
                debug!(error = %e, path = %self.companion, "cannot watch the companion");
                return Next::Pause;
            }
        };
        let before = match companion {
            Ok((_, m)) => Some(m),
            Err(zk::Error::NoNode) => None,
            Err(e) => {
                debug!(error = %e, path = %self.companion, "cannot read the companion");
                return Next::Pause;
            }
        };
        if before.map(|m| (m.mzxid, m.version)) != now.map(|m| (m.mzxid, m.version)) {
            // It changed between the two reads: look again.
            return Next::Again;
        }
        // The epoch this node's companion must hold: what our takeover or last repair wrote.
        let expected = match self.epoch {
            Some((czxid, epoch)) if czxid == node.czxid => epoch,
            // Not known (a takeover whose reply was lost): the takeover wrote both at once.
            _ => node.czxid,
        };
        match before {
            Some(m) if m.mzxid == expected => {
                self.epoch = Some((node.czxid, expected));
                if expected < self.highest {
                    warn!(path = %self.path, epoch = expected, before = self.highest, "the epoch went back: ZooKeeper started a new history (its data was wiped?); epochs stored elsewhere must be reset");
                }
                self.highest = self.highest.max(expected);
                self.held_in = Some(client.session_id().0);
                *self.shared.held() = Some(Held {
                    node_version: node.version,
                    companion_version: m.version,
                });
                self.publish(Role::Master { epoch: expected });
                Next::Master(watcher, companion_watcher)
            }
            _ => self.repair(client, node, before, expected).await,
        }
    }

    /// Nobody holds the node: take it, unless someone else was designated and still has time,
    /// or the vacancy is `unannounced` (`Some(the parent's pzxid)`) and its last holder was
    /// someone else, who gets [`VACANCY_SETTLE`] to hear of it first.
    async fn vacant(
        &mut self,
        client: &zk::Client,
        companion: &[u8],
        companion_stat: zk::Stat,
        unannounced: Option<i64>,
    ) -> Next {
        let designee = read_address(companion).unwrap_or_else(|raw| raw);
        if !designee.is_empty() && designee != self.address {
            let since = match self.designation {
                Some((version, since)) if version == companion_stat.version => since,
                _ => {
                    let now = Instant::now();
                    self.designation = Some((companion_stat.version, now));
                    now
                }
            };
            let deadline = since + self.grace;
            if Instant::now() < deadline {
                self.publish(Role::Standby {
                    master: designee.clone(),
                });
                return self.wait_vacant_until(client, deadline).await;
            }
            info!(path = %self.path, %designee, "the designee did not take over in time; running again");
        } else if designee.is_empty()
            && !(*self.shared.role.borrow() == Role::Electing
                && self.held_in == Some(client.session_id().0))
            && let Some(deleted) = unannounced
        {
            // Nobody announced this vacancy and its last holder was someone else: leave it to
            // that holder for a moment (it may be alive and hearing of it only now).
            let session = client.session_id().0;
            let since = match self.vacancy {
                Some((zxid, seen_in, since)) if zxid == deleted && seen_in == session => since,
                _ => {
                    let now = Instant::now();
                    self.vacancy = Some((deleted, session, now));
                    now
                }
            };
            let deadline = since + VACANCY_SETTLE;
            if Instant::now() < deadline {
                return self.wait_vacant_until(client, deadline).await;
            }
        }
        self.take(client).await
    }

    /// While the node stays vacant, waits for its creation until `deadline`.
    async fn wait_vacant_until(&self, client: &zk::Client, deadline: Instant) -> Next {
        match client.check_and_watch_stat(&self.path).await {
            Ok((None, watcher)) => Next::WatchUntil(watcher, deadline),
            Ok((Some(_), _)) => Next::Again,
            Err(e) => {
                debug!(error = %e, "cannot watch the master node");
                Next::Pause
            }
        }
    }
}
