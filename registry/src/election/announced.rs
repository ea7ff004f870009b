//! Taking a vacancy its holder announced, without reading first: the graceful hand-over's
//! fast path.
//!
//! A standby that last read the node held by another session, never written since its creation
//! (version 0: no designation), notes the companion's version and the taker record's (the data
//! of `<path>.participants`). When the watch armed by that read reports the node *deleted*, it
//! sends the takeover at once, checked against both: the companion written exactly once since
//! (its version one more), the taker record not written at all. That pair proves the vacancy
//! was announced by its holder's own step-down:
//! - the watch fired on a deletion, so the node's data did not change since the read: no
//!   designation, hence no handover (a handover follows a change of the data);
//! - every takeover and every repair of the companion writes the taker record in the same
//!   transaction, so none happened since the read;
//! - what is left that writes the companion is the holder's resign, which deletes the node in
//!   the same transaction (announced), or a hand's write of the companion itself (tampering, as
//!   outside the guarantees as it is for a step that reads: see the module docs).
//!
//! The versions come from one pipelined read, in this order: the node (arming the watch), the
//! taker record, the companion. A takeover that created the node just before is then counted
//! in both versions; a takeover or repair between the two reads is counted in the companion's
//! version but not the record's, so the check fails (the record moved) and the campaign reads:
//! never a check that passes without a step-down.
//!
//! An expiry or an operator's delete leaves the companion unwritten: the takeover fails on its
//! version, and the campaign reads and decides as for any vacancy. So the hand-over costs the
//! standby one round trip (the takeover) after the notification, where reading first cost two.

use zookeeper_client as zk;

use super::campaign::Campaign;
use super::reads::Around;

/// What a standby needs to take an announced vacancy at once: the versions to check.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ready {
    /// The companion's version as read: the takeover writes it at one more.
    companion: i32,
    /// The taker record's version as read: the takeover writes it at exactly this one.
    record: i32,
}

/// The versions a standby of `stat` (a node held by another session) keeps for the fast path,
/// if the node was never written since its creation and both versions were read.
pub(super) fn ready(stat: &zk::Stat, around: &Around) -> Option<Ready> {
    if stat.ephemeral_owner == 0 || stat.version != 0 {
        return None;
    }
    match (&around.companion_after, &around.record) {
        (Ok((_, companion)), Ok(Some(record))) => Some(Ready {
            companion: companion.version,
            record: record.version,
        }),
        _ => None,
    }
}

impl Campaign {
    /// The node's watch (armed by the read that made `self.ready`) fired with `event`: a
    /// deletion is taken over at once, checked as the module docs say. Whatever the outcome, the
    /// next step reads the node (a takeover that failed cost one round trip).
    pub(super) async fn after_event(&mut self, client: &zk::Client, event: &zk::WatchedEvent) {
        let Some(ready) = self.ready.take() else {
            return;
        };
        if event.event_type != zk::EventType::NodeDeleted {
            return;
        }
        let announced = ready.companion.checked_add(1);
        if let Some(companion) = announced {
            let _ = self
                .take_over_at(client, None, companion, Some(ready.record))
                .await;
        }
    }
}
