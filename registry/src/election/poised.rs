//! Taking an announced vacancy in one round trip: a standby *poised* behind a holder of ours.
//!
//! Guarantee: a standby that takes the node this way serves (publishes [`Role::Master`]: the
//! gate, `is_master`, jobs and fences follow that role) only when reads answered in the same
//! round trip, before its takeover, prove the vacancy announced by the holder it stood by (the
//! rule of `announced.rs`). Otherwise it has served nothing, gives the node back at once, and
//! the vacancy is one whose last taker on record is that holder: every contender (this one
//! too) takes it only once the holder's session provably ended or its lease surely did
//! (`proof.rs`), as if the standby had not touched it.
//!
//! How: standing by a holder of ours, a standby remembers the versions of the companion and of
//! the taker record it read. When its watch reports the node deleted, it sends three requests
//! without waiting in between: a read of the taker record, a read of the companion, and the
//! takeover transaction (`writes/takeover.rs`) writing both at the versions a step-down leaves
//! (each one more than read). ZooKeeper answers a session's requests in order, so the reads
//! describe the state before the takeover.
//!
//! Why serving at once is safe: the reads show `<holder> released` with the companion's
//! `mzxid` (one transaction wrote both: the holder's step-down, which a hand writing one node
//! per transaction cannot forge), the companion naming nobody else, and both at exactly the
//! versions the takeover was checked against, so neither was written between the reads and the
//! commit. That is the decision the campaign otherwise makes with the same reads one round
//! trip earlier, followed by a takeover checked against the companion's version: the same
//! proof, with no more room between proof and commit.
//!
//! Why a takeover without that proof is harmless: it can commit only when each node was
//! written exactly once since the standby read it (a hand's `set` of both, then `delete`). The
//! takeover writes the taker record as the *holder's* (`<holder> <timeout>`, the timeout being
//! max(the holder's recorded session timeout, the standby's own)), consistent with the
//! companion, not as its own: so whatever happens next (the standby gives the node back, dies,
//! resigns, is cut off), the record in ZooKeeper says whose end must be proven, and nobody's
//! in-memory view has to survive. The standby publishes [`Role::Electing`] and gives the node
//! back: its node deleted, the companion written at its takeover's version and the holder's
//! record written again, one transaction. A node of its own found later under a consistent
//! record naming another session (the give-back's reply lost) is given back the same way, never
//! served, and a resign or drop meanwhile keeps that record rather than announcing (`release.rs`).
//! Meanwhile, for about one round trip, the node names this standby: a master client or
//! `zoorpc master` may see it there, and a call routed to it is refused as by a standby (and
//! retried); the stalled holder's fenced writes fail from the takeover on (a new epoch).
//! Once the proof holds, the standby serves and writes its own taker record (after serving, off
//! the hand-over's path); until that lands, a crash of it makes the others wait for the resigned
//! holder's lease too (slower, never less safe).

use std::time::Duration;

use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::address::read_address;
use super::announced::announced;
use super::campaign::{Campaign, Next};
use super::lease;
use super::participants::{self, participants_path};
use super::reads::Around;
use super::role::Role;

type ZkResult<T> = std::result::Result<T, zk::Error>;

/// What a standby read while standing by a holder of ours: enough to take an announced vacancy
/// of that holder's in one round trip.
#[derive(Clone, Copy, Debug)]
pub(super) struct Poised {
    /// This contender's session then (a new session is not poised).
    session: i64,
    /// The holder stood by (another session, one of ours).
    holder: i64,
    /// The companion's version read then: a step-down writes it once.
    companion_version: i32,
    /// The taker record's version read then: a step-down writes it once.
    record_version: i32,
    /// How long a vacancy of this holder's nobody announced is waited out: max(its recorded
    /// session timeout, ours).
    wait: Duration,
}

impl Campaign {
    /// Poised behind the node `stat` (data `holder`), as the step's reads `around` saw it: a
    /// holder of ours whose node was never written since its creation (a designation of
    /// someone else writes it first, which the watch reports instead of the delete) or that
    /// names this contender (a designation to it), with both companion reads agreeing.
    pub(super) fn poise(
        &self,
        client: &zk::Client,
        stat: &zk::Stat,
        holder: &str,
        around: &Around,
    ) -> Option<Poised> {
        let me = client.session_id().0;
        let owner = stat.ephemeral_owner;
        if owner == 0 || owner == me || !(stat.version == 0 || holder == self.address) {
            return None;
        }
        let wait = self.stood_by_ours(owner, client.session_timeout())?;
        let (Ok((_, before)), Ok((_, after)), Ok((_, record))) =
            (&around.companion, &around.companion_after, &around.record)
        else {
            return None;
        };
        (before.version == after.version).then_some(Poised {
            session: me,
            holder: owner,
            companion_version: after.version,
            record_version: record.version,
            wait,
        })
    }

