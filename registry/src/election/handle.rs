//! [`MasterElection`]: joining an election, the role as it changes, resigning (or leaving on
//! drop); and [`designate`], an operator's handover.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};
use zookeeper_client as zk;

use super::address::validate_address;
use super::campaign::Campaign;
use super::drain::before_release;
use super::fence::Fence;
use super::lease::{Mastership, lease_for};
use super::path::validate_election_path;
use super::refusal::FastTakeover;
use super::release::release;
use super::role::{Role, RoleChanges, Shared};
use super::{companion_path, prepare};
use crate::error::{Error, Result};
use crate::session::Session;

/// Tuning of an election, for [`MasterElection::join_with`].
///
/// ```
/// use std::time::Duration;
/// use zoorpc_registry::ElectionOptions;
/// use zoorpc_registry::election::FastTakeover;
/// assert_eq!(ElectionOptions::default().handover_grace, Duration::from_secs(2));
/// assert!(!ElectionOptions::default().fast_takeover.enabled);
/// let quick = ElectionOptions {
///     handover_grace: Duration::from_millis(500),
///     // This contender's own process serves its address: let a standby take over at once
///     // when it is refused there (see the module docs).
///     fast_takeover: FastTakeover::on(),
/// };
/// # let _ = quick;
/// ```
#[derive(Clone, Debug)]
pub struct ElectionOptions {
    /// How long contenders other than a designee wait for it to take over after a handover
    /// before they run again themselves. Default 2 s.
    pub handover_grace: Duration,
    /// The fast takeover (see the [module docs](super#the-fast-takeover)). Default off: only a
    /// contender whose own process serves its address may switch it on (`HaServer` does).
    pub fast_takeover: FastTakeover,
}

impl Default for ElectionOptions {
    fn default() -> Self {
        ElectionOptions {
            handover_grace: Duration::from_secs(2),
            fast_takeover: FastTakeover::default(),
        }
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
        let path = validate_election_path(path)?.to_owned();
        let address = validate_address(address)?.to_owned();
        let status = session.connected().await;
        prepare(&status.client, &path, session.node_acl()).await?;
        let shared = Arc::new(Shared::new());
        let mut roles = shared.role.subscribe();
        let campaign = Campaign {
            session: session.clone(),
            companion: companion_path(&path),
            path: path.clone(),
            address: address.clone(),
            grace: options.handover_grace,
            shared: shared.clone(),
            designation: None,
            epoch: None,
            highest: 0,
            participant_in: None,
            own_watch: None,
            waiting_for: None,
            fast: options.fast_takeover.clone(),
            proven: None,
            unproven: None,
            marked_in: None,
            stood_by: None,
            poised: None,
            kept: Default::default(),
        };
        let task = tokio::spawn(campaign.run());
        let election = MasterElection {
            session: session.clone(),
            path,
            address,
            shared,
            task: Some(task),
        };
        // The task only ends when aborted or refused, so this returns once a role is decided.
        let _ = roles.wait_for(|r| *r != Role::Joining).await;
        if let Some(refused) = election.refusal() {
            return Err(refused);
        }
        Ok(election)
    }

    /// Why this contender stopped contending on its own: ZooKeeper refused its identity the
    /// takeover ([`Error::NoAuth`]: the election's nodes belong to another identity; give the
    /// right `--zk-auth-file`). The role is [`Role::Left`] then. `None` while contending.
    pub fn refusal(&self) -> Option<Error> {
        let refused = self
            .shared
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        refused.as_ref().map(|path| Error::NoAuth {
            op: "takeover",
            path: path.clone(),
        })
    }

    /// Whether this contender is the master now, within its lease (see [`Mastership`]). Cheap:
    /// two atomic loads and a clock read.
    pub fn is_master(&self) -> bool {
        self.mastership().is_master()
    }

    /// What a gate asks per request: master, within the lease. Follows this election (and
    /// outlives the handle: a dropped election is [`Role::Left`]).
    pub fn mastership(&self) -> Mastership {
        Mastership {
            shared: self.shared.clone(),
        }
    }

