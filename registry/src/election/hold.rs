//! Holding the master node: confirming it (our node, our participant node and the companion
//! carry our epoch), waiting on its watch and the companion's, and renewing the lease
//! meanwhile. A renewal is one multi-op checking the versions of our node and of `<path>.epoch`:
//! a write, so ZooKeeper's leader answers it, and its reply proves both that the session was
//! alive after the request was sent and that nothing took the node since. A lease that ends
//! before a renewal's reply arrives is reported as [`Role::Disconnected`] at once (the gate has
//! refused since the instant it ended, whatever this task was doing).

use std::time::Duration;

use tracing::{debug, warn};
use zookeeper_client as zk;

use super::campaign::{Campaign, Kept, MasterReads, Next};
use super::lease;
use super::role::{Held, Role};

/// Renewals per lease: a master renews every quarter of its lease, so three renewals in a row
/// may go unanswered before the lease ends.
const RENEWALS_PER_LEASE: u32 = 4;

/// Which wait ended [`Campaign::hold`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    Node,
    Companion,
    Other,
}

impl Campaign {
    /// Our node holds our address: master, with the epoch `<path>.epoch` holds, or repair it.
    ///
    /// `reads` are the companion as read before the node (what [`Held`] needs), the watch on it
    /// registered after, and our participant node; `sent` when the reads left.
    pub(super) async fn master(
        &mut self,
        client: &zk::Client,
        node: &zk::Stat,
        watcher: zk::OneshotWatcher,
        reads: MasterReads,
        sent: u64,
    ) -> Next {
        let (companion, companion_watch, own) = reads;
        let (before, companion_watcher) = match self.companion_unchanged(companion, companion_watch)
        {
            Ok(read) => read,
            Err(next) => return next,
        };
        let Some(own) = own else {
            // Our participant node was deleted (by hand): create it again, then mark it ours
            // (a repair of the companion) so a vacancy waits for us.
            return self.rejoin();
        };
        // The epoch this node's companion must hold: what our takeover or last repair wrote.
        let expected = match self.epoch {
            Some((czxid, epoch)) if czxid == node.czxid => epoch,
            // Not known (a takeover whose reply was lost): the takeover wrote both at once.
            _ => node.czxid,
        };
        match before {
            Some(m) if m.mzxid == expected && own.mzxid == expected => {
                let held = Held {
                    node_version: node.version,
                    companion_version: m.version,
                };
                if self.confirmed(client, node.czxid, expected, held, sent) {
                    Next::Master(watcher, companion_watcher)
                } else {
                    Next::Again
                }
            }
            _ => self.repair(client, node, before, expected).await,
        }
    }

    /// The companion as read before the node, if it is what the watch registered after it saw
    /// (`None`: missing), with that watch; otherwise what to do instead.
    fn companion_unchanged(
        &self,
        before: std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
        watched: std::result::Result<(Option<zk::Stat>, zk::OneshotWatcher), zk::Error>,
    ) -> std::result::Result<(Option<zk::Stat>, zk::OneshotWatcher), Next> {
        let (now, watcher) = watched.map_err(|e| {
            debug!(error = %e, path = %self.companion, "cannot watch the companion");
            Next::Pause
        })?;
        let before = match before {
            Ok((_, m)) => Some(m),
            Err(zk::Error::NoNode) => None,
            Err(e) => {
                debug!(error = %e, path = %self.companion, "cannot read the companion");
                return Err(Next::Pause);
            }
        };
        if before.map(|m| (m.mzxid, m.version)) != now.map(|m| (m.mzxid, m.version)) {
            // It changed between the two reads: look again.
            return Err(Next::Again);
        }
        Ok((before, watcher))
    }

