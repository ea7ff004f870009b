//! `MasterElection`: active/standby election on one `EPHEMERAL` node, with fencing.
//!
//! The recipe, as the seeds lay it out: every contender tries to create the `EPHEMERAL` node at a
//! well-known path (default `/soa/master/services/<Service>:<version>`) with its own address
//! (`host:port`) as data. The one that creates it is the master; the others stand by, watching
//! the node, and run again when it is deleted. Whoever's address is in the node's data is the
//! master, so an operator hands mastership over by setting the data ([`designate`]).
//!
//! Next to the node sits one persistent companion, `<path>.epoch` (an `EPHEMERAL` node cannot
//! have children). A contender becomes master in one multi-op that creates the node *and* writes
//! the companion, so the companion's `mzxid` is always the epoch of the current master, its
//! `version` counts takeovers and handovers, and its data names the designated successor while
//! a handover is under way (empty otherwise).
//!
//! ## Guarantees
//! - At most one master at a time as seen by ZooKeeper: a contender reports
//!   [`Role::Master`] only after ZooKeeper confirmed that the node is owned by its session
//!   (`ephemeralOwner`) and holds its address, and it reports something else *before* it does
//!   anything that lets another contender take over (deleting its node).
//! - Connection lost: the contender stops being master at once ([`Role::Disconnected`]), without
//!   waiting for the session to expire. A connection that goes silent (a partition) is declared
//!   lost by the client after at most 3/5 of the session timeout (zookeeper-client's read
//!   timeout), before ZooKeeper can expire the session and let a standby in. Back in the same session with the node still its own, it is
//!   master again with the same epoch. Session expired: the `Session` opens a new one and the
//!   contender runs again in it.
//! - Master node deleted by someone else (`zkCli.sh delete <path>`): the holder reports
//!   [`Role::Electing`] the moment its watch says so, before it reads or tries anything, then
//!   runs again. Such a vacancy is not announced (a resign or a handover writes `<path>.epoch`
//!   in the transaction that deletes the node; a deletion by someone else or a session expiry
//!   does not), so the other contenders leave it to its last holder for 50 ms before they run:
//!   a holder alive takes its node back, and no other contender is master before it has
//!   stepped down. (The holder can only learn of the deletion from ZooKeeper's notification;
//!   the 50 ms cover that notification's delivery.)
//! - A `create` whose reply was lost is resolved by reading the node and comparing its
//!   `ephemeralOwner` with this session's id.
//! - Epoch (the fencing token): the companion's `mzxid` while this contender is master, i.e. the
//!   zxid of the transaction that made it master (the node's `czxid`), or of its last repair of
//!   the companion. It only grows, within one ZooKeeper history (see below).
//! - A tampered companion (`<path>.epoch` deleted, re-created or written by hand): the master
//!   watches it and repairs it in one transaction that checks the version of its own node (so
//!   only the holder of the node can); the new `mzxid` is its new epoch, reported as a new
//!   [`Role::Master`], and fenced writes (job claims) work again under it. Until then fenced
//!   writes fail with [`Error::Fenced`] naming the cause. A designation by data still reaches
//!   the designee: the handover re-creates the companion naming it.
//! - Epochs are ZooKeeper transaction ids: they compare only within one ZooKeeper history. An
//!   ensemble whose data was wiped starts a new history: the sessions are gone, contenders run
//!   again in new ones, and the new master's epoch is smaller than the old one. Anything that
//!   stored an epoch outside ZooKeeper (to compare fencing tokens) must be reset with it.
//! - Handover by data: the holder, seeing another address in its node, reports standby, then
//!   deletes its node and names the designee in `<path>.epoch`, atomically. The designee takes
//!   over at once (within milliseconds; until then nobody is master); the other contenders give
//!   it [`ElectionOptions::handover_grace`] before they run again, so a designee that is not
//!   running does not leave the service without a master. Designating the current master changes
//!   nothing. If the holder's session expires before it hands over, everyone runs again.
//! - [`Fence::write`] commits only while the fence's holder is still the master (a multi-op
//!   that checks the versions of the node and of `<path>.epoch`): a deposed master's write fails
//!   with [`Error::Fenced`], whatever connection or session carries it.
//! - [`MasterElection::resign`] reports [`Role::Left`], then deletes the node (announcing the
//!   vacancy in `<path>.epoch`, so a standby takes over at once) and returns once ZooKeeper
//!   confirmed it. Dropping the election does the same in the background.
//!
//! ## Layout
//! - `role.rs`: [`Role`], [`RoleChange`], [`RoleChanges`] and how a role is published.
//! - `handle.rs`: [`MasterElection`] (join, resign, leave on drop), [`designate`].
//! - `campaign.rs`: the state machine behind a contender: read the node, decide, wait.
//! - `writes.rs`: every transaction that changes who holds the node (take over, hand over,
//!   repair the companion, release).
//! - `fence.rs`: [`Fence`], writes that commit only while their holder is master.
//! - `address.rs`: the one reading of an address in the node's (or the companion's) data.
//!
//! What a process knows is what its client has seen: a process paused (GC, `SIGSTOP`) still
//! believes it is master until it runs again and sees the disconnect. Guard side effects with
//! the [`Fence`], as [`crate::master_job`] does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_registry::Error> {
//! use zoorpc_registry::{MasterElection, Role, Session};
//! let session = Session::connect_to("127.0.0.1:2181").await?;
//! let election =
//!     MasterElection::join(&session, "/soa/master/services/HelloService:1.0.0", "127.0.0.1:9090")
//!         .await?;
//! let mut changes = election.changes();
//! while let Some(change) = changes.next().await {
//!     match change.role {
//!         Role::Master { epoch } => println!("master, epoch {epoch}"),
//!         Role::Standby { master } => println!("standby, the master is {master}"),
//!         other => println!("{other}"),
//!     }
//! #   break;
//! }
//! election.resign().await?;
//! # Ok(()) }
//! ```