    /// The current role; a master whose lease has ended is [`Role::Disconnected`] (see
    /// [`Mastership::role`]).
    pub fn role(&self) -> Role {
        self.shared.effective_role()
    }

    /// The current role as a watch (coalesces changes; for waiting on a state).
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.shared.role.subscribe()
    }

    /// Every role change from now on, with the instant it was adopted; the first item is the
    /// current role, with the instant it was adopted.
    pub fn changes(&self) -> RoleChanges {
        self.shared.changes()
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
        // Not master from here on (`Left` is final: the campaign cannot publish over it).
        self.shared.publish(Role::Left);
        // What was admitted as master finishes before anyone else can take over.
        let lease = lease_for(self.session.client().session_timeout());
        before_release(&self.shared, lease, &self.path).await;
        let held = self.shared.held().take();
        // The campaign's task goes only once the release is answered: dropping a watch ZooKeeper
        // still holds sends it a request (`RemoveWatches`), which would queue beside the
        // successor's takeover; by the reply, the release has fired them all (its node, the
        // companion, its participant node), so dropping them sends nothing. The task writes
        // nothing meanwhile (the role is `Left`).
        let released = release(&self.session, &self.path, held).await;
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        released
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
            let shared = self.shared.clone();
            rt.spawn(async move {
                let lease = lease_for(session.client().session_timeout());
                before_release(&shared, lease, &path).await;
                if let Err(e) = release(&session, &path, held).await {
                    debug!(error = %e, "could not delete the master node on drop; it goes with the session");
                }
            });
        }
    }
}

/// Hands mastership at `path` to the contender with `address` by setting the node's data, as an
/// operator would with `zkCli.sh set <path> <address>`. Returns once ZooKeeper applied it; the
/// holder then steps down and the contender with that address takes over (see the module
/// guarantees). [`Error::NoMaster`] if nobody holds the node; [`Error::NotAnElection`] (and
/// nothing changed) if the node is not a master node: persistent, with children, or without
/// the election's companion `<path>.epoch`.
///
/// ```no_run
/// # async fn demo() -> Result<(), zoorpc_registry::Error> {
/// use zoorpc_registry::{Session, default_master_path, designate};
/// let session = Session::connect_to("127.0.0.1:2181").await?;
/// let path = default_master_path("HelloService", "1.0.0");
/// designate(&session, &path, "127.0.0.1:9091").await?;
/// # Ok(()) }
/// ```
pub async fn designate(session: &Session, path: &str, address: &str) -> Result<()> {
    let path = validate_election_path(path)?;
    validate_address(address)?;
    let client = session.connected().await.client;
    let no_master = || Error::NoMaster {
        path: path.to_owned(),
    };
    let not_election = |reason| Error::NotAnElection {
        path: path.to_owned(),
        reason,
    };
    // Only a master node: ephemeral, childless, beside its companion. A provider node or a
    // parent (`/registry`) is refused rather than overwritten. The write names the version
    // checked: a takeover in between means checking the new holder's node again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let stat = match client.check_stat(path).await {
            Ok(Some(stat)) => stat,
            Ok(None) => return Err(no_master()),
            Err(e) => return Err(Error::zk("designate", path, e)),
        };
        if stat.ephemeral_owner == 0 {
            return Err(not_election("a persistent node"));
        }
        if stat.num_children > 0 {
            return Err(not_election("it has children"));
        }
        let companion = companion_path(path);
        match client.check_stat(&companion).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(not_election("no companion node <path>.epoch beside it")),
            Err(e) => return Err(Error::zk("designate", &companion, e)),
        }
        match client
            .set_data(path, address.as_bytes(), Some(stat.version))
            .await
        {
            Ok(_) => {
                info!(path, address, "designated a new master");
                return Ok(());
            }
            Err(zk::Error::NoNode) => return Err(no_master()),
            Err(zk::Error::BadVersion) if attempts < 3 => continue,
            Err(e) => return Err(Error::zk("designate", path, e)),
        }
    }
}
