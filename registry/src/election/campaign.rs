//! The state machine behind a [`MasterElection`](super::MasterElection): read the node (and its
//! companion), decide (master, standby, hand over, take the vacancy, wait), publish the role,
//! wait for a watch or the session. The transactions it decides on are in `writes.rs`; holding
//! the node (watching it, renewing the lease) is in `hold.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::address::read_address;
use super::lease;
use super::participants::{self, participant_path};
use super::prepare;
use super::role::{Held, Role, Shared};
use crate::plumbing::RETRY_PAUSE;
use crate::session::{Session, SessionStatus};

/// What the campaign waits for before deciding again.
pub(super) enum Next {
    /// The node's watch (or a session change).
    Watch(zk::OneshotWatcher),
    /// Holding the node: its watch and the companion's (see `hold.rs`), renewing the lease.
    Master(zk::OneshotWatcher, zk::OneshotWatcher),
    /// The node's watch, but at most until `deadline`.
    WatchUntil(zk::OneshotWatcher, Instant),
    /// A vacancy whose last holder has not stepped down: the watches of its participant node,
    /// of the companion and of the node; any of them.
    StepDown([zk::OneshotWatcher; 3]),
    /// Nothing: decide again at once.
    Again,
    /// A pause after an error (or a session change).
    Pause,
    /// ZooKeeper refused this identity the takeover of this node: contending cannot succeed;
    /// stop.
    Refused(String),
}

/// What a master's step read besides the node: the companion (before the node), the watch on
/// the companion (after it), and our participant node.
type MasterReads = (
    std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
    std::result::Result<(Option<zk::Stat>, zk::OneshotWatcher), zk::Error>,
    Option<zk::Stat>,
);

