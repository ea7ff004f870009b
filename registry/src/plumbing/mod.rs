//! The ZooKeeper plumbing under the recipes, as Curator keeps `ZKPaths` and `EnsurePath` in its
//! client layer rather than in a recipe: paths ([`path`]: validation, parents, creating them),
//! the create modes every node of zoorpc is made with, and requests that went unanswered
//! (`requests`: classifying them, waiting for the connection to come back, the one retry
//! pause). Recipes (registration, discovery, election, jobs) import from here, never from each
//! other.

use zookeeper_client as zk;

pub mod path;
mod requests;

pub(crate) use path::{ensure_path, parent};
pub(crate) use requests::{MAX_LOST_REPLIES, RETRY_PAUSE, unanswered, wait_reconnected};

/// A persistent node anyone may read and change (parents, the election's companion, job
/// records).
pub(crate) fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// An ephemeral node (the master node): it goes with the session.
pub(crate) fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

/// An ephemeral sequential node (a provider's registration).
pub(crate) fn ephemeral_sequential() -> zk::CreateOptions<'static> {
    zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all())
}
