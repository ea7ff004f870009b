//! Taking the master node: a vacancy, or over a holder that is gone or not one of ours, with
//! the companion's write and our marks in the same transaction (the rules are the module's,
//! [`super`]).

use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::super::campaign::{Campaign, Next};
use super::super::lease;
use super::super::participants::{self, participant_path};
use super::super::prepare;
use super::super::role::{Held, Role};
use super::{Depose, Takeover};
use crate::plumbing::ephemeral;

impl Campaign {
    /// Takes the vacant node: creates it, rewrites the companion (at the version the decision
    /// was made on: anything written since makes it fail, and the campaign looks again) and
    /// marks our participant node with the same zxid, in one transaction.
    pub(in crate::election) async fn take(
        &mut self,
        client: &zk::Client,
        companion_version: i32,
    ) -> Next {
        self.take_over(client, None, companion_version).await
    }

    /// Takes over a node that names us but is held by a session that is not one of ours (no
    /// participant node, e.g. seed 004's own contender, which never hands over): deletes it at
    /// the version read and creates ours in the same transaction as `take`'s.
    pub(in crate::election) async fn take_from(
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
    pub(in crate::election) async fn take_over(
        &mut self,
        client: &zk::Client,
        depose: Option<Depose>,
        companion_version: i32,
    ) -> Next {
        self.take_over_at(client, depose, companion_version, None)
            .await
    }

    /// [`Campaign::take_over`], with the taker record written at `record_version` when given.
    pub(in crate::election) async fn take_over_at(
        &mut self,
        client: &zk::Client,
        depose: Option<Depose>,
        companion_version: i32,
        record_version: Option<i32>,
    ) -> Next {
        let record = self.own_record(client);
        let Some(mut takeover) =
            self.build_takeover(client, depose, companion_version, (&record, record_version))
        else {
            return Next::Pause;
        };
        let sent = lease::now();
        if self.stopped() {
            return Next::Again;
        }
        let result = takeover.writer.commit().await;
        match self.committed(client, result, &takeover).await {
            Ok(stat) => {
                self.took_over(client, &stat, sent);
                // Read again to arm the watch on our node.
                Next::Again
            }
            Err(next) => next,
        }
    }

    /// The takeover transaction, not sent yet: deletes a deposed holder's node (and its
    /// participant node) if any, creates ours, writes the companion at the version the decision
    /// was made on, marks our participant node and writes the taker record (`record`: its data
    /// and the version it is written at), all or nothing. `None`: it cannot be built (logged).
    pub(in crate::election) fn build_takeover<'c>(
        &self,
        client: &'c zk::Client,
        depose: Option<Depose>,
        companion_version: i32,
        record: (&str, Option<i32>),
    ) -> Option<Takeover<'c>> {
        // The operations' indexes, for the errors below.
        let first = depose
            .as_ref()
            .map_or(0, |d| 1 + usize::from(d.participant.is_some()));
        let at = [first, first + 1, first + 2];
        let mut writer = client.new_multi_writer();
        let own = participant_path(&self.path, client.session_id().0);
        let me = client.session_id().0;
        // The marks' operations come after the taker record's.
        let mark = (self.marked_in != Some(me)).then_some(at[2] + 2);
        let added = self
            .takeover_request(&mut writer, depose.as_ref(), companion_version, &own)
            // Last: the other operations' indexes stay as `takeover_failed` reads them.
            .and_then(|()| self.add_taker_record(&mut writer, record))
            .and_then(|()| match mark {
                Some(_) => self.add_marks(&mut writer, me),
                None => Ok(()),
            });
        if let Err(e) = added {
            warn!(error = %e, "cannot build the takeover request");
            return None;
        }
        Some(Takeover { writer, at, mark })
    }

    /// What a sent takeover's `result` means: the companion's write (its `mzxid` is the new
    /// epoch) when it committed, or what to do next.
    pub(in crate::election) async fn committed(
        &mut self,
        client: &zk::Client,
        result: std::result::Result<Vec<zk::MultiWriteResult>, zk::MultiWriteError>,
        takeover: &Takeover<'_>,
    ) -> std::result::Result<zk::Stat, Next> {
        let me = client.session_id().0;
        match result {
            Ok(results) => {
                let Some(zk::MultiWriteResult::SetData { stat }) = results.get(takeover.at[1])
                else {
                    // Cannot happen with a successful multi; read the node to find out.
                    return Err(Next::Again);
                };
                if takeover.mark.is_some() {
                    self.marked_in = Some(me);
                }
                Ok(*stat)
            }
            Err(zk::MultiWriteError::OperationFailed { index, source })
                if takeover.mark.is_some_and(|first| index >= first) =>
            {
                Err(self.mark_failed(client, source).await)
            }
            Err(e) => Err(self.takeover_failed(client, e, takeover.at).await),
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
    pub(in crate::election) fn took_over(
        &mut self,
        client: &zk::Client,
        stat: &zk::Stat,
        sent: u64,
    ) {
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
}
