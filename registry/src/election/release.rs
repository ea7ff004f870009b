//! Releasing the master node (resigning): deletes exactly our node, announcing the vacancy, in
//! one ZooKeeper multi-op with the companion's write, so no other contender can see half of it.
//! Bounded: a few attempts across reconnects; a session that ended took the node with it.

use tracing::{debug, info};
use zookeeper_client as zk;

use super::companion_path;
use super::participants::{parse_taker, participant_path, participants_path, released_record};
use super::role::Held;
use crate::error::{Error, Result};
use crate::plumbing::unanswered;
use crate::session::Session;

/// Deletes our participant node (leaving the election); it goes with the session otherwise.
async fn leave(client: &zk::Client, path: &str, session: i64) {
    let node = participant_path(path, session);
    match client.delete(&node, None).await {
        Ok(()) | Err(zk::Error::NoNode) => {}
        Err(e) => {
            debug!(error = %e, %node, "could not delete the participant node; it goes with the session")
        }
    }
}

/// Deletes our node, if it is still ours. Bounded: a few attempts across reconnects.
pub(super) async fn release(session: &Session, path: &str, held: Option<Held>) -> Result<()> {
    let client = session.client();
    let me = client.session_id().0;
    if let Some(held) = held
        && quick_release(&client, path, me, held).await
    {
        return Ok(());
    }
    for _ in 0..10 {
        let status =
            match tokio::time::timeout(session.session_timeout(), session.connected()).await {
                Ok(status) => status,
                // Still disconnected after a session timeout: the session (and the node) is gone.
                Err(_) => return Ok(()),
            };
        let client = status.client;
        if client.session_id().0 != me {
            // A new session: the node of the old one went with it.
            return Ok(());
        }
        match release_attempt(&client, path, me).await? {
            Release::Done => return Ok(()),
            Release::Again => {}
        }
    }
    Err(Error::zk(
        "delete",
        path,
        zk::Error::UnexpectedError("the node kept changing while resigning".into()),
    ))
}

/// Deletes our node at the versions we last saw, without reading it first. `true`: resigned
/// (or the node was already gone); `false`: the slow path in `release` must read the node.
async fn quick_release(client: &zk::Client, path: &str, me: i64, held: Held) -> bool {
    let companion = companion_path(path);
    // `<path>.epoch` unchanged since we last saw our node means the node at the path is
    // still ours (any takeover rewrites it), so this deletes exactly our node. Writing the
    // companion in the same transaction announces the vacancy: the others take over at once.
    // Our participant node goes in it too, so no second write follows a standby's takeover
    // into ZooKeeper's queue.
    let mut writer = client.new_multi_writer();
    let added = writer
        .add_set_data(&companion, b"", Some(held.companion_version))
        .and_then(|()| writer.add_delete(path, Some(held.node_version)))
        .and_then(|()| writer.add_delete(&participant_path(path, me), None))
        // The step-down's record, in the same transaction: the vacancy is announced.
        .and_then(|()| {
            writer.add_set_data(
                &participants_path(path),
                released_record(me).as_bytes(),
                None,
            )
        });
    if added.is_err() {
        return false;
    }
    match writer.commit().await {
        Ok(_) => {
            info!(path, "resigned");
            true
        }
        Err(zk::MultiWriteError::OperationFailed {
            index: 1,
            source: zk::Error::NoNode,
        }) => {
            info!(path, "resigned");
            leave(client, path, me).await;
            true
        }
        Err(e) => {
            debug!(error = %e, "quick release failed; reading the node");
            false
        }
    }
}

/// What one attempt of `release`'s slow path left to do.
enum Release {
    /// Resigned, or nothing of ours is left to delete.
    Done,
    /// No answer, or the node changed under us: try again (bounded by the caller).
    Again,
}

/// Reads the companion and our node, then deletes the node if it is still ours, checked against
/// both versions read.
async fn release_attempt(client: &zk::Client, path: &str, me: i64) -> Result<Release> {
    let companion = companion_path(path);
    let companion_read = client.get_data(&companion);
    let node_read = client.get_data(path);
    let record_read = client.get_data(&participants_path(path));
    let (companion_read, node_read, record_read) =
        (companion_read.await, node_read.await, record_read.await);
    let stat = match node_read {
        Ok((_, stat)) if stat.ephemeral_owner == me => stat,
        Err(zk::Error::SessionExpired) => return Ok(Release::Done),
        Ok(_) | Err(zk::Error::NoNode) => {
            leave(client, path, me).await;
            return Ok(Release::Done);
        }
        Err(e) if unanswered(&e) => return Ok(Release::Again),
        Err(e) => return Err(Error::zk("read", path, e)),
    };
    let mut writer = client.new_multi_writer();
    let added = match &companion_read {
        // Read before the node: unchanged at commit means no takeover since, so the node we
        // saw as ours is still ours.
        Ok((_, m)) => writer
            .add_set_data(&companion, b"", Some(m.version))
            .and_then(|()| writer.add_delete(path, Some(stat.version)))
            // The step-down's record, where it can be written: the vacancy is announced. Unless
            // the node is held on another's behalf (taken without proof, see `poised.rs`): its
            // record, written again, keeps the vacancy waiting for that session.
            .and_then(|()| match &record_read {
                Ok((data, r)) => {
                    let owed = r.mzxid == m.mzxid
                        && parse_taker(data).is_some_and(|(taker, _)| taker != me);
                    let record = if owed {
                        data.clone()
                    } else {
                        released_record(me).into_bytes()
                    };
                    writer.add_set_data(&participants_path(path), &record, None)
                }
                _ => Ok(()),
            }),
        Err(_) => writer.add_delete(path, Some(stat.version)),
    };
    added.map_err(|e| Error::zk("delete", path, e))?;
    match writer.commit().await {
        Ok(_) => {
            info!(path, "resigned");
            leave(client, path, me).await;
            Ok(Release::Done)
        }
        Err(zk::MultiWriteError::RequestFailed {
            source: zk::Error::SessionExpired,
        }) => Ok(Release::Done),
        Err(e) => {
            debug!(error = %e, "release attempt failed; trying again");
            Ok(Release::Again)
        }
    }
}
