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
//!   master again with the same epoch. Session expired: the [`Session`] opens a new one and the
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

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use crate::error::{Error, Result, unanswered};
use crate::path::{parent, validate_path};
use crate::registration::ensure_path;
use crate::session::{Session, SessionStatus};

/// The default election path of a service: `/soa/master/services/<service>:<version>`.
pub fn default_master_path(service: &str, version: &str) -> String {
    format!("/soa/master/services/{service}:{version}")
}

/// The suffix of the persistent companion node `<path>.epoch`.
pub const EPOCH_SUFFIX: &str = ".epoch";

/// The companion node of a master path: `<path>.epoch`.
///
/// ```
/// use zoorpc_registry::election::{default_master_path, epoch_path};
/// let path = default_master_path("HelloService", "1.0.0");
/// assert_eq!(path, "/soa/master/services/HelloService:1.0.0");
/// assert_eq!(epoch_path(&path), "/soa/master/services/HelloService:1.0.0.epoch");
/// ```
pub fn epoch_path(path: &str) -> String {
    format!("{path}{EPOCH_SUFFIX}")
}

/// Pause before retrying after an unexpected ZooKeeper error.
const PAUSE: Duration = Duration::from_millis(100);

/// How long contenders other than the last holder leave a vacancy nobody announced (the node
/// deleted by someone else, or its holder's session expired) to its last holder: a holder whose
/// node was deleted under it hears of it at about the time the others do, and must have stepped
/// down before anyone else can be master. A resign or a handover announces itself by writing
/// `<path>.epoch` in the transaction that deletes the node, and is taken over at once.
const VACANCY_SETTLE: Duration = Duration::from_millis(50);

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
    pub fn epoch(&self) -> Option<i64> {
        match self {
            Role::Master { epoch } => Some(*epoch),
            _ => None,
        }
    }
}

/// `master epoch=<n>`, `standby master=<addr>`, `electing`, `disconnected`, `joining`, `left` (what
/// `ha_server` prints after `role `).
///
/// ```
/// use zoorpc_registry::Role;
/// assert_eq!(Role::Master { epoch: 42 }.to_string(), "master epoch=42");
/// let standby = Role::Standby { master: "127.0.0.1:9090".into() };
/// assert_eq!(standby.to_string(), "standby master=127.0.0.1:9090");
/// assert!(!standby.is_master());
/// ```
impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Joining => f.write_str("joining"),
            Role::Master { epoch } => write!(f, "master epoch={epoch}"),
            Role::Standby { master } => write!(f, "standby master={master}"),
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
    /// When it was adopted ([`MasterElection::is_master`] changed at this instant).
    pub at: std::time::Instant,
}

