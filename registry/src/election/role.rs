//! Roles and how they are published: a watch of the current role (coalesced, for waiting on a
//! state), an atomic for `is_master` (one load), and every change in order for each
//! [`RoleChanges`] subscriber, none coalesced.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

/// A contender's role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Joined, first decision not made yet.
    Joining,
    /// This contender is the master; `epoch` is its fencing token.
    Master {
        /// The zxid that made this contender master; only grows.
        epoch: i64,
    },
    /// Another contender is (or is about to become) master: `master` is the address in the
    /// node's data.
    Standby {
        /// The master's address as the node holds it (`host:port`).
        master: String,
    },
    /// The node is vacant (its holder, perhaps this contender, is gone) and this contender is
    /// about to run for it; not master. A master whose node is deleted under it reports this
    /// before it tries to take the node back.
    Electing,
    /// The connection to ZooKeeper is lost; not master until it is back.
    Disconnected,
    /// Resigned or dropped: no longer contending.
    Left,
}

impl Role {
    /// Whether this is [`Role::Master`].
    pub fn is_master(&self) -> bool {
        matches!(self, Role::Master { .. })
    }

    /// The epoch, if master.
    ///
    /// ```
    /// use zoorpc_registry::Role;
    /// assert_eq!(Role::Master { epoch: 42 }.epoch(), Some(42));
    /// assert_eq!(Role::Electing.epoch(), None);
    /// assert!(Role::Master { epoch: 42 }.is_master() && !Role::Disconnected.is_master());
    /// ```
    pub fn epoch(&self) -> Option<i64> {
        match self {
            Role::Master { epoch } => Some(*epoch),
            _ => None,
        }
    }
}

/// `master epoch=<n>`, `standby master=<addr>`, `electing`, `disconnected`, `joining`, `left` (what
/// `ha_server` prints after `role `). A master whose data is not a valid address (whitespace,
/// control characters: anyone who may write the node can put a newline there) is shown quoted
/// with Rust's escapes, so the line stays one line and names no address.
///
/// ```
/// use zoorpc_registry::Role;
/// assert_eq!(Role::Master { epoch: 42 }.to_string(), "master epoch=42");
/// let standby = Role::Standby { master: "127.0.0.1:9090".into() };
/// assert_eq!(standby.to_string(), "standby master=127.0.0.1:9090");
/// assert!(!standby.is_master());
/// let forged = Role::Standby { master: "evil\nrole master epoch=9".into() };
/// assert_eq!(forged.to_string(), r#"standby master="evil\nrole master epoch=9""#);
/// ```
impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Joining => f.write_str("joining"),
            Role::Master { epoch } => write!(f, "master epoch={epoch}"),
            Role::Standby { master } if super::validate_address(master).is_ok() => {
                write!(f, "standby master={master}")
            }
            Role::Standby { master } => write!(f, "standby master={master:?}"),
            Role::Electing => f.write_str("electing"),
            Role::Disconnected => f.write_str("disconnected"),
            Role::Left => f.write_str("left"),
        }
    }
}

/// One role change and the instant the contender adopted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
    /// When it was adopted ([`MasterElection::is_master`](super::MasterElection::is_master) changed at this instant).
    pub at: std::time::Instant,
}

/// Every role change of one election, in order, none coalesced. Starts with the role at the
/// time of [`MasterElection::changes`](super::MasterElection::changes); ends after [`Role::Left`].
#[derive(Debug)]
pub struct RoleChanges {
    pub(super) rx: mpsc::UnboundedReceiver<RoleChange>,
}

impl RoleChanges {
    /// The next change; `None` once the election has left.
    pub async fn next(&mut self) -> Option<RoleChange> {
        self.rx.recv().await
    }

    /// The next change if one is already there.
    pub fn try_next(&mut self) -> Option<RoleChange> {
        self.rx.try_recv().ok()
    }
}

/// The versions of the master node and its companion as last seen while master: what a fenced
/// write checks and what deletes exactly our node.
#[derive(Clone, Copy, Debug)]
pub(super) struct Held {
    pub(super) node_version: i32,
    pub(super) companion_version: i32,
}

#[derive(Debug)]
pub(super) struct Shared {
    /// The current role, for `role()` and `subscribe()`.
    pub(super) role: watch::Sender<Role>,
    /// Whether the role is master: `is_master()` in one load.
    pub(super) master: AtomicBool,
    /// `changes()` subscribers.
    pub(super) listeners: Mutex<Listeners>,
    /// Our node's and the companion's versions while master (what resign deletes).
    pub(super) held: Mutex<Option<Held>>,
    /// The node ZooKeeper refused this identity the takeover of (the campaign stopped).
    pub(super) refused: Mutex<Option<String>>,
    /// Until when the master may serve without hearing from ZooKeeper again (`lease.rs`).
    pub(super) lease: super::lease::LeaseEnd,
}

/// Subscribers of [`RoleChanges`], and the last change (for a new subscriber's first item).
#[derive(Debug)]
pub(super) struct Listeners {
    pub(super) senders: Vec<mpsc::UnboundedSender<RoleChange>>,
    pub(super) last: RoleChange,
}

impl Shared {
    pub(super) fn listeners(&self) -> MutexGuard<'_, Listeners> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn held(&self) -> MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adopts `role`; returns whether it changed. The listener lock orders publications with
    /// subscriptions, so every listener sees every change exactly once. [`Role::Left`] is
    /// final: a campaign still finishing a step after its contender resigned publishes nothing.
    pub(super) fn publish(&self, role: Role) -> bool {
        let mut listeners = self.listeners();
        if *self.role.borrow() == role || *self.role.borrow() == Role::Left {
            return false;
        }
        self.master.store(role.is_master(), Ordering::SeqCst);
        if !role.is_master() {
            // After the flag: a reader seeing the lease gone also sees the role.
            self.lease.clear();
        }
        self.role.send_replace(role.clone());
        let change = RoleChange {
            role,
            at: std::time::Instant::now(),
        };
        listeners.senders.retain(|l| l.send(change.clone()).is_ok());
        if matches!(change.role, Role::Left) {
            listeners.senders.clear();
        }
        listeners.last = change;
        true
    }
}
