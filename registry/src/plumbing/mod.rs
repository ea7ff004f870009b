//! The ZooKeeper plumbing under the recipes, as Curator keeps `ZKPaths` and `EnsurePath` in its
//! client layer rather than in a recipe: paths ([`path`]: validation, parents, creating them),
//! the create modes every node of zoorpc is made with (with the session's [`NodeAcl`]), and requests that went unanswered
//! (`requests`: classifying them, waiting for the connection to come back, the one retry
//! pause). Recipes (registration, discovery, election, jobs) import from here, never from each
//! other.

use zookeeper_client as zk;

pub mod path;
mod requests;

pub(crate) use path::{ensure_path, parent};
pub(crate) use requests::{MAX_LOST_REPLIES, RETRY_PAUSE, unanswered, wait_reconnected};

use crate::auth::NodeAcl;

/// Anyone reads; the creating session's authenticated identity (the `auth` scheme stands for
/// every identity the session authenticated with) may do everything.
static OWNER_ALL_ANYONE_READ: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
];

impl NodeAcl {
    /// The ZooKeeper ACL list of this policy.
    pub(crate) fn acls(self) -> zk::Acls<'static> {
        match self {
            NodeAcl::Open => zk::Acls::anyone_all(),
            NodeAcl::Owner => zk::Acls::new(&OWNER_ALL_ANYONE_READ),
        }
    }
}

/// A persistent node (parents, the election's companion, job records).
pub(crate) fn persistent(acl: NodeAcl) -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(acl.acls())
}

/// An ephemeral node (the master node): it goes with the session.
pub(crate) fn ephemeral(acl: NodeAcl) -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(acl.acls())
}

/// An ephemeral sequential node (a provider's registration).
pub(crate) fn ephemeral_sequential(acl: NodeAcl) -> zk::CreateOptions<'static> {
    zk::CreateMode::EphemeralSequential.with_acls(acl.acls())
}