/// How a step ended: decided, or interrupted by a session change or the end of the lease.
enum Stepped {
    Next(Next),
    /// The session's status changed (`false`: the session is gone).
    Status(bool),
    LeaseEnded,
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
    /// The last epoch this contender reported, in the current ZooKeeper history: a lower one
    /// means a new history (a wipe), warned about once.
    pub(super) highest: i64,
    /// The session in which our participant node exists.
    pub(super) participant_in: Option<i64>,
    /// The last holder we are waiting for to step down (logged once per holder).
    pub(super) waiting_for: Option<i64>,
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
            // A step waits for ZooKeeper's replies: a disconnect (the replies may only come
            // after a reconnect, or never) or the end of the lease must not wait for them.
            let master = self.shared.role.borrow().is_master();
            let left = self.shared.lease.left();
            let outcome = tokio::select! {
                biased;
                changed = statuses.changed() => Stepped::Status(changed.is_ok()),
                _ = tokio::time::sleep(left), if master => Stepped::LeaseEnded,
                next = self.step(&status) => Stepped::Next(next),
            };
            let next = match outcome {
                Stepped::Status(true) => continue,
                Stepped::Status(false) => return,
                Stepped::LeaseEnded => {
                    self.lease_ended();
                    continue;
                }
                Stepped::Next(next) => next,
            };
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
                        self.hold(&status.client, watcher, companion_watcher).await;
                    }
                    Next::WatchUntil(watcher, deadline) => {
                        tokio::select! {
                            _ = watcher.changed() => {}
                            _ = tokio::time::sleep_until(deadline) => {}
                        }
                    }
                    Next::StepDown([a, b, c]) => {
                        tokio::select! {
                            _ = a.changed() => {}
                            _ = b.changed() => {}
                            _ = c.changed() => {}
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
    pub(super) fn lost_node(&self) {
        self.shared.held().take();
        if self.shared.role.borrow().is_master() {
            warn!(path = %self.path, "the master node was deleted by someone else; running again");
            self.publish(Role::Electing);
        }
    }

    /// Notes the epoch we are master under: one lower than the last one means a new ZooKeeper
    /// history (warned once: later epochs compare with this history's).
    pub(super) fn note_epoch(&mut self, epoch: i64) {
        if epoch < self.highest {
            warn!(path = %self.path, epoch, before = self.highest, "the epoch went back: ZooKeeper started a new history (its data was wiped?); epochs stored elsewhere must be reset");
        }
        self.highest = epoch;
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
        if self.participant_in != Some(me) {
            match participants::join(client, &self.path, &self.address, self.session.node_acl())
                .await
            {
                Ok(()) => self.participant_in = Some(me),
                Err(zk::Error::NoAuth) => {
                    return Next::Refused(participants::participants_path(&self.path));
                }
                Err(e) => {
                    debug!(error = %e, path = %self.path, "cannot create the participant node");
                    return Next::Pause;
                }
            }
        }
        // Pipelined: all requests leave before we wait for any, and ZooKeeper answers a
        // session's requests in order. The companion is read before the node (what we hold is
        // then consistent, see `release`) and after it (a handover that deleted the node has
        // named its designee by then: both happen in one transaction). A reply to any of them
        // proves the session alive after `sent`: the lease counts from there.
        let sent = lease::now();
        let companion = client.get_data(&self.companion);
        let node = client.get_and_watch_data(&self.path);
        let companion_after = client.get_data(&self.companion);
        // Used while master only: a master watches its companion, to repair it if tampered with.
        let companion_watch = client.check_and_watch_stat(&self.companion);
        let own = client.check_stat(&participant_path(&self.path, me));
        let (companion, node, companion_after, companion_watch, own) = (
            companion.await,
            node.await,
            companion_after.await,
            companion_watch.await,
            own.await,
        );
        match node {
            Ok((data, stat, watcher)) => {
                let holder = read_address(&data).unwrap_or_else(|raw| raw);
                if stat.ephemeral_owner == me && holder == self.address {
                    self.designation = None;
                    let own = match own {
                        Ok(own) => own,
                        Err(e) => {
                            debug!(error = %e, "cannot read our participant node");
                            return Next::Pause;
                        }
                    };
                    self.master(
                        client,
                        &stat,
                        watcher,
                        (companion, companion_watch, own),
                        sent,
                    )
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
                    self.held_by_another(client, &stat, holder, watcher, companion)
                        .await
                }
            }
            Err(zk::Error::NoNode) => {
                self.lost_node();
                match companion_after {
                    Ok((data, stat)) => self.vacant(client, &data, stat).await,
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

    /// The node is held by another session: stand by for the address it names, or, named in it
    /// ourselves, wait for our holder to hand over, or take it over from a holder that is not
    /// one of ours (no participant node), which has no handover to wait for.
    async fn held_by_another(
        &mut self,
        client: &zk::Client,
        stat: &zk::Stat,
        holder: String,
        watcher: zk::OneshotWatcher,
        companion: std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
    ) -> Next {
        if stat.ephemeral_owner == 0 {
            warn!(path = %self.path, "the master node is not ephemeral; nobody can take over until it is deleted");
        }
        self.shared.held().take();
        if holder != self.address {
            self.publish(Role::Standby { master: holder });
            return Next::Watch(watcher);
        }
        // Designated: not master yet, and no other master to name (a standby of itself would
        // send its clients round in a circle).
        self.publish(Role::Electing);
        if stat.ephemeral_owner == 0 {
            return Next::Watch(watcher);
        }
        let owner = participant_path(&self.path, stat.ephemeral_owner);
        match client.check_stat(&owner).await {
            // One of ours: it hands over (see `hand_over`).
            Ok(Some(_)) => Next::Watch(watcher),
            Ok(None) => match companion {
                Ok((_, m)) => self.take_from(client, stat, m.version).await,
                Err(e) => {
                    debug!(error = %e, "cannot read the companion");
                    Next::Pause
                }
            },
            Err(e) => {
                debug!(error = %e, path = %owner, "cannot read the holder's participant node");
                Next::Pause
            }
        }
    }

    /// Our node holds our address: master, with the epoch `<path>.epoch` holds, or repair it.
    ///
    /// `reads` are the companion as read before the node (what [`Held`] needs), the watch on it
    /// registered after, and our participant node; `sent` when the reads left.
    async fn master(
        &mut self,
        client: &zk::Client,
        node: &zk::Stat,
        watcher: zk::OneshotWatcher,
        reads: MasterReads,
        sent: u64,
    ) -> Next {
        let (companion, companion_watch, own) = reads;
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
        let Some(own) = own else {
            // Our participant node was deleted (by hand): create it again, then mark it ours
            // (a repair of the companion) so a vacancy waits for us.
            self.participant_in = None;
            return Next::Again;
        };
        // The epoch this node's companion must hold: what our takeover or last repair wrote.
        let expected = match self.epoch {
            Some((czxid, epoch)) if czxid == node.czxid => epoch,
            // Not known (a takeover whose reply was lost): the takeover wrote both at once.
            _ => node.czxid,
        };
        match before {
            Some(m) if m.mzxid == expected && own.mzxid == expected => {
                self.epoch = Some((node.czxid, expected));
                self.note_epoch(expected);
                *self.shared.held() = Some(Held {
                    node_version: node.version,
                    companion_version: m.version,
                });
                self.shared
                    .lease
                    .extend(sent, lease::lease_for(client.session_timeout()));
                if !self.shared.lease.holds() {
                    // The reply came after the lease it would give had ended: ask again.
                    debug!(path = %self.path, "ZooKeeper answered after a whole lease; reading again");
                    return Next::Again;
                }
                self.publish(Role::Master { epoch: expected });
                Next::Master(watcher, companion_watcher)
            }
            _ => self.repair(client, node, before, expected).await,
        }
    }

    /// Nobody holds the node: take it, unless someone else was designated and still has time,
    /// or the last holder (the participant node carrying the companion's `mzxid`) is another
    /// contender that has not stepped down yet.
    async fn vacant(
        &mut self,
        client: &zk::Client,
        companion: &[u8],
        companion_stat: zk::Stat,
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
        } else if designee.is_empty() {
            let everyone = match participants::list(client, &self.path).await {
                Ok(everyone) => everyone,
                Err(e) => {
                    debug!(error = %e, "cannot list the participants");
                    return Next::Pause;
                }
            };
            let me = client.session_id().0;
            if let Some(last) = everyone
                .iter()
                .find(|p| p.mzxid == companion_stat.mzxid && p.session != me)
            {
                return self
                    .wait_step_down(client, last.session, companion_stat)
                    .await;
            }
        }
        self.waiting_for = None;
        self.take(client, companion_stat.version).await
    }

    /// The node is vacant but its last holder, `holder` (a session), has not stepped down: it
    /// may still believe it is master (paused, or not told yet). Wait for its step-down (a write
    /// of the companion) or for its session to end (its participant node goes with it).
    async fn wait_step_down(
        &mut self,
        client: &zk::Client,
        holder: i64,
        companion_stat: zk::Stat,
    ) -> Next {
        if self.waiting_for != Some(holder) {
            self.waiting_for = Some(holder);
            info!(path = %self.path, holder = format!("0x{holder:x}"), "the master node is vacant but its last holder has not stepped down; waiting for it, or for its session to end");
        }
        let participant = client.check_and_watch_stat(&participant_path(&self.path, holder));
        let companion = client.check_and_watch_stat(&self.companion);
        let node = client.check_and_watch_stat(&self.path);
        match (participant.await, companion.await, node.await) {
            (Ok((Some(p), a)), Ok((Some(c), b)), Ok((None, c_watch)))
                if p.mzxid == companion_stat.mzxid && c.mzxid == companion_stat.mzxid =>
            {
                Next::StepDown([a, b, c_watch])
            }
            (Ok(_), Ok(_), Ok(_)) => Next::Again,
            _ => Next::Pause,
        }
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
