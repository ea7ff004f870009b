//! The decisions about a node we do not hold: held by another session (stand by; or, named in
//! it, wait for our holder's handover or take it over from a holder that is not ours), or
//! vacant (wait for a designee, or for the last holder to step down, or take it).

use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::address::read_address;
use super::campaign::{Campaign, Next};
use super::participants::{self, participant_path};
use super::role::Role;
use super::writes::Depose;

impl Campaign {
    /// The node is held by another session: stand by for the address it names, or, named in it
    /// ourselves, wait for our holder to hand over, or take it over from a holder that is not
    /// one of ours (no participant node), which has no handover to wait for.
    pub(super) async fn held_by_another(
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
            self.publish(Role::Standby {
                master: holder.clone(),
            });
            return self
                .stand_by(client, stat, holder, watcher, companion)
                .await;
        }
        // Designated: not master yet, and no other master to name (a standby of itself would
        // send its clients round in a circle).
        self.publish(Role::Electing);
        if stat.ephemeral_owner == 0 {
            return Next::Watch(watcher);
        }
        self.designated(client, stat, watcher, companion).await
    }

    /// The node names us but another session holds it: wait for our holder's handover, or take
    /// it over from a holder that is not ours, or from one proven gone (our address is ours).
    async fn designated(
        &mut self,
        client: &zk::Client,
        stat: &zk::Stat,
        watcher: zk::OneshotWatcher,
        companion: std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
    ) -> Next {
        let owner = participant_path(&self.path, stat.ephemeral_owner);
        let declared = client.get_data(&owner);
        let record = client.get_data(&participants::participants_path(&self.path));
        let companion_version = match companion {
            Ok((_, m)) => m.version,
            Err(e) => {
                debug!(error = %e, "cannot read the companion");
                return Next::Pause;
            }
        };
        match (declared.await, record.await) {
            (Ok((data, _)), _) if self.serves_address_of(&data) => {
                info!(path = %self.path, holder = format!("0x{:x}", stat.ephemeral_owner), "the master node names this contender's address, held by another session that declared it served there: that process no longer listens there (this one does), so it is gone; taking over");
                let depose = Depose {
                    version: stat.version,
                    participant: Some(owner),
                };
                self.take_over(client, Some(depose), companion_version)
                    .await
            }
            // One of ours: it hands over (see `hand_over`).
            (Ok(_), _) => Next::Watch(watcher),
            // One of ours whose participant node was deleted by hand (it is the last taker on
            // record): it creates the node again and hands over; a contender that is not ours
            // never writes that record.
            (Err(zk::Error::NoNode), Ok((record, _)))
                if participants::parse_taker(&record)
                    .is_some_and(|(taker, _)| taker == stat.ephemeral_owner) =>
            {
                Next::Watch(watcher)
            }
            (Err(zk::Error::NoNode), Ok(_) | Err(zk::Error::NoNode)) => {
                self.take_from(client, stat, companion_version).await
            }
            (declared, record) => {
                debug!(?declared, ?record, path = %owner, "cannot read the holder's participant node");
                Next::Pause
            }
        }
    }

    /// Whether a participant node's `data` declares this contender's own address served by
    /// its process. With the fast takeover on, this contender's own process serves that
    /// address now (the precondition for switching it on), and two processes cannot listen on
    /// one address: the process that declared it is gone (a master killed and started again on
    /// its port, before its old session ended), as refused connects would prove.
    fn serves_address_of(&self, data: &[u8]) -> bool {
        self.fast.enabled && participants::declares_served(data, &self.address)
    }

    /// Nobody holds the node: take it, once nobody else may still act as master and no
    /// designee of ours still has time. A vacancy `announced` by its last holder (see
    /// `announced.rs`) needs nothing more. Any other (an expiry, an operator's `delete`) is
    /// taken only once its last holder provably stepped down or ended, or its lease surely did
    /// (see [`Campaign::unannounced`]); a designation read then counts only if a participant
    /// declares the address (an operator's write of the companion names anything).
    pub(super) async fn vacant(
        &mut self,
        client: &zk::Client,
        companion: &[u8],
        companion_stat: zk::Stat,
        announced: bool,
    ) -> Next {
        // A step's reads may straddle the announcing transaction (the taker record read before
        // it, the companion after): one more look before treating the vacancy as unannounced.
        let announced = announced || self.announced_now(client, &companion_stat).await;
        if !announced && let Some(next) = self.unannounced(client, companion_stat).await {
            return next;
        }
        let designee = read_address(companion).unwrap_or_else(|raw| raw);
        if !designee.is_empty() && designee != self.address {
            let designated = if announced {
                true
            } else {
                match participants::list(client, &self.path).await {
                    Ok(everyone) => everyone.iter().any(|p| p.address == Ok(designee.clone())),
                    Err(e) => {
                        debug!(error = %e, "cannot list the participants");
                        return Next::Pause;
                    }
                }
            };
            if designated
                && let Some(next) = self.grace_for(client, &designee, companion_stat).await
            {
                return next;
            }
        }
        self.waiting_for = None;
        self.unproven = None;
        self.take(client, companion_stat.version).await
    }

    /// A vacancy naming `designee` (someone else) in the companion: it has
    /// [`ElectionOptions::handover_grace`](super::ElectionOptions::handover_grace) from when this
    /// contender first saw the designation to take over; `None` once that has passed.
    async fn grace_for(
        &mut self,
        client: &zk::Client,
        designee: &str,
        companion_stat: zk::Stat,
    ) -> Option<Next> {
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
                master: designee.to_owned(),
            });
            return Some(self.wait_vacant_until(client, deadline).await);
        }
        info!(path = %self.path, %designee, "the designee did not take over in time; running again");
        None
    }

    /// A vacancy nobody announced: `Some` (what to wait for) while its last holder may still
    /// act as master. The participant node carrying the companion's `mzxid` is a holder that
    /// has not stepped down: waited for. Otherwise the holder must be proven gone (see
    /// `proof.rs`).
    async fn unannounced(&mut self, client: &zk::Client, companion_stat: zk::Stat) -> Option<Next> {
        let everyone = match participants::list(client, &self.path).await {
            Ok(everyone) => everyone,
            Err(e) => {
                debug!(error = %e, "cannot list the participants");
                return Some(Next::Pause);
            }
        };
        let me = client.session_id().0;
        if let Some(last) = everyone
            .iter()
            .find(|p| p.mzxid == companion_stat.mzxid && p.session != me)
        {
            return Some(
                self.wait_step_down(client, last.session, companion_stat)
                    .await,
            );
        }
        self.unproven(client, companion_stat).await
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
    pub(super) async fn wait_vacant_until(&self, client: &zk::Client, deadline: Instant) -> Next {
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
