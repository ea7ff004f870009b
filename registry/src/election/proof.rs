//! Proof that the last holder of a vacancy nobody announced can no longer act as master.
//!
//! Guarantee: a contender takes a vacancy nobody announced (an expiry, an operator's `delete`)
//! only once the session that last held the node provably ended, or once that session's lease
//! has surely ended; never on data a hand can write one node at a time (`zkCli.sh`).
//!
//! Which session: the *last taker on record* (`<path>.participants`'s data) when that record
//! was written in the transaction that last wrote the companion (equal `mzxid`s: only our
//! takeovers and repairs write both at once, a hand writes one node at a time). Otherwise (the
//! record missing, empty, unparseable, naming another session, or the companion written since
//! by a hand) the session this contender itself last saw holding the node: the node's
//! `ephemeralOwner`, which nobody can forge, noted with the holder's session timeout (from a
//! consistent record) when this contender started standing by it ([`Stood`]), and kept in
//! memory. A holder that was not ours then (no participant node, no taker's marks, not on
//! record: seed 004's contender) follows only "the data names the master" and holds no lease:
//! nothing to prove.
//!
//! Proof: that session's two taker's marks removed in one transaction (see
//! [`session_end_proven`]): only its end does that. Missing, unreadable, or contradicting
//! what this contender remembers: the vacancy is taken once
//! max(the holder's session timeout as recorded, this contender's own negotiated session
//! timeout) has passed since the vacancy was first seen, with one warning. The holder's lease
//! (3/5 of its session timeout, counted from a request sent before the node was deleted, since
//! renewals read the node) has ended by then on any clock running within 5/3 of this one's
//! rate, the lease's own assumption, provided its timeout is not longer than the wait (the
//! same configuration on every contender, or a record read while it held the node).
//!
//! Not covered: an operator whose own code removes both marks of a session in one
//! transaction (a multi-op) declares that session ended; nothing can tell that from its end.
//! Nor is a hand writing the record and the companion in one transaction. Against both, give
//! the election's nodes an ACL (`--zk-auth-file`, [`crate::Session`]'s credentials): nodes
//! only the contenders' identity may write cannot be forged.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};
use zookeeper_client as zk;

use super::campaign::{Campaign, Next};
use super::participants::{self, participant_path, participants_path};
use super::reads::Around;

/// The holder this contender last saw holding the node (another session).
#[derive(Clone, Copy, Debug)]
pub(super) struct Stood {
    /// Its session: the node's `ephemeralOwner`.
    session: i64,
    /// Whether it was one of ours when first seen (a participant node, a taker's mark, or on
    /// record): only ours hold a lease to wait out.
    ours: bool,
    /// Its negotiated session timeout, from a taker record consistent with the companion.
    timeout: Option<Duration>,
}

impl Campaign {
    /// Notes the holder of the node `stat` (held by another session) when it is not the one
    /// noted already: one pipelined read of its participant node, its first mark and the taker
    /// record. A read that fails counts it as ours (waiting is the safe side). A holder that is
    /// not ours does not replace one of ours: a node a hand created (`zkCli.sh create -e`)
    /// proves nothing about the holder of ours it stood by before.
    pub(super) async fn note_holder(
        &mut self,
        client: &zk::Client,
        stat: &zk::Stat,
        around: &Around,
    ) {
        let session = stat.ephemeral_owner;
        if session == 0 || self.stood_by.is_some_and(|s| s.session == session) {
            return;
        }
        let [mark, _] = participants::taker_marks(&self.path, session);
        let participant = client.check_stat(&participant_path(&self.path, session));
        let mark = client.check_stat(&mark);
        let record = client.get_data(&participants_path(&self.path));
        let (participant, mark, record) = (participant.await, mark.await, record.await);
        let companion = around.companion_after.as_ref().ok().map(|(_, m)| m.mzxid);
        let recorded = match &record {
            Ok((data, m)) if Some(m.mzxid) == companion => participants::parse_taker(data)
                .filter(|(taker, _)| *taker == session)
                .map(|(_, timeout)| timeout),
            _ => None,
        };
        let ours = recorded.is_some()
            || !matches!(participant, Ok(None))
            || !matches!(mark, Ok(None))
            || record.is_err();
        if !ours && self.stood_by.is_some_and(|s| s.ours) {
            return;
        }
        self.stood_by = Some(Stood {
            session,
            ours,
            timeout: recorded,
        });
    }

