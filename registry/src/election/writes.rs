//! The transactions of a running campaign that change who holds the master node: taking a
//! vacancy (create the node and write the companion), handing over (delete the node, name the
//! designee) and repairing a tampered companion (checked against our node's version). Each is
//! one ZooKeeper multi-op, so no other contender can see half of it. Releasing (resigning) is in
//! `release.rs`.

use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::campaign::{Campaign, Next};
use super::lease;
use super::participants::{self, participant_path};
use super::prepare;
use super::role::{Held, Role};
use crate::plumbing::{ephemeral, persistent};

/// A holder's node deleted in the takeover's transaction: at the version the decision was made
/// on, with (for a holder proven gone) its participant node, so nothing of it is left to wait
/// for.
pub(super) struct Depose {
    pub(super) version: i32,
    pub(super) participant: Option<String>,
}

impl Campaign {
    /// Rewrites a deleted or tampered-with companion in one transaction that checks our node's
    /// version, so only the holder of the node can: the new epoch is the companion's new
    /// `mzxid`. The next step reads both again before reporting it.
    pub(super) async fn repair(
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
            .and_then(|()| self.add_taker_record(client, &mut writer, None));
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

    /// Takes the vacant node: creates it, rewrites the companion (at the version the decision
    /// was made on: anything written since makes it fail, and the campaign looks again) and
    /// marks our participant node with the same zxid, in one transaction.
    pub(super) async fn take(&mut self, client: &zk::Client, companion_version: i32) -> Next {
        self.take_over(client, None, companion_version).await
    }

    /// Takes over a node that names us but is held by a session that is not one of ours (no
    /// participant node, e.g. seed 004's own contender, which never hands over): deletes it at
    /// the version read and creates ours in the same transaction as `take`'s.
    pub(super) async fn take_from(
        &mut self,
        client: &zk::Client,
        node: &zk::Stat,
        companion_version: i32,
    ) -> Next {
        info!(path = %self.path, holder = format!("0x{:x}", node.ephemeral_owner), "designated in a node held by a contender that is not ours (no participant node); taking it over");
        let depose = Depose {
            version: node.version,
            participant: None,
        };
        self.take_over(client, Some(depose), companion_version)
            .await
    }

    /// The takeover transaction: deletes a deposed holder's node (and its participant node) if
    /// any, creates ours, writes the companion at the version the decision was made on and marks
    /// our participant node, all or nothing.
    pub(super) async fn take_over(
        &mut self,
        client: &zk::Client,
        depose: Option<Depose>,
        companion_version: i32,
    ) -> Next {
        self.take_over_at(client, depose, companion_version, None)
            .await
    }

    /// [`Campaign::take_over`], with the taker record written at `record_version` when given
    /// (an announced vacancy taken without reading it first, see `announced.rs`).
    pub(super) async fn take_over_at(
        &mut self,
        client: &zk::Client,
        depose: Option<Depose>,
        companion_version: i32,
        record_version: Option<i32>,
    ) -> Next {
        // The operations' indexes, for the errors below.
        let first = depose
            .as_ref()
            .map_or(0, |d| 1 + usize::from(d.participant.is_some()));
        let (create, companion_at, own_at) = (first, first + 1, first + 2);
        let mut writer = client.new_multi_writer();
        let own = participant_path(&self.path, client.session_id().0);
        let me = client.session_id().0;
        // The marks' operations come after the taker record's.
        let mark = (self.marked_in != Some(me)).then_some(own_at + 2);
        let added = self
            .takeover_request(&mut writer, depose.as_ref(), companion_version, &own)
            // Last: the other operations' indexes stay as `takeover_failed` reads them.
            .and_then(|()| self.add_taker_record(client, &mut writer, record_version))
            .and_then(|()| match mark {
                Some(_) => self.add_marks(&mut writer, me),
                None => Ok(()),
            });
        if let Err(e) = added {
            warn!(error = %e, "cannot build the takeover request");
            return Next::Pause;
        }
        let sent = lease::now();
        if self.stopped() {
            return Next::Again;
        }
        match writer.commit().await {
            Ok(results) => {
                let Some(zk::MultiWriteResult::SetData { stat }) = results.get(companion_at) else {
                    // Cannot happen with a successful multi; read the node to find out.
                    return Next::Again;
                };
                if mark.is_some() {
                    self.marked_in = Some(me);
                }
                self.took_over(client, stat, sent);
                // Read again to arm the watch on our node.
                Next::Again
            }
            Err(zk::MultiWriteError::OperationFailed { index, source })
                if mark.is_some_and(|first| index >= first) =>
            {
                self.mark_failed(client, source).await
            }
            Err(e) => {
                self.takeover_failed(client, e, [create, companion_at, own_at])
                    .await
            }
        }
    }

    /// Adds the creation of the taker's marks of session `me` (see
    /// [`participants::taker_marks`]): each container, then its mark.
    fn add_marks(
        &self,
        writer: &mut zk::MultiWriter<'_>,
        me: i64,
    ) -> std::result::Result<(), zk::Error> {
        let acl = self.session.node_acl();
        for parent in participants::taker_marks(&self.path, me) {
            writer.add_create(
                &parent,
                b"",
                &zk::CreateMode::Container.with_acls(acl.acls()),
            )?;
            let mark = format!("{parent}/{}", participants::MARK);
            writer.add_create(&mark, b"", &ephemeral(acl))?;
        }
        Ok(())
    }

    /// The takeover failed only on creating our taker's marks: they are there already (an
    /// earlier takeover in this session whose reply was lost), or their parent is missing
    /// (elections prepared by an older version, or deleted by hand).
    async fn mark_failed(&mut self, client: &zk::Client, source: zk::Error) -> Next {
        match source {
            zk::Error::NodeExists => {
                self.marked_in = Some(client.session_id().0);
                Next::Again
            }
            zk::Error::NoNode => match prepare(client, &self.path, self.session.node_acl()).await {
                Ok(()) => Next::Again,
                Err(e) => {
                    warn!(error = %e, "cannot prepare the election nodes");
                    Next::Pause
                }
            },
            zk::Error::NoAuth => Next::Refused(participants::takers_path(&self.path)),
            e => {
                debug!(error = %e, path = %self.path, "cannot create the taker's mark");
                Next::Pause
            }
        }
    }

    /// Adds the takeover's operations to `writer`, in the order `take_over`'s indexes assume.
    fn takeover_request(
        &self,
        writer: &mut zk::MultiWriter<'_>,
        depose: Option<&Depose>,
        companion_version: i32,
        own: &str,
    ) -> std::result::Result<(), zk::Error> {
        match depose {
            Some(depose) => writer
                .add_delete(&self.path, Some(depose.version))
                .and_then(|()| match &depose.participant {
                    Some(participant) => writer.add_delete(participant, None),
                    None => Ok(()),
                }),
            None => Ok(()),
        }
        .and_then(|()| {
            writer.add_create(
                &self.path,
                self.address.as_bytes(),
                &ephemeral(self.session.node_acl()),
            )
        })
        .and_then(|()| writer.add_set_data(&self.companion, b"", Some(companion_version)))
        .and_then(|()| writer.add_set_data(own, self.participant().as_bytes(), None))
    }

    /// Records a committed takeover (`stat`: the companion's write, whose `mzxid` is the new
    /// epoch; `sent`: when the request left, where the lease starts) and publishes the mastership.
    fn took_over(&mut self, client: &zk::Client, stat: &zk::Stat, sent: u64) {
        *self.shared.held() = Some(Held {
            node_version: 0,
            companion_version: stat.version,
        });
        self.epoch = Some((stat.mzxid, stat.mzxid));
        self.note_epoch(stat.mzxid);
        self.designation = None;
        self.waiting_for = None;
        self.shared
            .lease
            .extend(sent, lease::lease_for(client.session_timeout()));
        self.publish(Role::Master { epoch: stat.mzxid });
    }

    /// What a failed takeover means, by the failed operation (`at`: the indexes of the create,
    /// the companion's write and our participant node's write).
    async fn takeover_failed(
        &mut self,
        client: &zk::Client,
        error: zk::MultiWriteError,
        at: [usize; 3],
    ) -> Next {
        let [create, companion_at, own_at] = at;
        match error {
            zk::MultiWriteError::OperationFailed {
                index,
                source: zk::Error::NoAuth,
            } => Next::Refused(self.refused_at(client, index, at)),
            zk::MultiWriteError::OperationFailed {
                index,
                source: zk::Error::NoNode,
            } if index == own_at => {
                // Our participant node is gone (deleted by hand): create it again first.
                self.participant_in = None;
                Next::Again
            }
            zk::MultiWriteError::OperationFailed {
                index,
                source: zk::Error::NoNode,
            } if index == create || index == companion_at => {
                match prepare(client, &self.path, self.session.node_acl()).await {
                    Ok(()) => Next::Again,
                    Err(e) => {
                        warn!(error = %e, "cannot prepare the election nodes");
                        Next::Pause
                    }
                }
            }
            // Someone took the node, or the companion, the node or the taker record (last)
            // changed since we read them: look again.
            zk::MultiWriteError::OperationFailed { index, source }
                if (index <= companion_at
                    && matches!(
                        source,
                        zk::Error::NodeExists | zk::Error::BadVersion | zk::Error::NoNode
                    ))
                    || (index > own_at && source == zk::Error::BadVersion) =>
            {
                Next::Again
            }
            zk::MultiWriteError::RequestFailed { source } => {
                // No reply (connection lost, timed out): the create may have happened. The next
                // read compares the node's ephemeralOwner with our session before anything else
                // is decided.
                debug!(path = %self.path, error = %source, "takeover reply lost; checking the node's owner");
                Next::Again
            }
            e => {
                debug!(error = %e, path = %self.path, "takeover failed");
                Next::Pause
            }
        }
    }

    /// The node a takeover's operation `index` wrote (`at`: as in `takeover_failed`).
    fn refused_at(&self, client: &zk::Client, index: usize, at: [usize; 3]) -> String {
        let [_, companion_at, own_at] = at;
        if index == companion_at {
            self.companion.clone()
        } else if index == own_at {
            participant_path(&self.path, client.session_id().0)
        } else {
            self.path.clone()
        }
    }

    /// Deletes our node and names the designee in the companion, atomically.
    pub(super) async fn hand_over(
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
        super::drain::before_release(&self.shared, lease, &self.path).await;
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
