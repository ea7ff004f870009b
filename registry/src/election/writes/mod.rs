//! The transactions of a running campaign that change who holds the master node, one file per
//! kind of write: taking a vacancy or taking over (`takeover`: create the node and write the
//! companion), handing over (`hand_over`: delete the node, name the designee) and repairing a
//! tampered companion (`repair`: checked against our node's version). Each is one ZooKeeper
//! multi-op, so no other contender can see half of it. Releasing (resigning) is in
//! `release.rs`.

use zookeeper_client as zk;

use super::campaign::Campaign;
use super::participants;

mod hand_over;
mod repair;
mod takeover;

/// A holder's node deleted in the takeover's transaction: at the version the decision was made
/// on, with (for a holder proven gone) its participant node, so nothing of it is left to wait
/// for.
pub(super) struct Depose {
    pub(super) version: i32,
    pub(super) participant: Option<String>,
}

impl Campaign {
    /// Adds, last (the other operations' indexes stay as they are), the write of
    /// `<path>.participants`'s data naming this session as the taker (see
    /// [`participants::taker_record`]), in the transaction that makes it master.
    fn add_taker_record(
        &self,
        client: &zk::Client,
        writer: &mut zk::MultiWriter,
        version: Option<i32>,
    ) -> std::result::Result<(), zk::Error> {
        let record = participants::taker_record(client.session_id().0, client.session_timeout());
        writer.add_set_data(
            &participants::participants_path(&self.path),
            record.as_bytes(),
            version,
        )
    }
}