    /// Everything carries our epoch: master under it, within the lease the reads (sent at
    /// `sent`) give. `false`: the reply came after that lease had ended (read again).
    fn confirmed(
        &mut self,
        client: &zk::Client,
        czxid: i64,
        epoch: i64,
        held: Held,
        sent: u64,
    ) -> bool {
        self.epoch = Some((czxid, epoch));
        self.note_epoch(epoch);
        *self.shared.held() = Some(held);
        self.shared
            .lease
            .extend(sent, lease::lease_for(client.session_timeout()));
        if !self.shared.lease.holds() {
            debug!(path = %self.path, "ZooKeeper answered after a whole lease; reading again");
            return false;
        }
        self.publish(Role::Master { epoch });
        true
    }

    /// Holds the node until its watch or the companion's fires, a renewal fails, or the lease
    /// ends; then the campaign reads everything again.
    pub(super) async fn hold(
        &mut self,
        client: &zk::Client,
        watcher: zk::OneshotWatcher,
        companion_watcher: zk::OneshotWatcher,
    ) {
        let lease = lease::lease_for(client.session_timeout());
        let every = (lease / RENEWALS_PER_LEASE).max(Duration::from_millis(1));
        let mut node: Kept = Box::pin(watcher.changed());
        let mut companion: Kept = Box::pin(companion_watcher.changed());
        let ended = self
            .hold_until(client, lease, every, &mut node, &mut companion)
            .await;
        // The waits that did not end are kept, not dropped (see `Campaign::kept`).
        if ended != Ended::Node {
            self.keep(node);
        }
        if ended != Ended::Companion {
            self.keep(companion);
        }
    }

    /// [`Campaign::hold`]'s loop: which wait ended it.
    async fn hold_until(
        &self,
        client: &zk::Client,
        lease: Duration,
        every: Duration,
        node: &mut Kept,
        companion: &mut Kept,
    ) -> Ended {
        loop {
            if let Err(ended) = self
                .unless_ended(node, companion, tokio::time::sleep(every))
                .await
            {
                return ended;
            }
            let sent = lease::now();
            match self.unless_ended(node, companion, self.renew(client)).await {
                Err(ended) => return ended,
                Ok(false) => return Ended::Other,
                Ok(true) => self.shared.lease.extend(sent, lease),
            }
        }
    }

    /// `other`, unless the node's watch or the companion's fires, or the lease ends, first:
    /// then which of them (a deletion of the node and the lease's end acted on).
    async fn unless_ended<F: std::future::Future>(
        &self,
        node: &mut Kept,
        companion: &mut Kept,
        other: F,
    ) -> Result<F::Output, Ended> {
        let ended = tokio::time::sleep(self.shared.lease.left());
        tokio::select! {
            event = node.as_mut() => {
                self.node_event(event);
                Err(Ended::Node)
            }
            _ = companion.as_mut() => Err(Ended::Companion),
            _ = ended => {
                self.lease_ended();
                Err(Ended::Other)
            }
            done = other => Ok(done),
        }
    }

    fn node_event(&self, event: zk::WatchedEvent) {
        if event.event_type == zk::EventType::NodeDeleted {
            self.lost_node();
        }
    }

    /// No reply from ZooKeeper within the lease: not master until one arrives (the next read
    /// of the node decides).
    pub(super) fn lease_ended(&self) {
        if self.shared.role.borrow().is_master() {
            warn!(path = %self.path, "no reply from ZooKeeper within the lease; not master until one arrives");
            self.publish(Role::Disconnected);
        }
    }

    /// One renewal: whether ZooKeeper confirmed that our node and the companion are unchanged.
    async fn renew(&self, client: &zk::Client) -> bool {
        let Some(held) = *self.shared.held() else {
            return false;
        };
        let mut writer = client.new_multi_writer();
        let added = writer
            .add_check_version(&self.path, held.node_version)
            .and_then(|()| writer.add_check_version(&self.companion, held.companion_version));
        if let Err(e) = added {
            debug!(error = %e, "cannot build the lease renewal");
            return false;
        }
        match writer.commit().await {
            Ok(_) => true,
            Err(e) => {
                debug!(error = %e, path = %self.path, "lease renewal failed; reading the node again");
                false
            }
        }
    }
}
