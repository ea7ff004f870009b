//! Creating a registration's node, surviving a lost reply: a `provider<seq>` child
//! ([`NodeName::Sequential`]) or a node of a fixed name ([`NodeName::Fixed`], the Curator
//! layout's `<base>/<name>/<id>`).

use tracing::{debug, warn};
use zookeeper_client as zk;

use crate::auth::NodeAcl;
use crate::error::{Error, Result};
use crate::plumbing::{
    MAX_LOST_REPLIES, ensure_path, ephemeral, ephemeral_sequential, unanswered, wait_reconnected,
};
use crate::session::SessionStatus;

use super::PROVIDER_PREFIX;

/// How a registration's node is named.
#[derive(Clone, Debug)]
pub(super) enum NodeName {
    /// `<base>/provider<seq>`, numbered by ZooKeeper (`EPHEMERAL_SEQUENTIAL`).
    Sequential,
    /// `<base>/<id>`, the same name in every session (`EPHEMERAL`).
    Fixed(String),
}

/// Creates the node under `base` holding `data`, surviving a lost reply; its path.
pub(super) async fn create_node(
    status: &SessionStatus,
    acl: NodeAcl,
    base: &str,
    name: &NodeName,
    data: &[u8],
) -> Result<String> {
    match name {
        NodeName::Sequential => create_sequential(status, acl, base, data).await,
        NodeName::Fixed(id) => create_fixed(status, acl, base, id, data).await,
    }
}

/// `<base>/provider<seq>`: after a lost reply the node is looked up by owner and data.
async fn create_sequential(
    status: &SessionStatus,
    acl: NodeAcl,
    base: &str,
    data: &[u8],
) -> Result<String> {
    let client = &status.client;
    let prefix = format!("{base}/{PROVIDER_PREFIX}");
    let mut lost_replies = 0;
    loop {
        match client
            .create(&prefix, data, &ephemeral_sequential(acl))
            .await
        {
            Ok((_, seq)) => return Ok(format!("{prefix}{seq}")),
            Err(zk::Error::NoNode) => ensure_path(client, base, acl).await?,
            Err(e) if unanswered(&e) && lost_replies < MAX_LOST_REPLIES => {
                lost_replies += 1;
                // The create may have happened. Wait for the link, then look for our node.
                debug!(error = %e, path = %prefix, "no reply to create; looking for our node");
                if let Some(node) =
                    after_loss(client, || find_own_child(client, base, data)).await?
                {
                    debug!(node = %node, "create reply was lost, but the node exists");
                    return Ok(node);
                }
            }
            Err(e) => return Err(Error::zk("create", &prefix, e)),
        }
    }
}

/// `<base>/<id>`. Found there already: ours (this session's, a lost reply) is kept; another
/// session's (an earlier session of this instance not yet expired by ZooKeeper, or a stale
/// copy) is deleted and created again, as Curator's `ServiceDiscoveryImpl` does, so watchers
/// see the new node.
async fn create_fixed(
    status: &SessionStatus,
    acl: NodeAcl,
    base: &str,
    id: &str,
    data: &[u8],
) -> Result<String> {
    let client = &status.client;
    let path = format!("{base}/{id}");
    let mut lost_replies = 0;
    loop {
        match client.create(&path, data, &ephemeral(acl)).await {
            Ok(_) => return Ok(path),
            Err(zk::Error::NoNode) => ensure_path(client, base, acl).await?,
            Err(zk::Error::NodeExists) => match client.get_data(&path).await {
                Ok((_, stat)) if stat.ephemeral_owner == client.session_id().0 => return Ok(path),
                Ok((_, stat)) => {
                    warn!(node = %path, owner = stat.ephemeral_owner, "our instance's node is held by another session; replacing it");
                    match client.delete(&path, Some(stat.version)).await {
                        Ok(()) | Err(zk::Error::NoNode) | Err(zk::Error::BadVersion) => {}
                        Err(e) => return Err(Error::zk("delete", &path, e)),
                    }
                }
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(Error::zk("read", &path, e)),
            },
            Err(e) if unanswered(&e) && lost_replies < MAX_LOST_REPLIES => {
                lost_replies += 1;
                debug!(error = %e, node = %path, "no reply to create; looking for our node");
                if let Some(node) = after_loss(client, || find_own_node(client, &path)).await? {
                    return Ok(node);
                }
            }
            Err(e) => return Err(Error::zk("create", &path, e)),
        }
    }
}

/// After a create went unanswered: once connected again (same session), what `find` finds.
async fn after_loss<F, Fut>(client: &zk::Client, find: F) -> Result<Option<String>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>>>,
{
    let mut attempts = 0;
    loop {
        wait_reconnected(client).await?;
        match find().await {
            Err(Error::ZooKeeper { source, .. })
                if unanswered(&source) && attempts < MAX_LOST_REPLIES =>
            {
                attempts += 1;
            }
            found => return found,
        }
    }
}

/// `path` if this session owns it.
async fn find_own_node(client: &zk::Client, path: &str) -> Result<Option<String>> {
    match client.get_data(path).await {
        Ok((_, stat)) if stat.ephemeral_owner == client.session_id().0 => Ok(Some(path.to_owned())),
        Ok(_) | Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(Error::zk("read", path, e)),
    }
}

/// A `provider<seq>` child of `base` owned by this session whose data is `data`.
async fn find_own_child(client: &zk::Client, base: &str, data: &[u8]) -> Result<Option<String>> {
    let children = match client.list_children(base).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Ok(None),
        Err(e) => return Err(Error::zk("list", base, e)),
    };
    let me = client.session_id().0;
    for child in children.iter().filter(|c| c.starts_with(PROVIDER_PREFIX)) {
        let path = format!("{base}/{child}");
        match client.get_data(&path).await {
            Ok((d, stat)) if stat.ephemeral_owner == me && d == data => return Ok(Some(path)),
            Ok(_) | Err(zk::Error::NoNode) => {}
            Err(e) => return Err(Error::zk("read", &path, e)),
        }
    }
    Ok(None)
}
