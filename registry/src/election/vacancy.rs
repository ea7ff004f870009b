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

    /// Nobody holds the node: take it, unless someone else was designated and still has time,
    /// or the vacancy was not `announced` (see [`announced`]) and the last holder (the
    /// participant node carrying the companion's `mzxid`) is another contender that has not
    /// stepped down yet.
    pub(super) async fn vacant(
        &mut self,
        client: &zk::Client,
        companion: &[u8],
        companion_stat: zk::Stat,
        announced: bool,
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
        } else if designee.is_empty() && !announced {
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
            if let Some(next) = self.unproven_taker(client, companion_stat).await {
                return next;
            }
        }
        self.waiting_for = None;
        self.unproven = None;
        self.take(client, companion_stat.version).await
    }

    /// No participant node carries the companion's `mzxid`, yet the last write of the companion
    /// may have been another session's takeover: the taker recorded itself in
    /// `<path>.participants` in that transaction ([`participants::taker_record`]). Its
    /// participant node is gone: by its session's end or by an operator's delete (proving
    /// nothing: the taker may be stalled, within its lease). The session's end is proven by the
    /// taker's marks ([`participants::taker_marks`]), see [`session_end_proven`]. Unproven,
    /// the vacancy is taken only once the taker's session timeout has passed since it was
    /// first seen here: its lease (3/5 of that timeout, counted from a request sent before the
    /// node was deleted, since renewals check the node) has ended by then on any clock running
    /// within 5/3 of this one's rate, the lease's own assumption. `None`: nothing to wait for.
    async fn unproven_taker(
        &mut self,
        client: &zk::Client,
        companion_stat: zk::Stat,
    ) -> Option<Next> {
        let (data, participants) = match client
            .get_data(&participants::participants_path(&self.path))
            .await
        {
            Ok(record) => record,
            Err(zk::Error::NoNode) => return None,
            Err(e) => {
                debug!(error = %e, "cannot read the taker record");
                return Some(Next::Pause);
            }
        };
        let (taker, timeout) = participants::parse_taker(&data)?;
        if participants.mzxid != companion_stat.mzxid || taker == client.session_id().0 {
            return None;
        }
        match session_end_proven(client, &self.path, taker, &companion_stat).await {
            Ok(true) => return None,
            Ok(false) => {}
            Err(e) => {
                debug!(error = %e, "cannot read the taker's marks");
                return Some(Next::Pause);
            }
        }
        let deadline = match self.unproven {
            Some((mzxid, deadline)) if mzxid == companion_stat.mzxid => deadline,
            _ => {
                let deadline = Instant::now() + timeout;
                self.unproven = Some((companion_stat.mzxid, deadline));
                warn!(path = %self.path, taker = format!("0x{taker:x}"), wait = ?timeout, "the master node is vacant and its last holder's participant node is gone, but not its session provably (its taker's marks were not removed together: by hand?): its lease is waited out before taking over");
                deadline
            }
        };
        if Instant::now() >= deadline {
            return None;
        }
        Some(self.wait_vacant_until(client, deadline).await)
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

/// Whether a vacancy was *announced*: its last holder stepped down in the very transaction that
/// deleted the node (a resign or a handover writes the companion and deletes the node at once),
/// so nobody is left to wait for and the participant nodes need not be read. Proven by ZooKeeper's
/// own counters: the companion read before the node was last written by the last transaction
/// that changed the parent's children (its `mzxid` is the parent's `pzxid`, read after the node
/// was found missing; only the node's deletion can be that change), and nothing wrote it again
/// before the companion was read after (`after_mzxid`; the takeover is checked against that
/// version). Anything else is unannounced.
pub(super) fn announced(
    before: &std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
    siblings: &std::result::Result<Option<zk::Stat>, zk::Error>,
    after_mzxid: i64,
) -> bool {
    matches!(
        (before, siblings),
        (Ok((_, m)), Ok(Some(p))) if m.mzxid == p.pzxid && m.mzxid == after_mzxid
    )
}

/// Whether the session of `taker`, the last taker on record (its takeover wrote the companion
/// as `companion` reads), provably ended: both its marks ([`participants::taker_marks`]) are
/// gone and their parents' last child change is one transaction (equal `pzxid`s, after their
/// creation). Those parents are the session's own: nothing but the end of the session removes
/// both marks at once (the session never removes them; a hand's `delete` removes one), and no
/// other contender, participant or election changes their children. Created in that session's
/// first takeover, they are older than the companion's last write. A taker of an older
/// version, which made no marks, is never proven gone this way (its lease is waited out).
async fn session_end_proven(
    client: &zk::Client,
    path: &str,
    taker: i64,
    companion: &zk::Stat,
) -> std::result::Result<bool, zk::Error> {
    let [one, two] = participants::taker_marks(path, taker);
    let (one, two) = (client.check_stat(&one), client.check_stat(&two));
    let (Some(one), Some(two)) = (one.await?, two.await?) else {
        return Ok(false);
    };
    let ended = |m: &zk::Stat| m.num_children == 0 && m.pzxid > m.czxid;
    Ok(ended(&one)
        && ended(&two)
        && one.pzxid == two.pzxid
        && one.czxid <= companion.mzxid
        && two.czxid <= companion.mzxid)
}
