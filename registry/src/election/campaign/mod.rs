//! The state machine behind a [`MasterElection`](super::MasterElection): read the node (and its
//! companion), decide (master, standby, hand over, take the vacancy, wait), publish the role,
//! wait for a watch or the session (`wait.rs`). What a step reads is in `reads.rs`; the
//! transactions it decides on are in `writes/`; holding the node (watching it, renewing the
//! lease) is in `hold.rs`; a standby's takeover of its holder's announced vacancy in one round
//! trip is in `poised.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::address::read_address;
use super::announced::announced;
use super::participants;
use super::prepare;
use super::reads::Around;
use super::role::{Role, Shared};
use crate::session::{Session, SessionStatus};

mod wait;

use wait::deleted;

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
    /// Standing by a master whose participant node is missing (deleted by hand; its holder
    /// creates it again at once if it runs): the node's watch and the participant node's.
    Either(zk::OneshotWatcher, zk::OneshotWatcher),
    /// Standing by a master whose process may be proven gone (the fast takeover): the node's
    /// watch, or the proof (see `refusal.rs`).
    Probe(zk::OneshotWatcher, super::refusal::Suspect),
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
pub(super) type MasterReads = (
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
    /// The watch on our participant node armed by the last step's read: an operator deleting
    /// the node wakes the campaign, which creates it again at once (a standby that is not a
    /// participant cannot be designated; a master that is not cannot be taken over fast).
    pub(super) own_watch: Option<zk::OneshotWatcher>,
    /// The last holder we are waiting for to step down (logged once per holder).
    pub(super) waiting_for: Option<i64>,
    /// The fast takeover's settings (off: stand by until the session ends).
    pub(super) fast: super::FastTakeover,
    /// A master proven gone by refused connections: its node's `czxid` and version.
    pub(super) proven: Option<(i64, i32)>,
    /// A vacancy whose last taker's end is not proven (see `vacancy.rs`): the companion's
    /// `mzxid` and when its lease has surely ended.
    pub(super) unproven: Option<(i64, Instant)>,
    /// The session in which our taker's mark exists (see [`participants::takers_path`]): a
    /// takeover creates it only where it is not.
    pub(super) marked_in: Option<i64>,
    /// The holder (another session) this contender last saw holding the node: whose end a
    /// vacancy nobody announced must prove (see `proof.rs`).
    pub(super) stood_by: Option<super::proof::Stood>,
    /// Standing by a holder of ours: what its announced vacancy is taken with, in one round
    /// trip, when the node's watch reports it deleted (see `poised.rs`).
    pub(super) poised: Option<super::poised::Poised>,
    /// Waits on watches this contender no longer needs, kept until the next step's read armed
    /// new ones on the same paths (or, once it resigned, until its task is aborted after the
    /// release's reply, which has fired them): the client sends ZooKeeper a `RemoveWatches`
    /// when the last watch on a path is dropped, and it would queue beside the successor's
    /// takeover or this contender's own.
    /// (A mutex only so that the campaign stays `Sync`: it is used from its task alone.)
    pub(super) kept: std::sync::Mutex<Vec<Kept>>,
}

/// A wait on a watch, kept (see [`Campaign::kept`]).
pub(super) type Kept = std::pin::Pin<Box<dyn Future<Output = zk::WatchedEvent> + Send>>;

impl Campaign {
    pub(super) async fn run(mut self) {
        let mut statuses = self.session.subscribe();
        // The wait on our participant node's watch, kept until a step armed the next one: the
        // client sends ZooKeeper a request when the last watch on a path is dropped, which would
        // queue ahead of the step's own (a poised standby's takeover among them).
        let mut own: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = None;
        loop {
            if self.stopped() {
                // Parked, not ended, until the handle aborts this task after the release's
                // reply: the watches it holds have fired by then, and dropping them sends
                // nothing (see `Campaign::kept`).
                return std::future::pending().await;
            }
            let status = statuses.borrow_and_update().clone();
            if !status.is_connected() {
                self.disconnected();
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
                Stepped::Next(Next::Refused(node)) => return self.refused(node),
                Stepped::Next(next) => next,
            };
            if let Some(armed) = self.own_watch.take() {
                own = Some(Box::pin(deleted(armed)));
            }
            let mut vacated = false;
            tokio::select! {
                biased;
                changed = statuses.changed() => if changed.is_err() { return },
                () = async {
                    match own.as_mut() {
                        Some(own) => own.await,
                        None => std::future::pending().await,
                    }
                } => own = None,
                deleted = self.wait(next, &status.client) => vacated = deleted,
            }
            if !vacated {
                self.poised = None;
            }
        }
    }

    /// Whether this contender resigned (or was dropped) while this task still runs (it is
    /// aborted right after the release leaves): nothing more may be written then. Checked
    /// after reading and before each write, so a read that saw the release's effects (a
    /// vacancy) never leads to a write: the role was `Left` before the release was sent.
    pub(super) fn stopped(&self) -> bool {
        *self.shared.role.borrow() == Role::Left
    }

    /// Step down at once: ZooKeeper may expire us and let another take over while we cannot
    /// hear about it.
    fn disconnected(&self) {
        self.shared.held().take();
        if self.shared.publish(Role::Disconnected) {
            warn!(path = %self.path, "connection to ZooKeeper lost; not master until it is back");
        }
    }

