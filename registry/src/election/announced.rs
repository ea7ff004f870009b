//! Whether a vacancy was *announced* by its last holder: it stepped down (a resign or a
//! handover) in the very transaction that deleted the node, so nobody is left to wait for and it
//! is taken at once (by the designee, if it names one).
//!
//! Proof: a step-down writes the companion and the taker record (`<path>.participants`'s data,
//! [`participants::released_record`]) in the transaction that deletes the node, so both carry
//! its zxid. The record saying "released" with the companion's `mzxid` proves it: a takeover or
//! a repair writes both again (naming a taker), and a hand writes one node per transaction
//! (`zkCli.sh`), so it cannot make two nodes' `mzxid`s equal. An operator's own multi-op can:
//! outside the guarantees (see `proof.rs`; an ACL on the election's nodes prevents it).
//!
//! Versions alone cannot tell a step-down from a hand's `set` of each node before a `delete`
//! (ZooKeeper 3.8 tells a watch nothing of the transaction), so a standby reads the record and
//! the companion (one pipelined round trip, the campaign's usual read) before it takes over,
//! checked against the companion's version read; or, standing by the holder, in the same round
//! trip as its takeover, serving only once they prove it (`poised.rs`).

use zookeeper_client as zk;

use super::campaign::Campaign;
use super::participants::{self, participants_path};

type ZkResult<T> = std::result::Result<T, zk::Error>;

/// Whether the taker record and the companion as read prove an announced vacancy (see the
/// module docs). The record is read before the companion: a takeover or a step-down between
/// the two reads leaves their `mzxid`s apart (not announced: the campaign looks again).
pub(super) fn announced(
    record: &ZkResult<(Vec<u8>, zk::Stat)>,
    companion: &ZkResult<(Vec<u8>, zk::Stat)>,
) -> bool {
    matches!(
        (record, companion),
        (Ok((data, r)), Ok((_, c)))
            if r.mzxid == c.mzxid && participants::parse_released(data).is_some()
    )
}

impl Campaign {
    /// Whether the vacancy is announced as read now, by the companion `companion_stat` reads
    /// (a step's reads may straddle the step-down: the record read before it, the companion
    /// after). An error is no proof.
    pub(super) async fn announced_now(
        &self,
        client: &zk::Client,
        companion_stat: &zk::Stat,
    ) -> bool {
        let record = client.get_data(&participants_path(&self.path));
        let companion = client.get_data(&self.companion);
        let (record, companion) = (record.await, companion.await);
        announced(&record, &companion)
            && companion
                .as_ref()
                .is_ok_and(|(_, c)| c.mzxid == companion_stat.mzxid)
    }
}
