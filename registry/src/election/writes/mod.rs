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

/// A takeover transaction built (see `Campaign::build_takeover`), with what its result is read
/// by.
pub(super) struct Takeover<'c> {
    pub(super) writer: zk::MultiWriter<'c>,
    /// The indexes of the create, the companion's write and our participant node's write.
    at: [usize; 3],
    /// The index of the first of the marks' operations, when the transaction creates them.
    mark: Option<usize>,
}

impl Campaign {
    /// This session's taker record (see [`participants::taker_record`]): what a takeover or a
    /// repair writes.
    fn own_record(&self, client: &zk::Client) -> String {
        participants::taker_record(client.session_id().0, client.session_timeout())
    }

    /// Adds, last (the other operations' indexes stay as they are), the write of
    /// `<path>.participants`'s data (`record`: the data and the version it is written at), in
    /// the transaction that makes this contender master.
    fn add_taker_record(
        &self,
        writer: &mut zk::MultiWriter,
        (data, version): (&str, Option<i32>),
    ) -> std::result::Result<(), zk::Error> {
        writer.add_set_data(
            &participants::participants_path(&self.path),
            data.as_bytes(),
            version,
        )
    }
}