    /// ZooKeeper refused this identity the takeover: stop contending, and say why.
    fn refused(&self, node: String) {
        warn!(path = %self.path, %node, "ZooKeeper refused this identity the takeover (NoAuth); not contending any more");
        *self
            .shared
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(node);
        self.publish(Role::Left);
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

    /// Keeps `wait` (see [`Campaign::kept`]).
    pub(super) fn keep(&mut self, wait: impl Future<Output = zk::WatchedEvent> + Send + 'static) {
        self.kept_waits().push(Box::pin(wait));
    }

    fn kept_waits(&mut self) -> &mut Vec<Kept> {
        self.kept.get_mut().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn publish(&self, role: Role) {
        if self.shared.publish(role.clone()) {
            info!(path = %self.path, address = %self.address, %role, "election role");
        }
    }

    /// Reads the node and acts on what it says.
    async fn step(&mut self, status: &SessionStatus) -> Next {
        let client = &status.client;
        if let Some(next) = self.join_participants(client).await {
            return next;
        }
        if let Some(poised) = self.poised.take() {
            return self.swift(client, poised).await;
        }
        let (node, mut around) = self.read(client).await;
        // The read armed new watches on the same paths: those kept from before go now and
        // send nothing (see `Campaign::kept`).
        self.kept_waits().clear();
        let ours =
            matches!(&node, Ok((_, stat, _)) if stat.ephemeral_owner == client.session_id().0);
        if !ours {
            // Used while master only: kept, not dropped.
            let unused = std::mem::replace(&mut around.companion_watch, Err(zk::Error::NoWatcher));
            if let Ok((_, watcher)) = unused {
                self.keep(watcher.changed());
            }
        }
        // Our participant node was deleted (by hand): create it again before anything else (a
        // master then marks it ours with a repair of the companion), once a lost node is
        // reported.
        let rejoin = matches!(around.own, Ok(None));
        match node {
            Ok(_) if rejoin => self.rejoin(),
            Ok((data, stat, watcher)) => self.found(client, &data, &stat, watcher, around).await,
            Err(zk::Error::NoNode) => {
                self.lost_node();
                if rejoin {
                    return self.rejoin();
                }
                let announced = announced(&around.record, &around.companion_after);
                self.missing(client, around.companion_after, announced)
                    .await
            }
            Err(e) => {
                debug!(error = %e, path = %self.path, "cannot read the master node");
                Next::Pause
            }
        }
    }

    /// The node exists: ours (master, if the rest agrees), ours but designated away (hand
    /// over), or another's.
    async fn found(
        &mut self,
        client: &zk::Client,
        data: &[u8],
        stat: &zk::Stat,
        watcher: zk::OneshotWatcher,
        around: Around,
    ) -> Next {
        let me = client.session_id().0;
        let holder = read_address(data).unwrap_or_else(|raw| raw);
        if stat.ephemeral_owner == me
            && let Some(owed) = self.owed(client, &around)
        {
            // Taken without proof on another's behalf (see `poised.rs`): never served.
            self.publish(Role::Electing);
            let Ok((_, companion)) = &around.companion_after else {
                return Next::Pause;
            };
            return self.give_back(client, companion.version, &owed).await;
        }
        if stat.ephemeral_owner == me && holder == self.address {
            self.designation = None;
            self.forget_holder();
            let own = match around.own {
                Ok(own) => own,
                Err(e) => {
                    debug!(error = %e, "cannot read our participant node");
                    return Next::Pause;
                }
            };
            let reads = (around.companion, around.companion_watch, own);
            self.master(client, stat, watcher, reads, around.sent).await
        } else if stat.ephemeral_owner == me {
            // Designated away: stop being master first, then hand over.
            self.shared.held().take();
            self.publish(Role::Standby {
                master: holder.clone(),
            });
            let companion = around.companion.ok().map(|m| m.1);
            self.hand_over(client, stat.version, &holder, companion)
                .await
        } else {
            self.note_holder(client, stat, &around).await;
            let poised = self.poise(client, stat, &holder, &around);
            let next = self
                .held_by_another(client, stat, holder, watcher, around.companion)
                .await;
            if matches!(next, Next::Watch(_) | Next::Probe(..)) {
                self.poised = poised;
            }
            next
        }
    }

    /// Our participant node is gone: the next step creates it again.
    pub(super) fn rejoin(&mut self) -> Next {
        debug!(path = %self.path, "our participant node was deleted; creating it again");
        self.participant_in = None;
        Next::Again
    }

    /// Creates our participant node in this session unless it is there; `Some` (what to do
    /// instead of a step) when it cannot be.
    async fn join_participants(&mut self, client: &zk::Client) -> Option<Next> {
        let me = client.session_id().0;
        if self.participant_in == Some(me) {
            return None;
        }
        if self.stopped() {
            return Some(Next::Again);
        }
        // This session's taker's marks exist already when an earlier contender in it took
        // over (they go only with the session): a takeover creating them again would fail and
        // cost the hand-over a round trip. Pipelined with the participant node's creation.
        let marks = participants::taker_marks(&self.path, me)
            .map(|parent| client.check_stat(&format!("{parent}/{}", participants::MARK)));
        let acl = self.session.node_acl();
        let joined = participants::join(client, &self.path, &self.participant(), acl).await;
        let [one, two] = marks;
        if let (Ok(Some(_)), Ok(Some(_))) = (one.await, two.await) {
            self.marked_in = Some(me);
        }
        match joined {
            Ok(()) => {
                self.participant_in = Some(me);
                None
            }
            Err(zk::Error::NoAuth) => {
                Some(Next::Refused(participants::participants_path(&self.path)))
            }
            Err(e) => {
                debug!(error = %e, path = %self.path, "cannot create the participant node");
                Some(Next::Pause)
            }
        }
    }

    /// The node is missing: a vacancy, as the companion (read after the node) tells, or the
    /// election's nodes are missing (created again).
    async fn missing(
        &mut self,
        client: &zk::Client,
        companion: std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
        announced: bool,
    ) -> Next {
        match companion {
            Ok((data, stat)) => self.vacant(client, &data, stat, announced).await,
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
}
