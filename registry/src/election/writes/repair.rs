//! Repairing a deleted or tampered-with companion, as its holder (the rules are the module's,
//! [`super`]).

use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::super::campaign::{Campaign, Next};
use super::super::participants::participant_path;
use crate::plumbing::persistent;

impl Campaign {
    /// Rewrites a deleted or tampered-with companion in one transaction that checks our node's
    /// version, so only the holder of the node can: the new epoch is the companion's new
    /// `mzxid`. The next step reads both again before reporting it.
    pub(in crate::election) async fn repair(
        &mut self,
        client: &zk::Client,
        node: &zk::Stat,
        companion: Option<zk::Stat>,
        epoch: i64,
    ) -> Next {
        match companion {
            None => {
                warn!(path = %self.companion, epoch, "the election companion was deleted by someone else; fenced writes and job claims fail until it is repaired; repairing it")
            }
            Some(m) => {
                warn!(path = %self.companion, epoch, mzxid = m.mzxid, "the election companion was rewritten by someone else; fenced writes and job claims fail until it is repaired; repairing it")
            }
        }
        let own = participant_path(&self.path, client.session_id().0);
        let mut writer = client.new_multi_writer();
        let added = writer
            .add_check_version(&self.path, node.version)
            .and_then(|()| match companion {
                // Created, then written: the write's stat carries the new mzxid.
                None => writer
                    .add_create(&self.companion, b"", &persistent(self.session.node_acl()))
                    .and_then(|()| writer.add_set_data(&self.companion, b"", Some(0))),
                Some(m) => writer.add_set_data(&self.companion, b"", Some(m.version)),
            })
            // Our participant node carries the new epoch too: a vacancy waits for us.
            .and_then(|()| writer.add_set_data(&own, self.participant().as_bytes(), None))
            .and_then(|()| self.add_taker_record(&mut writer, (&self.own_record(client), None)));
        if let Err(e) = added {
            warn!(error = %e, "cannot build the companion repair request");
            return Next::Pause;
        }
        if self.stopped() {
            return Next::Again;
        }
        match writer.commit().await {
            Ok(results) => {
                if let Some(zk::MultiWriteResult::SetData { stat }) = results.last() {
                    // The companion's write and ours share the transaction's zxid.
                    self.epoch = Some((node.czxid, stat.mzxid));
                    self.note_epoch(stat.mzxid);
                    info!(path = %self.companion, old = epoch, epoch = stat.mzxid, "repaired the election companion; master under a new epoch");
                }
                Next::Again
            }
            // Our node or the companion changed meanwhile (or the reply was lost): look again.
            Err(zk::MultiWriteError::OperationFailed {
                source: zk::Error::BadVersion | zk::Error::NoNode | zk::Error::NodeExists,
                ..
            })
            | Err(zk::MultiWriteError::RequestFailed { .. }) => Next::Again,
            Err(e) => {
                debug!(error = %e, "companion repair failed");
                Next::Pause
            }
        }
    }
}