    /// The holder noted by [`Campaign::note_holder`], if it is `session` and one of ours: how
    /// long a vacancy of its nobody announced is waited out (max(its recorded session timeout,
    /// `own`)).
    pub(super) fn stood_by_ours(&self, session: i64, own: Duration) -> Option<Duration> {
        let stood = self.stood_by.filter(|s| s.session == session && s.ours)?;
        Some(stood.timeout.map_or(own, |t| t.max(own)))
    }

    /// Forgets the holder noted by [`Campaign::note_holder`]: this contender holds the node.
    pub(super) fn forget_holder(&mut self) {
        self.stood_by = None;
    }

    /// The vacancy (the companion as `companion_stat` reads) was not announced and no
    /// participant node carries the companion's `mzxid`: `Some` (what to wait for) while its
    /// last holder may still act as master (see the module docs); `None`: take it.
    pub(super) async fn unproven(
        &mut self,
        client: &zk::Client,
        companion_stat: zk::Stat,
    ) -> Option<Next> {
        let record = match client.get_data(&participants_path(&self.path)).await {
            Ok((data, stat)) if stat.mzxid == companion_stat.mzxid => {
                participants::parse_taker(&data)
            }
            Ok(_) | Err(zk::Error::NoNode) => None,
            Err(e) => {
                debug!(error = %e, "cannot read the taker record");
                return Some(Next::Pause);
            }
        };
        let (holder, recorded, why) = match (record, self.stood_by) {
            (Some((taker, timeout)), _) => (
                taker,
                Some(timeout),
                "its taker's marks were not removed together: by hand?",
            ),
            (None, Some(stood)) if stood.ours => (
                stood.session,
                None,
                "the taker record does not match the companion (written or deleted by hand?), so the holder this contender stood by must be proven gone, and its marks are not removed together",
            ),
            (None, _) => return None,
        };
        if holder == client.session_id().0 {
            return None;
        }
        match session_end_proven(client, &self.path, holder, &companion_stat).await {
            Ok(true) => return None,
            Ok(false) => {}
            Err(e) => {
                debug!(error = %e, "cannot read the taker's marks");
                return Some(Next::Pause);
            }
        }
        let remembered = self
            .stood_by
            .filter(|s| s.session == holder)
            .and_then(|s| s.timeout);
        let wait = [recorded, remembered]
            .into_iter()
            .flatten()
            .fold(client.session_timeout(), Duration::max);
        let deadline = match self.unproven {
            Some((mzxid, deadline)) if mzxid == companion_stat.mzxid => deadline,
            _ => {
                let deadline = Instant::now() + wait;
                self.unproven = Some((companion_stat.mzxid, deadline));
                warn!(path = %self.path, holder = format!("0x{holder:x}"), ?wait, "the master node is vacant, nobody announced it, and its last holder's end is not proven ({why}): waiting out its lease before taking over");
                deadline
            }
        };
        if Instant::now() >= deadline {
            return None;
        }
        Some(self.wait_vacant_until(client, deadline).await)
    }
}

/// Whether the session of `taker` (its takeover wrote the companion as `companion` reads, or
/// earlier) provably ended: both its marks ([`participants::taker_marks`]) are gone and their
/// parents' last child change is one transaction (equal `pzxid`s, after their creation). Those
/// parents are the session's own: nothing but the end of the session removes both marks at
/// once (the session never removes them; a hand's `delete` removes one), and no other
/// contender, participant or election changes their children. Created in that session's first
/// takeover, they are older than the companion's last write. A taker of an older version,
/// which made no marks, is never proven gone this way (its lease is waited out); nor is one
/// whose marks' parents a hand deleted (`deleteall`).
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
