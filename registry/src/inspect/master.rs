//! The master of an election as ZooKeeper holds it (`zoorpc master`): see [`super`]'s
//! guarantees.

use zookeeper_client as zk;

use crate::election::participants::{self, Participant};
use crate::election::{companion_path, is_host_port, read_address, validate_election_path};
use crate::error::{Error, Result};
use crate::provider_url::ProviderUrl;
use crate::session::Session;

/// The master of an election path as ZooKeeper holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterEntry {
    /// The holder's address (the node's data).
    pub address: std::result::Result<String, String>,
    /// The holder's session (`ephemeralOwner`).
    pub session_id: i64,
    /// The epoch: the companion's `mzxid`; `None` if the companion is missing.
    pub epoch: Option<i64>,
    /// When the current tenure started (the companion's `mtime`, else the node's `ctime`),
    /// Unix milliseconds.
    pub since_ms: i64,
    /// A designee named in the companion during a handover; `None` while a node is held (a
    /// designee left there by a completed handover is stale).
    pub designee: Option<String>,
    /// The node's data names a contender that does not hold the node yet: designated, not
    /// taken over. `None` when the data names the holder.
    pub pending: Option<Pending>,
    /// The holder's own address, when it is one of zoorpc's contenders (its participant node).
    pub holder: Option<String>,
    /// The other contenders (participant nodes), by address, sorted.
    pub standbys: Vec<String>,
    /// The session of each of [`MasterEntry::standbys`], in the same order: a standby may have
    /// the master's very address (a master killed and started again on its port while its old
    /// session has not ended yet); its session tells them apart.
    pub standby_sessions: Vec<i64>,
    /// The other contenders' participant nodes whose data is not an address: that data as
    /// text, sorted (bad data, shown as such, never dropped in silence).
    pub bad_standbys: Vec<String>,
}

/// A designation not taken over yet: the data names [`MasterEntry::address`], but the node is
/// still held by another session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// When the data was set (the node's `mtime`), Unix milliseconds.
    pub since_ms: i64,
    /// The address of the contender still holding the node, when it is one of zoorpc's.
    pub held_by: Option<String>,
}

/// Reads the master of the election at `path`; `None` when nobody holds it.
///
/// ```no_run
/// # async fn demo() -> Result<(), zoorpc_registry::Error> {
/// use zoorpc_registry::{Session, default_master_path, inspect};
/// let session = Session::connect_to("127.0.0.1:2181").await?;
/// match inspect::master(&session, &default_master_path("HelloService", "1.0.0")).await? {
///     Some(m) => println!("master {:?} epoch {:?} since {} ms", m.address, m.epoch, m.since_ms),
///     None => println!("no master"),
/// }
/// # Ok(()) }
/// ```
pub async fn master(session: &Session, path: &str) -> Result<Option<MasterEntry>> {
    let path = validate_election_path(path)?;
    let client = session.connected_within_timeout().await?.client;
    let (data, stat) = match client.get_data(path).await {
        Ok(found) => found,
        Err(zk::Error::NoNode) => return Ok(None),
        Err(e) => return Err(Error::zk("read", path, e)),
    };
    if stat.ephemeral_owner == 0 {
        return Err(Error::NotAnElection {
            path: path.to_owned(),
            reason: "a persistent node",
        });
    }
    let companion = companion_path(path);
    let (epoch, since_ms) = match client.get_data(&companion).await {
        Ok((_, companion_stat)) => (Some(companion_stat.mzxid), companion_stat.mtime),
        Err(zk::Error::NoNode) if ProviderUrl::from_bytes(&data).is_ok() => {
            return Err(Error::NotAnElection {
                path: path.to_owned(),
                reason: "a provider's node",
            });
        }
        Err(zk::Error::NoNode) => (None, stat.ctime),
        Err(e) => return Err(Error::zk("read", &companion, e)),
    };
    let everyone = participants::list(&client, path).await?;
    let holder = everyone
        .iter()
        .find(|p| p.session == stat.ephemeral_owner)
        .and_then(|p| p.address.clone().ok());
    let address = read_address(&data).and_then(|a| if is_host_port(&a) { Ok(a) } else { Err(a) });
    let named = address.as_ref().ok();
    let pending = pending(holder.as_ref(), named, &stat, &everyone);
    let mut others: Vec<(String, i64)> = everyone
        .iter()
        .filter(|p| p.session != stat.ephemeral_owner)
        .filter_map(|p| Some((p.address.clone().ok()?, p.session)))
        .collect();
    others.sort();
    let (standbys, standby_sessions) = others.into_iter().unzip();
    let mut bad_standbys: Vec<String> = everyone
        .iter()
        .filter(|p| p.session != stat.ephemeral_owner)
        .filter_map(|p| p.address.clone().err())
        .collect();
    bad_standbys.sort();
    Ok(Some(MasterEntry {
        address,
        session_id: stat.ephemeral_owner,
        epoch,
        since_ms,
        designee: None,
        pending,
        holder,
        standbys,
        standby_sessions,
        bad_standbys,
    }))
}

/// Whether the node's data names a contender that does not hold the node yet (`holder`: the
/// holder's address if it is one of ours; `named`: the address in the data, if one).
fn pending(
    holder: Option<&String>,
    named: Option<&String>,
    stat: &zk::Stat,
    everyone: &[Participant],
) -> Option<Pending> {
    match (holder, named) {
        // One of ours holds it and the data names someone else: its handover is coming.
        (Some(h), Some(named)) if h != named => Some(Pending {
            since_ms: stat.mtime,
            held_by: Some(h.clone()),
        }),
        // A holder that is not ours, with data set since it created the node naming one of
        // ours: that contender takes it over. (Otherwise, by the seed's rule, the address in
        // the data is the master.)
        (None, Some(named))
            if stat.version > 0 && everyone.iter().any(|p| p.address.as_deref() == Ok(named)) =>
        {
            Some(Pending {
                since_ms: stat.mtime,
                held_by: None,
            })
        }
        _ => None,
    }
}

/// The contenders of the election at `path` (its participant nodes): session and address.
pub async fn contenders(session: &Session, path: &str) -> Result<Vec<Participant>> {
    let path = validate_election_path(path)?;
    let client = session.connected_within_timeout().await?.client;
    participants::list(&client, path).await
}

/// The designee a handover under way names in the companion of `path` (between the holder's
/// step-down and the designee's takeover nobody holds the node); `None` when there is none.
///
/// ```no_run
/// # async fn demo() -> Result<(), zoorpc_registry::Error> {
/// use zoorpc_registry::{Session, inspect};
/// let session = Session::connect_to("127.0.0.1:2181").await?;
/// if let Some(next) = inspect::designee(&session, "/soa/master/services/HelloService:1.0.0").await? {
///     println!("handing over to {next}");
/// }
/// # Ok(()) }
/// ```
pub async fn designee(session: &Session, path: &str) -> Result<Option<String>> {
    let path = validate_election_path(path)?;
    let client = session.connected_within_timeout().await?.client;
    let companion = companion_path(path);
    match client.get_data(&companion).await {
        Ok((data, _)) => Ok(read_address(&data).ok().filter(|d| !d.is_empty())),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(Error::zk("read", &companion, e)),
    }
}
