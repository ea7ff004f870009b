//! [`Fence`]: a master's fencing token, and writes that commit only while its holder is still
//! the master (one transaction that checks the versions of the node and of `<path>.epoch`).

use zookeeper_client as zk;

use super::address::read_address;
use super::companion_path;
use super::role::Held;
use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;
use crate::plumbing::{ensure_path, parent, persistent};
use crate::session::Session;

/// A master's fencing token: the election path, the master's address and its epoch. Plain data,
/// so it can be handed to jobs, logged, or reconstructed from a `role master epoch=<n>` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The election path.
    pub path: String,
    /// The master's address.
    pub address: String,
    /// The master's epoch.
    pub epoch: i64,
}

impl Fence {
    /// Whether the holder of this fence is still the master, as ZooKeeper sees it now.
    pub async fn is_current(&self, session: &Session) -> Result<bool> {
        Ok(self.versions(&session.client()).await?.is_ok())
    }

    /// Writes `data` to the persistent node `target` (created, with its parents, when missing)
    /// only if this fence's holder is still the master; otherwise [`Error::Fenced`].
    ///
    /// The check and the write are one ZooKeeper transaction: it checks that the master node
    /// and `<path>.epoch` still have the versions read when the fence was verified, so no
    /// takeover, handover or designation can slip in between.
    ///
    /// ```no_run
    /// # async fn demo(election: zoorpc_registry::MasterElection) -> Result<(), zoorpc_registry::Error> {
    /// use zoorpc_registry::Error;
    /// if let Some(fence) = election.fence() {
    ///     match fence.write(election.session(), "/reports/daily", b"done").await {
    ///         Ok(()) => println!("written as the master of epoch {}", fence.epoch),
    ///         Err(Error::Fenced { reason, .. }) => println!("deposed, not written: {reason}"),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn write(&self, session: &Session, target: &str, data: &[u8]) -> Result<()> {
        let target = validate_path(target)?;
        let client = session.client();
        let fenced = |reason: String| Error::Fenced {
            path: target.to_owned(),
            epoch: self.epoch,
            reason,
        };
        let companion = companion_path(&self.path);
        // A few rounds: the target may need creating, or be created by a predecessor meanwhile.
        for _ in 0..5 {
            let versions = self.versions(&client).await?.map_err(fenced)?;
            let exists = client
                .check_stat(target)
                .await
                .map_err(|e| Error::zk("read", target, e))?
                .is_some();
            let mut writer = client.new_multi_writer();
            let added = writer
                .add_check_version(&companion, versions.companion_version)
                .and_then(|()| writer.add_check_version(&self.path, versions.node_version))
                .and_then(|()| {
                    if exists {
                        writer.add_set_data(target, data, None)
                    } else {
                        writer.add_create(target, data, &persistent(session.node_acl()))
                    }
                });
            added.map_err(|e| Error::zk("fenced write", target, e))?;
            match writer.commit().await {
                Ok(_) => return Ok(()),
                Err(zk::MultiWriteError::OperationFailed { index: 0 | 1, .. }) => {
                    return Err(fenced(
                        "the master node or its companion changed during the write".into(),
                    ));
                }
                Err(zk::MultiWriteError::OperationFailed {
                    source: zk::Error::NoNode,
                    ..
                }) => {
                    if let Some(parent) = parent(target) {
                        ensure_path(&client, parent, session.node_acl()).await?;
                    }
                }
                Err(zk::MultiWriteError::OperationFailed {
                    source: zk::Error::NodeExists,
                    ..
                }) => {}
                Err(e) => return Err(Error::zk("fenced write", target, e.into())),
            }
        }
        Err(Error::zk(
            "fenced write",
            target,
            zk::Error::UnexpectedError("the target kept appearing and vanishing".into()),
        ))
    }

    /// Reads `<path>.epoch` and then the node; their versions if this fence's holder is still
    /// the master, else why not.
    async fn versions(&self, client: &zk::Client) -> Result<std::result::Result<Held, String>> {
        let companion = companion_path(&self.path);
        // Pipelined, in this order: both requests leave before we wait for either.
        let companion_read = client.get_data(&companion);
        let node = client.get_data(&self.path);
        let (companion_read, node) = (companion_read.await, node.await);
        let (companion_stat, (data, node_stat)) = match (companion_read, node) {
            (Ok((_, m)), Ok(n)) => (m, n),
            (_, Err(zk::Error::NoNode)) => {
                return Ok(Err(format!("the master node {} is gone", self.path)));
            }
            (Err(zk::Error::NoNode), _) => {
                return Ok(Err(format!(
                    "the election companion {companion} is missing (deleted by hand?); the election repairs it under a new epoch"
                )));
            }
            (Err(e), _) => return Err(Error::zk("read", &companion, e)),
            (_, Err(e)) => return Err(Error::zk("read", &self.path, e)),
        };
        // The companion is written by every takeover, handover and repair: holding this epoch
        // as its mzxid means none happened since. The node must hold our address and be no
        // newer than the epoch (a node created by hand later is not ours).
        let holder = read_address(&data).unwrap_or_else(|raw| raw);
        if companion_stat.mzxid != self.epoch {
            Ok(Err(format!(
                "{companion} was written since this epoch (mzxid {}): a takeover, a handover, a repair or a hand edit",
                companion_stat.mzxid
            )))
        } else if holder != self.address {
            Ok(Err(format!(
                "the master node names {holder}, not {}",
                self.address
            )))
        } else if node_stat.czxid > self.epoch {
            Ok(Err("the master node was created after this epoch".into()))
        } else {
            Ok(Ok(Held {
                node_version: node_stat.version,
                companion_version: companion_stat.version,
            }))
        }
    }
}
