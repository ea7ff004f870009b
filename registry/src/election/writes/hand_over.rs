//! Handing the mastership over to a designee: our node deleted and the designee named in one
//! transaction (the rules are the module's, [`super`]).

use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::super::campaign::{Campaign, Next};
use super::super::{lease, participants};
use crate::plumbing::persistent;

impl Campaign {
    /// Deletes our node and names the designee in the companion, atomically.
    pub(in crate::election) async fn hand_over(
        &mut self,
        client: &zk::Client,
        node_version: i32,
        designee: &str,
        companion: Option<zk::Stat>,
    ) -> Next {
        let mut writer = client.new_multi_writer();
        let added = match companion {
            Some(m) => writer
                .add_set_data(&self.companion, designee.as_bytes(), Some(m.version))
                .and_then(|()| writer.add_delete(&self.path, Some(node_version))),
            // The companion is missing (deleted by hand): create it naming the designee, so the
            // others still wait for it.
            None => writer
                .add_create(
                    &self.companion,
                    designee.as_bytes(),
                    &persistent(self.session.node_acl()),
                )
                .and_then(|()| writer.add_delete(&self.path, Some(node_version))),
        }
        // The step-down's record, in the same transaction: the vacancy is announced.
        .and_then(|()| {
            let record = participants::released_record(client.session_id().0);
            writer.add_set_data(
                &participants::participants_path(&self.path),
                record.as_bytes(),
                None,
            )
        });
        if let Err(e) = added {
            warn!(error = %e, "cannot build the handover request");
            return Next::Pause;
        }
        // Standby is published: what was admitted as master finishes before the designee can
        // take over.
        let lease = lease::lease_for(client.session_timeout());
        super::super::drain::before_release(&self.shared, lease, &self.path).await;
        if self.stopped() {
            return Next::Again;
        }
        match writer.commit().await {
            Ok(_) => {
                info!(path = %self.path, %designee, "handed mastership over");
                Next::Again
            }
            // The node or the companion changed meanwhile: look again.
            Err(zk::MultiWriteError::OperationFailed {
                source: zk::Error::BadVersion | zk::Error::NoNode | zk::Error::NodeExists,
                ..
            }) => Next::Again,
            Err(e) => {
                debug!(error = %e, "handover failed; trying again");
                Next::Pause
            }
        }
    }
}