mod address;
mod campaign;
mod fence;
mod handle;
mod role;
mod writes;

pub use address::{read_address, validate_address};
pub use fence::Fence;
pub use handle::{ElectionOptions, MasterElection, designate};
pub use role::{Role, RoleChange, RoleChanges};

use zookeeper_client as zk;

use crate::auth::NodeAcl;
use crate::error::{Error, Result};
use crate::plumbing::{ensure_path, parent, persistent};

/// The default election path of a service: `/soa/master/services/<service>:<version>`.
///
/// ```
/// use zoorpc_registry::default_master_path;
/// assert_eq!(default_master_path("Billing", "2.1"), "/soa/master/services/Billing:2.1");
/// ```
pub fn default_master_path(service: &str, version: &str) -> String {
    format!("/soa/master/services/{service}:{version}")
}

/// The suffix of the persistent companion node `<path>.epoch`.
pub const COMPANION_SUFFIX: &str = ".epoch";

/// The companion node of a master path: `<path>.epoch`.
///
/// ```
/// use zoorpc_registry::election::{companion_path, default_master_path};
/// let path = default_master_path("HelloService", "1.0.0");
/// assert_eq!(path, "/soa/master/services/HelloService:1.0.0");
/// assert_eq!(companion_path(&path), "/soa/master/services/HelloService:1.0.0.epoch");
/// ```
pub fn companion_path(path: &str) -> String {
    format!("{path}{COMPANION_SUFFIX}")
}

/// Creates the parents of the node and the companion `<path>.epoch`.
pub(crate) async fn prepare(client: &zk::Client, path: &str, acl: NodeAcl) -> Result<()> {
    if let Some(parent) = parent(path) {
        ensure_path(client, parent, acl).await?;
    }
    let companion = companion_path(path);
    match client.create(&companion, b"", &persistent(acl)).await {
        Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
        Err(e) => Err(Error::zk("create", &companion, e)),
    }
}