/// Every role change of one election, in order, none coalesced. Starts with the role at the
/// time of [`MasterElection::changes`]; ends after [`Role::Left`].
#[derive(Debug)]
pub struct RoleChanges {
    rx: mpsc::UnboundedReceiver<RoleChange>,
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

/// Tuning of an election.
#[derive(Clone, Debug)]
pub struct ElectionOptions {
    /// How long contenders other than a designee wait for it to take over after a handover
    /// before they run again themselves. Default 2 s.
    pub handover_grace: Duration,
}

impl Default for ElectionOptions {
    fn default() -> Self {
        ElectionOptions {
            handover_grace: Duration::from_secs(2),
        }
    }
}

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

/// The versions a fenced operation checks, read from ZooKeeper.
#[derive(Clone, Copy, Debug)]
struct Versions {
    node: i32,
    epoch_node: i32,
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
    pub async fn write(&self, session: &Session, target: &str, data: &[u8]) -> Result<()> {
        let target = validate_path(target)?;
        let client = session.client();
        let fenced = |reason: String| Error::Fenced {
            path: target.to_owned(),
            epoch: self.epoch,
            reason,
        };
        let epoch_node = epoch_path(&self.path);
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
                .add_check_version(&epoch_node, versions.epoch_node)
                .and_then(|()| writer.add_check_version(&self.path, versions.node))
                .and_then(|()| {
                    if exists {
                        writer.add_set_data(target, data, None)
                    } else {
                        writer.add_create(target, data, &persistent())
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
                        ensure_path(&client, parent).await?;
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
    async fn versions(&self, client: &zk::Client) -> Result<std::result::Result<Versions, String>> {
        let epoch_node = epoch_path(&self.path);
        // Pipelined, in this order: both requests leave before we wait for either.
        let marker = client.get_data(&epoch_node);
        let node = client.get_data(&self.path);
        let (marker, node) = (marker.await, node.await);
        let (marker_stat, (data, node_stat)) = match (marker, node) {
            (Ok((_, m)), Ok(n)) => (m, n),
            (_, Err(zk::Error::NoNode)) => {
                return Ok(Err(format!("the master node {} is gone", self.path)));
            }
            (Err(zk::Error::NoNode), _) => {
                return Ok(Err(format!(
                    "the election companion {epoch_node} is missing (deleted by hand?); the election repairs it under a new epoch"
                )));
            }
            (Err(e), _) => return Err(Error::zk("read", &epoch_node, e)),
            (_, Err(e)) => return Err(Error::zk("read", &self.path, e)),
        };
        // The companion is written by every takeover, handover and repair: holding this epoch
        // as its mzxid means none happened since. The node must hold our address and be no
        // newer than the epoch (a node created by hand later is not ours).
        let holder = String::from_utf8_lossy(data.trim_ascii()).into_owned();
        if marker_stat.mzxid != self.epoch {
            Ok(Err(format!(
                "{epoch_node} was written since this epoch (mzxid {}): a takeover, a handover, a repair or a hand edit",
                marker_stat.mzxid
            )))
        } else if holder != self.address {
            Ok(Err(format!(
                "the master node names {holder}, not {}",
                self.address
            )))
        } else if node_stat.czxid > self.epoch {
            Ok(Err("the master node was created after this epoch".into()))
        } else {
            Ok(Ok(Versions {
                node: node_stat.version,
                epoch_node: marker_stat.version,
            }))
        }
    }
}

/// Hands mastership at `path` to the contender with `address` by setting the node's data, as an
/// operator would with `zkCli.sh set <path> <address>`. Returns once ZooKeeper applied it; the
/// holder then steps down and the contender with that address takes over (see the module
/// guarantees). [`Error::NoMaster`] if nobody holds the node.
pub async fn designate(session: &Session, path: &str, address: &str) -> Result<()> {
    let path = validate_path(path)?;
    validate_address(address)?;
    let client = session.connected().await.client;
    match client.set_data(path, address.as_bytes(), None).await {
        Ok(_) => {
            info!(path, address, "designated a new master");
            Ok(())
        }
        Err(zk::Error::NoNode) => Err(Error::NoMaster {
            path: path.to_owned(),
        }),
        Err(e) => Err(Error::zk("designate", path, e)),
    }
}

/// Checks a contender address: non-empty, at most 256 bytes, no whitespace or control
/// characters (it is the node's data, compared byte for byte).
///
/// ```
/// use zoorpc_registry::election::validate_address;
/// assert!(validate_address("127.0.0.1:9090").is_ok());
/// let err = validate_address("127.0.0.1 9090").unwrap_err();
/// assert!(err.to_string().contains("whitespace"));
/// ```
pub fn validate_address(address: &str) -> Result<&str> {
    let fail = |reason| {
        Err(Error::InvalidAddress {
            address: address.to_owned(),
            reason,
        })
    };
    if address.is_empty() {
        return fail("it is empty");
    }
    if address.len() > 256 {
        return fail("it is longer than 256 bytes");
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("it contains whitespace or control characters");
    }
    Ok(address)
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

/// Our node as last seen while master: enough to delete exactly it.
#[derive(Clone, Copy, Debug)]
struct Held {
    node_version: i32,
    epoch_version: i32,
}

#[derive(Debug)]
struct Shared {
    role: watch::Sender<Role>,
    master: AtomicBool,
    listeners: Mutex<Listeners>,
    held: Mutex<Option<Held>>,
}

/// Subscribers of [`RoleChanges`], and the last change (for a new subscriber's first item).
#[derive(Debug)]
struct Listeners {
    senders: Vec<mpsc::UnboundedSender<RoleChange>>,
    last: RoleChange,
}

impl Shared {
    fn listeners(&self) -> MutexGuard<'_, Listeners> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn held(&self) -> MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adopts `role`; returns whether it changed. The listener lock orders publications with
    /// subscriptions, so every listener sees every change exactly once.
    fn publish(&self, role: Role) -> bool {
        let mut listeners = self.listeners();
        if *self.role.borrow() == role {
            return false;
        }
        self.master.store(role.is_master(), Ordering::SeqCst);
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

/// A contender in the election at one path. Dropping it leaves the election.
#[derive(Debug)]
pub struct MasterElection {
    session: Session,
    path: String,
    address: String,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl MasterElection {
    /// Joins the election at `path` as `address` with default options. Returns once the first
    /// role is decided (master or standby).
    pub async fn join(session: &Session, path: &str, address: &str) -> Result<MasterElection> {
        MasterElection::join_with(session, path, address, ElectionOptions::default()).await
    }

    /// Joins with `options`.
    pub async fn join_with(
        session: &Session,
        path: &str,
        address: &str,
        options: ElectionOptions,
    ) -> Result<MasterElection> {
        let path = validate_path(path)?.to_owned();
        let address = validate_address(address)?.to_owned();
        let status = session.connected().await;
        prepare(&status.client, &path).await?;
        let (role, mut roles) = watch::channel(Role::Joining);
        let shared = Arc::new(Shared {
            role,
            master: AtomicBool::new(false),
            listeners: Mutex::new(Listeners {
                senders: Vec::new(),
                last: RoleChange {
                    role: Role::Joining,
                    at: std::time::Instant::now(),
                },
            }),
            held: Mutex::new(None),
        });
        let campaign = Campaign {
            session: session.clone(),
            epoch_path: epoch_path(&path),
            path: path.clone(),
            address: address.clone(),
            grace: options.handover_grace,
            shared: shared.clone(),
            designation: None,
            epoch: None,
            highest: 0,
            held_in: None,
            vacancy: None,
        };
        let task = tokio::spawn(campaign.run());
        let election = MasterElection {
            session: session.clone(),
            path,
            address,
            shared,
            task: Some(task),
        };
        // The task only ends when aborted, so this returns once a role is decided.
        let _ = roles.wait_for(|r| *r != Role::Joining).await;
        Ok(election)
    }

    /// Whether this contender is the master now. Cheap: one atomic load.
    pub fn is_master(&self) -> bool {
        self.shared.master.load(Ordering::SeqCst)
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.shared.role.borrow().clone()
    }

    /// The current role as a watch (coalesces changes; for waiting on a state).
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.shared.role.subscribe()
    }

    /// Every role change from now on, with the instant it was adopted; the first item is the
    /// current role, with the instant it was adopted.
    pub fn changes(&self) -> RoleChanges {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut listeners = self.shared.listeners();
        let _ = tx.send(listeners.last.clone());
        if listeners.last.role != Role::Left {
            listeners.senders.push(tx);
        }
        RoleChanges { rx }
    }

    /// Waits until the role satisfies `predicate`, at most `timeout`; returns it, or `None` on
    /// timeout.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        predicate: impl FnMut(&Role) -> bool,
    ) -> Option<Role> {
        let mut roles = self.subscribe();
        match tokio::time::timeout(timeout, roles.wait_for(predicate)).await {
            Ok(Ok(role)) => Some(role.clone()),
            _ => None,
        }
    }

    /// The fencing token while master.
    pub fn fence(&self) -> Option<Fence> {
        self.role().epoch().map(|epoch| Fence {
            path: self.path.clone(),
            address: self.address.clone(),
            epoch,
        })
    }

    /// The election path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This contender's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The session this contender runs in.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Steps down and leaves: reports [`Role::Left`], deletes the node if this contender holds
    /// it, and returns once ZooKeeper confirmed the delete. To contend again, join again.
    pub async fn resign(mut self) -> Result<()> {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.shared.publish(Role::Left);
        let held = self.shared.held().take();
        release(&self.session, &self.path, held).await
    }
}

impl Drop for MasterElection {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        task.abort();
        self.shared.publish(Role::Left);
        let held = self.shared.held().take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (session, path) = (self.session.clone(), self.path.clone());
            rt.spawn(async move {
                if let Err(e) = release(&session, &path, held).await {
                    debug!(error = %e, "could not delete the master node on drop; it goes with the session");
                }
            });
        }
    }
}

/// Creates the parents of the node and the companion `<path>.epoch`.
async fn prepare(client: &zk::Client, path: &str) -> Result<()> {
    if let Some(parent) = parent(path) {
        ensure_path(client, parent).await?;
    }
    let marker = epoch_path(path);
    match client.create(&marker, b"", &persistent()).await {
        Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
        Err(e) => Err(Error::zk("create", &marker, e)),
    }
}

/// Deletes our node, if it is still ours. Bounded: a few attempts across reconnects.
async fn release(session: &Session, path: &str, held: Option<Held>) -> Result<()> {
    let marker = epoch_path(path);
    let client = session.client();
    let me = client.session_id().0;
    if let Some(held) = held {
        // `<path>.epoch` unchanged since we last saw our node means the node at the path is
        // still ours (any takeover rewrites it), so this deletes exactly our node. Writing the
        // companion in the same transaction announces the vacancy: the others take over at once.
        let mut writer = client.new_multi_writer();
        let added = writer
            .add_set_data(&marker, b"", Some(held.epoch_version))
            .and_then(|()| writer.add_delete(path, Some(held.node_version)));
        if added.is_ok() {
            match writer.commit().await {
                Ok(_)
                | Err(zk::MultiWriteError::OperationFailed {
                    index: 1,
                    source: zk::Error::NoNode,
                }) => {
                    info!(path, "resigned");
                    return Ok(());
                }
                Err(e) => debug!(error = %e, "quick release failed; reading the node"),
            }
        }
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
        let marker_read = client.get_data(&marker);
        let node_read = client.get_data(path);
        let (marker_read, node_read) = (marker_read.await, node_read.await);
        let stat = match node_read {
            Ok((_, stat)) if stat.ephemeral_owner == me => stat,
            Ok(_) | Err(zk::Error::NoNode) | Err(zk::Error::SessionExpired) => return Ok(()),
            Err(e) if unanswered(&e) => continue,
            Err(e) => return Err(Error::zk("read", path, e)),
        };
        let mut writer = client.new_multi_writer();
        let added = match &marker_read {
            // Read before the node: unchanged at commit means no takeover since, so the node we
            // saw as ours is still ours.
            Ok((_, m)) => writer
                .add_set_data(&marker, b"", Some(m.version))
                .and_then(|()| writer.add_delete(path, Some(stat.version))),
            Err(_) => writer.add_delete(path, Some(stat.version)),
        };
        added.map_err(|e| Error::zk("delete", path, e))?;
        match writer.commit().await {
            Ok(_) => {
                info!(path, "resigned");
                return Ok(());
            }
            Err(zk::MultiWriteError::RequestFailed {
                source: zk::Error::SessionExpired,
            }) => return Ok(()),
            Err(e) => debug!(error = %e, "release attempt failed; trying again"),
        }
    }
    Err(Error::zk(
        "delete",
        path,
        zk::Error::UnexpectedError("the node kept changing while resigning".into()),
    ))
}

/// What the campaign waits for before deciding again.
enum Next {
    /// The node's watch (or a session change).
    Watch(zk::OneshotWatcher),
    /// The watch on our own node while master: if it reports the node deleted, step down at
    /// once, before reading anything (another contender may be taking the node already).
    /// The companion's watch too: a deleted or rewritten companion is repaired.
    Master(zk::OneshotWatcher, zk::OneshotWatcher),
    /// The node's watch, but at most until `deadline`.
    WatchUntil(zk::OneshotWatcher, Instant),
    /// Nothing: decide again at once.
    Again,
    /// A pause after an error (or a session change).
    Pause,
}

/// The task behind a [`MasterElection`].
struct Campaign {
    session: Session,
    path: String,
    epoch_path: String,
    address: String,
    grace: Duration,
    shared: Arc<Shared>,
    /// A pending designation of someone else: the companion's version and when we first saw it.
    designation: Option<(i32, Instant)>,
    /// The epoch of our current node: its `czxid` and the companion's `mzxid` our takeover or
    /// our last repair of the companion wrote.
    epoch: Option<(i64, i64)>,
    /// The session in which we last held the node: only a holder whose node was deleted in that
    /// same session runs again at once after an unannounced vacancy (after a session expiry
    /// the standbys that heard of it first go first, as they always did).
    held_in: Option<i64>,
    /// The highest epoch this contender reported: a lower one means a new ZooKeeper history.
    highest: i64,
    /// An unannounced vacancy (the parent's `pzxid`, the zxid that deleted the node), the
    /// session we saw it in and when we first saw it in that session (a contender back in a new
    /// session starts its wait again, behind those that heard of the vacancy first).
    vacancy: Option<(i64, i64, Instant)>,
}

impl Campaign {
    async fn run(mut self) {
        let mut statuses = self.session.subscribe();
        loop {
            let status = statuses.borrow_and_update().clone();
            if !status.is_connected() {
                // Step down at once: ZooKeeper may expire us and let another take over while
                // we cannot hear about it.
                self.shared.held().take();
                if self.shared.publish(Role::Disconnected) {
                    warn!(path = %self.path, "connection to ZooKeeper lost; not master until it is back");
                }
                if statuses.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let next = self.step(&status).await;
            let wake = async {
                match next {
                    Next::Watch(watcher) => {
                        watcher.changed().await;
                    }
                    Next::Master(watcher, marker_watcher) => {
                        tokio::select! {
                            event = watcher.changed() => {
                                if event.event_type == zk::EventType::NodeDeleted {
                                    self.lost_node();
                                }
                            }
                            _ = marker_watcher.changed() => {}
                        }
                    }
                    Next::WatchUntil(watcher, deadline) => {
                        tokio::select! {
                            _ = watcher.changed() => {}
                            _ = tokio::time::sleep_until(deadline) => {}
                        }
                    }
                    Next::Again => {}
                    Next::Pause => tokio::time::sleep(PAUSE).await,
                }
            };
            tokio::select! {
                biased;
                changed = statuses.changed() => if changed.is_err() { return },
                _ = wake => {}
            }
        }
    }

    /// Our node is gone: not master any more, reported before anything else happens.
    fn lost_node(&self) {
        self.shared.held().take();
        if self.shared.master.load(Ordering::SeqCst) {
            warn!(path = %self.path, "the master node was deleted by someone else; running again");
            self.publish(Role::Electing);
        }
    }

    fn publish(&self, role: Role) {
        if self.shared.publish(role.clone()) {
            info!(path = %self.path, address = %self.address, %role, "election role");
        }
    }

    /// Reads the node and acts on what it says.
    async fn step(&mut self, status: &SessionStatus) -> Next {
        let client = &status.client;
        let me = client.session_id().0;
        // Pipelined: all four requests leave before we wait for any, and ZooKeeper answers a
        // session's requests in order. The companion is read before the node (what we hold is
        // then consistent, see `release`) and after it (a handover that deleted the node has
        // named its designee by then: both happen in one transaction). The parent, read after
        // the node, tells whether a vacancy was announced (see `Campaign::vacant`).
        let marker = client.get_data(&self.epoch_path);
        let node = client.get_and_watch_data(&self.path);
        let siblings = client.check_stat(parent(&self.path).unwrap_or("/"));
        let marker_after = client.get_data(&self.epoch_path);
        // Used while master only: a master watches its companion, to repair it if tampered with.
        let marker_watch = client.check_and_watch_stat(&self.epoch_path);
        let (marker, node, siblings, marker_after, marker_watch) = (
            marker.await,
            node.await,
            siblings.await,
            marker_after.await,
            marker_watch.await,
        );
        match node {
            Ok((data, stat, watcher)) => {
                let holder = String::from_utf8_lossy(&data).trim().to_owned();
                if stat.ephemeral_owner == me && holder == self.address {
                    self.designation = None;
                    self.master(client, &stat, watcher, marker, marker_watch)
                        .await
                } else if stat.ephemeral_owner == me {
                    // Designated away: stop being master first, then hand over.
                    self.shared.held().take();
                    self.publish(Role::Standby {
                        master: holder.clone(),
                    });
                    self.hand_over(client, stat.version, &holder, marker.ok().map(|m| m.1))
                        .await
                } else {
                    if stat.ephemeral_owner == 0 {
                        warn!(path = %self.path, "the master node is not ephemeral; nobody can take over until it is deleted");
                    }
                    self.shared.held().take();
                    self.publish(Role::Standby { master: holder });
                    Next::Watch(watcher)
                }
            }
            Err(zk::Error::NoNode) => {
                self.lost_node();
                match marker_after {
                    Ok((data, stat)) => {
                        // Announced: the last change among the parent's children, made before the
                        // node was found missing, is the one that wrote the companion as read
                        // before the node. Only a resign or a handover deletes the node and
                        // writes the companion at once (a takeover creates the node, so it
                        // would be there). Anything else, or a failed read, is unannounced.
                        let announced = matches!(
                            (&marker, &siblings),
                            (Ok((_, m)), Ok(Some(p))) if m.mzxid == p.pzxid
                        );
                        let deleted = siblings.ok().flatten().map_or(0, |p| p.pzxid);
                        self.vacant(client, &data, stat, (!announced).then_some(deleted))
                            .await
                    }
                    Err(zk::Error::NoNode) => match prepare(client, &self.path).await {
                        Ok(()) => Next::Again,
                        Err(e) => {
                            warn!(error = %e, "cannot prepare the election nodes");
                            Next::Pause
                        }
                    },
                    Err(e) => {
                        debug!(error = %e, "cannot read the epoch node");
                        Next::Pause
                    }
                }
            }
            Err(e) => {
                debug!(error = %e, path = %self.path, "cannot read the master node");
                Next::Pause
            }
        }
    }

    /// Our node holds our address: master, with the epoch `<path>.epoch` holds, or repair it.
    ///
    /// `marker` is the companion as read before the node (what [`Held`] needs), `marker_watch`
    /// the watch on it registered after.
    async fn master(
        &mut self,
        client: &zk::Client,
        node: &zk::Stat,
        watcher: zk::OneshotWatcher,
        marker: std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
        marker_watch: std::result::Result<(Option<zk::Stat>, zk::OneshotWatcher), zk::Error>,
    ) -> Next {
        let (now, marker_watcher) = match marker_watch {
            Ok(watched) => watched,
            Err(e) => {
                debug!(error = %e, path = %self.epoch_path, "cannot watch the companion");
                return Next::Pause;
            }
        };
        let before = match marker {
            Ok((_, m)) => Some(m),
            Err(zk::Error::NoNode) => None,
            Err(e) => {
                debug!(error = %e, path = %self.epoch_path, "cannot read the companion");
                return Next::Pause;
            }
        };
        if before.map(|m| (m.mzxid, m.version)) != now.map(|m| (m.mzxid, m.version)) {
            // It changed between the two reads: look again.
            return Next::Again;
        }
        // The epoch this node's companion must hold: what our takeover or last repair wrote.
        let expected = match self.epoch {
            Some((czxid, epoch)) if czxid == node.czxid => epoch,
            // Not known (a takeover whose reply was lost): the takeover wrote both at once.
            _ => node.czxid,
        };
        match before {
            Some(m) if m.mzxid == expected => {
                self.epoch = Some((node.czxid, expected));
                if expected < self.highest {
                    warn!(path = %self.path, epoch = expected, before = self.highest, "the epoch went back: ZooKeeper started a new history (its data was wiped?); epochs stored elsewhere must be reset");
                }
                self.highest = self.highest.max(expected);
                self.held_in = Some(client.session_id().0);
                *self.shared.held() = Some(Held {
                    node_version: node.version,
                    epoch_version: m.version,
                });
                self.publish(Role::Master { epoch: expected });
                Next::Master(watcher, marker_watcher)
            }
            _ => self.repair(client, node, before, expected).await,
        }
    }

    /// Rewrites a deleted or tampered-with companion in one transaction that checks our node's
    /// version, so only the holder of the node can: the new epoch is the companion's new
    /// `mzxid`. The next step reads both again before reporting it.
    async fn repair(
        &mut self,
        client: &zk::Client,
        node: &zk::Stat,
        marker: Option<zk::Stat>,
        epoch: i64,
    ) -> Next {
        match marker {
            None => {
                warn!(path = %self.epoch_path, epoch, "the election companion was deleted by someone else; fenced writes and job claims fail until it is repaired; repairing it")
            }
            Some(m) => {
                warn!(path = %self.epoch_path, epoch, mzxid = m.mzxid, "the election companion was rewritten by someone else; fenced writes and job claims fail until it is repaired; repairing it")
            }
        }
        let mut writer = client.new_multi_writer();
        let added =
            writer
                .add_check_version(&self.path, node.version)
                .and_then(|()| match marker {
                    // Created, then written: the write's stat carries the new mzxid.
                    None => writer
                        .add_create(&self.epoch_path, b"", &persistent())
                        .and_then(|()| writer.add_set_data(&self.epoch_path, b"", Some(0))),
                    Some(m) => writer.add_set_data(&self.epoch_path, b"", Some(m.version)),
                });
        if let Err(e) = added {
            warn!(error = %e, "cannot build the companion repair request");
            return Next::Pause;
        }
        match writer.commit().await {
            Ok(results) => {
                if let Some(zk::MultiWriteResult::SetData { stat }) = results.last() {
                    self.epoch = Some((node.czxid, stat.mzxid));
                    info!(path = %self.epoch_path, old = epoch, epoch = stat.mzxid, "repaired the election companion; master under a new epoch");
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

    /// Nobody holds the node: take it, unless someone else was designated and still has time,
    /// or the vacancy is `unannounced` (`Some(the parent's pzxid)`) and its last holder was
    /// someone else, who gets [`VACANCY_SETTLE`] to hear of it first.
    async fn vacant(
        &mut self,
        client: &zk::Client,
        marker: &[u8],
        marker_stat: zk::Stat,
        unannounced: Option<i64>,
    ) -> Next {
        let designee = String::from_utf8_lossy(marker).trim().to_owned();
        if !designee.is_empty() && designee != self.address {
            let since = match self.designation {
                Some((version, since)) if version == marker_stat.version => since,
                _ => {
                    let now = Instant::now();
                    self.designation = Some((marker_stat.version, now));
                    now
                }
            };
            let deadline = since + self.grace;
            if Instant::now() < deadline {
                self.publish(Role::Standby {
                    master: designee.clone(),
                });
                return match client.check_and_watch_stat(&self.path).await {
                    Ok((None, watcher)) => Next::WatchUntil(watcher, deadline),
                    Ok((Some(_), _)) => Next::Again,
                    Err(e) => {
                        debug!(error = %e, "cannot watch the master node");
                        Next::Pause
                    }
                };
            }
            info!(path = %self.path, %designee, "the designee did not take over in time; running again");
        } else if designee.is_empty()
            && !(*self.shared.role.borrow() == Role::Electing
                && self.held_in == Some(client.session_id().0))
            && let Some(deleted) = unannounced
        {
            // Nobody announced this vacancy and its last holder was someone else: leave it to
            // that holder for a moment (it may be alive and hearing of it only now).
            let session = client.session_id().0;
            let since = match self.vacancy {
                Some((zxid, seen_in, since)) if zxid == deleted && seen_in == session => since,
                _ => {
                    let now = Instant::now();
                    self.vacancy = Some((deleted, session, now));
                    now
                }
            };
            let deadline = since + VACANCY_SETTLE;
            if Instant::now() < deadline {
                return match client.check_and_watch_stat(&self.path).await {
                    Ok((None, watcher)) => Next::WatchUntil(watcher, deadline),
                    Ok((Some(_), _)) => Next::Again,
                    Err(e) => {
                        debug!(error = %e, "cannot watch the master node");
                        Next::Pause
                    }
                };
            }
        }
        self.take(client).await
    }

    /// Creates the node and rewrites the companion in one transaction.
    async fn take(&mut self, client: &zk::Client) -> Next {
        let mut writer = client.new_multi_writer();
        let added = writer
            .add_create(&self.path, self.address.as_bytes(), &ephemeral())
            .and_then(|()| writer.add_set_data(&self.epoch_path, b"", None));
        if let Err(e) = added {
            warn!(error = %e, "cannot build the takeover request");
            return Next::Pause;
        }
        match writer.commit().await {
            Ok(results) => {
                let Some(zk::MultiWriteResult::SetData { stat }) = results.get(1) else {
                    // Cannot happen with a successful multi; read the node to find out.
                    return Next::Again;
                };
                *self.shared.held() = Some(Held {
                    node_version: 0,
                    epoch_version: stat.version,
                });
                self.epoch = Some((stat.mzxid, stat.mzxid));
                self.held_in = Some(client.session_id().0);
                self.designation = None;
                self.publish(Role::Master { epoch: stat.mzxid });
                // Read again to arm the watch on our node.
                Next::Again
            }
            Err(zk::MultiWriteError::OperationFailed {
                index: 0,
                source: zk::Error::NodeExists,
            }) => Next::Again,
            Err(zk::MultiWriteError::OperationFailed {
                source: zk::Error::NoNode,
                ..
            }) => match prepare(client, &self.path).await {
                Ok(()) => Next::Again,
                Err(e) => {
                    warn!(error = %e, "cannot prepare the election nodes");
                    Next::Pause
                }
            },
            Err(zk::MultiWriteError::RequestFailed { source }) => {
                // No reply (connection lost, timed out): the create may have happened. The next
                // read compares the node's ephemeralOwner with our session before anything else
                // is decided.
                debug!(path = %self.path, error = %source, "takeover reply lost; checking the node's owner");
                Next::Again
            }
            Err(e) => {
                debug!(error = %e, path = %self.path, "takeover failed");
                Next::Pause
            }
        }
    }

    /// Deletes our node and names the designee in the companion, atomically.
    async fn hand_over(
        &mut self,
        client: &zk::Client,
        node_version: i32,
        designee: &str,
        marker: Option<zk::Stat>,
    ) -> Next {
        let mut writer = client.new_multi_writer();
        let added = match marker {
            Some(m) => writer
                .add_set_data(&self.epoch_path, designee.as_bytes(), Some(m.version))
                .and_then(|()| writer.add_delete(&self.path, Some(node_version))),
            // The companion is missing (deleted by hand): create it naming the designee, so the
            // others still wait for it.
            None => writer
                .add_create(&self.epoch_path, designee.as_bytes(), &persistent())
                .and_then(|()| writer.add_delete(&self.path, Some(node_version))),
        };
        if let Err(e) = added {
            warn!(error = %e, "cannot build the handover request");
            return Next::Pause;
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
