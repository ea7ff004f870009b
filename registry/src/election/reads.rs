//! What one step of the campaign reads, in one pipelined round trip: the node (with a watch)
//! and what its decision needs around it. The order of the requests is what makes the reads
//! consistent with each other, so it lives here, in one place.

use zookeeper_client as zk;

use super::campaign::Campaign;
use super::lease;
use super::participants::{participant_path, participants_path};

type ZkResult<T> = std::result::Result<T, zk::Error>;

/// The master node as read (with a watch on it).
pub(super) type NodeRead = ZkResult<(Vec<u8>, zk::Stat, zk::OneshotWatcher)>;

/// What a step read besides the node.
pub(super) struct Around {
    /// When the requests left: a reply to any of them proves the session alive after it.
    pub(super) sent: u64,
    /// The companion, read before the node.
    pub(super) companion: ZkResult<(Vec<u8>, zk::Stat)>,
    /// The companion, read after the node.
    pub(super) companion_after: ZkResult<(Vec<u8>, zk::Stat)>,
    /// A watch on the companion, used while master only (to repair it if tampered with).
    pub(super) companion_watch: ZkResult<(Option<zk::Stat>, zk::OneshotWatcher)>,
    /// Our participant node (its watch is kept in the campaign: see `Campaign::own_watch`).
    pub(super) own: ZkResult<Option<zk::Stat>>,
    /// `<path>.participants` (its data is the taker record), read after the node and before
    /// `companion_after`: whether a vacancy was announced (`announced.rs`).
    pub(super) record: ZkResult<(Vec<u8>, zk::Stat)>,
}

impl Campaign {
    /// Pipelined: all requests leave before we wait for any, and ZooKeeper answers a session's
    /// requests in order. The companion is read before the node (what we hold is then
    /// consistent, see `release`) and after it (a handover that deleted the node has named its
    /// designee by then: both happen in one transaction). A reply to any of them proves the
    /// session alive after `sent`: the lease counts from there.
    pub(super) async fn read(&mut self, client: &zk::Client) -> (NodeRead, Around) {
        let me = client.session_id().0;
        let sent = lease::now();
        let companion = client.get_data(&self.companion);
        let node = client.get_and_watch_data(&self.path);
        // The taker record after the node and before `companion_after`: the order
        // `announced.rs` needs.
        let record = client.get_data(&participants_path(&self.path));
        let companion_after = client.get_data(&self.companion);
        let companion_watch = client.check_and_watch_stat(&self.companion);
        let own = client.check_and_watch_stat(&participant_path(&self.path, me));
        let (companion, node, record, companion_after, companion_watch, own) = (
            companion.await,
            node.await,
            record.await,
            companion_after.await,
            companion_watch.await,
            own.await,
        );
        let own = own.map(|(stat, watcher)| {
            self.own_watch = Some(watcher);
            stat
        });
        let around = Around {
            sent,
            companion,
            companion_after,
            companion_watch,
            own,
            record,
        };
        (node, around)
    }
}
