//! Holding the master node: waiting on its watch and the companion's, and renewing the lease
//! meanwhile. A renewal is one multi-op checking the versions of our node and of `<path>.epoch`:
//! a write, so ZooKeeper's leader answers it, and its reply proves both that the session was
//! alive after the request was sent and that nothing took the node since. A lease that ends
//! before a renewal's reply arrives is reported as [`Role::Disconnected`] at once (the gate has
//! refused since the instant it ended, whatever this task was doing).

use std::time::Duration;

use tracing::{debug, warn};
use zookeeper_client as zk;

use super::campaign::Campaign;
use super::lease;
use super::role::Role;

/// Renewals per lease: a master renews every quarter of its lease, so three renewals in a row
/// may go unanswered before the lease ends.
const RENEWALS_PER_LEASE: u32 = 4;

impl Campaign {
    /// Holds the node until its watch or the companion's fires, a renewal fails, or the lease
    /// ends; then the campaign reads everything again.
    pub(super) async fn hold(
        &self,
        client: &zk::Client,
        watcher: zk::OneshotWatcher,
        companion_watcher: zk::OneshotWatcher,
    ) {
        let lease = lease::lease_for(client.session_timeout());
        let every = (lease / RENEWALS_PER_LEASE).max(Duration::from_millis(1));
        let node = watcher.changed();
        let companion = companion_watcher.changed();
        tokio::pin!(node, companion);
        loop {
            let wait = tokio::time::sleep(every);
            let ended = tokio::time::sleep(self.shared.lease.left());
            tokio::select! {
                event = &mut node => return self.node_event(event),
                _ = &mut companion => return,
                _ = ended => return self.lease_ended(),
                _ = wait => {}
            }
            let sent = lease::now();
            let renewal = self.renew(client);
            let ended = tokio::time::sleep(self.shared.lease.left());
            tokio::select! {
                event = &mut node => return self.node_event(event),
                _ = &mut companion => return,
                _ = ended => return self.lease_ended(),
                renewed = renewal => {
                    if !renewed {
                        return;
                    }
                    self.shared.lease.extend(sent, lease);
                }
            }
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