    /// The node `poised` stood by was deleted: the reads and the takeover in one round trip,
    /// then serve, or give the node back (see the module docs).
    pub(super) async fn swift(&mut self, client: &zk::Client, poised: Poised) -> Next {
        if poised.session != client.session_id().0 || self.stopped() {
            return Next::Again;
        }
        let owed = participants::taker_record(poised.holder, poised.wait);
        let record_version = Some(poised.record_version + 1);
        let companion_version = poised.companion_version + 1;
        let Some(mut takeover) =
            self.build_takeover(client, None, companion_version, (&owed, record_version))
        else {
            return Next::Pause;
        };
        let sent = lease::now();
        // In this order: ZooKeeper answers them so.
        let record = client.get_data(&participants_path(&self.path));
        let companion = client.get_data(&self.companion);
        let commit = takeover.writer.commit();
        let (record, companion, result) = (record.await, companion.await, commit.await);
        let stat = match self.committed(client, result, &takeover).await {
            Ok(stat) => stat,
            Err(next) => return next,
        };
        if self.proves_announced(&poised, &record, &companion) {
            self.forget_holder();
            self.waiting_for = None;
            self.unproven = None;
            self.took_over(client, &stat, sent);
            self.record_own(client, poised.record_version + 2).await;
            return Next::Again;
        }
        warn!(path = %self.path, holder = format!("0x{:x}", poised.holder), "took the vacant master node, but its holder's step-down is not proven (written by hand?): not serving; giving it back");
        self.publish(Role::Electing);
        self.give_back(client, stat.version, owed.as_bytes()).await
    }

    /// Whether `record` and `companion`, read just before the takeover checked against the
    /// versions `poised` expects, prove the vacancy announced by the holder stood by, for
    /// nobody else or for us.
    fn proves_announced(
        &self,
        poised: &Poised,
        record: &ZkResult<(Vec<u8>, zk::Stat)>,
        companion: &ZkResult<(Vec<u8>, zk::Stat)>,
    ) -> bool {
        let (Ok((data, r)), Ok((named, c))) = (record, companion) else {
            return false;
        };
        let designee = read_address(named).unwrap_or_else(|raw| raw);
        announced(record, companion)
            && participants::parse_released(data) == Some(poised.holder)
            && r.version == poised.record_version + 1
            && c.version == poised.companion_version + 1
            && (designee.is_empty() || designee == self.address)
    }

    /// After serving: the taker record names this session (at `version`, the one the takeover
    /// left), so a vacancy it leaves unannounced waits for its end, not its predecessor's.
    async fn record_own(&self, client: &zk::Client, version: i32) {
        let record = participants::taker_record(client.session_id().0, client.session_timeout());
        let path = participants_path(&self.path);
        if let Err(e) = client
            .set_data(&path, record.as_bytes(), Some(version))
            .await
        {
            debug!(error = %e, %path, "cannot write our taker record after the takeover");
        }
    }

    /// Gives back a node this contender holds without having served it: deletes it, writes the
    /// companion at `companion_version` (unchanged: nobody took the node over since, so the node
    /// at the path is ours) and the taker record `owed` (another session's, consistent with the
    /// companion again), in one transaction.
    pub(super) async fn give_back(
        &mut self,
        client: &zk::Client,
        companion_version: i32,
        owed: &[u8],
    ) -> Next {
        self.shared.held().take();
        if self.stopped() {
            // The release keeps the record (see `release.rs`).
            return Next::Again;
        }
        let mut writer = client.new_multi_writer();
        let added = writer
            .add_set_data(&self.companion, b"", Some(companion_version))
            .and_then(|()| writer.add_delete(&self.path, None))
            .and_then(|()| writer.add_set_data(&participants_path(&self.path), owed, None));
        if let Err(e) = added {
            warn!(error = %e, "cannot build the request giving the master node back");
            return Next::Pause;
        }
        match writer.commit().await {
            Ok(_) => {
                info!(path = %self.path, "gave the master node back; waiting for its last holder as for any vacancy nobody announced");
                Next::Again
            }
            // The node or the companion changed meanwhile: look again.
            Err(zk::MultiWriteError::OperationFailed { .. }) => Next::Again,
            Err(e) => {
                debug!(error = %e, path = %self.path, "could not give the master node back; trying again");
                Next::Pause
            }
        }
    }

    /// Our node under a taker record consistent with the companion (as the step read both)
    /// naming another session: held on that session's behalf (see the module docs): the
    /// record's data, to give it back with. `None` for anything else.
    pub(super) fn owed(&self, client: &zk::Client, around: &Around) -> Option<Vec<u8>> {
        let (Ok((data, r)), Ok((_, c))) = (&around.record, &around.companion_after) else {
            return None;
        };
        let me = client.session_id().0;
        (r.mzxid == c.mzxid
            && participants::parse_taker(data).is_some_and(|(taker, _)| taker != me))
        .then(|| data.clone())
    }
}
