//! Participant nodes: every contender of ours holds one `EPHEMERAL` node under
//! `<path>.participants/`, named by its session id, holding its address. They tell who is a
//! contender (and so who is "ours"), and which one last took the master node: the takeover (and
//! a repair of the companion) writes the taker's participant node in the same transaction as
//! `<path>.epoch`, so the holder's participant node has the companion's `mzxid`. A step-down
//! writes the companion again (a resign, a handover, or taking the node back), and a session
//! that ends takes its participant node with it: a vacancy is taken only when no participant
//! node still carries the companion's `mzxid`.

use zookeeper_client as zk;

use super::address::read_address;
use crate::auth::NodeAcl;
use crate::error::{Error, Result};
use crate::plumbing::{ensure_path, ephemeral};

/// The suffix of the persistent parent of the participant nodes, `<path>.participants`.
pub const PARTICIPANTS_SUFFIX: &str = ".participants";

/// The parent of the participant nodes of an election path: `<path>.participants`.
///
/// ```
/// use zoorpc_registry::election::participants_path;
/// assert_eq!(participants_path("/soa/master/services/Hello:1"), "/soa/master/services/Hello:1.participants");
/// ```
pub fn participants_path(path: &str) -> String {
    format!("{path}{PARTICIPANTS_SUFFIX}")
}

/// The parent of the takers' marks, `<path>.participants/takers` (persistent; its name is
/// not a session id, so it is never read as a participant).
pub(crate) fn takers_path(path: &str) -> String {
    format!("{}/{TAKERS}", participants_path(path))
}

/// The taker's marks of ZooKeeper session `session`: two `CONTAINER` nodes,
/// `<path>.participants/takers/<session, 16 hex digits>-1` and `-2`, each the parent of one
/// `EPHEMERAL` child of that session, `mark` ([`MARK`]), all created in the session's first
/// takeover. Only that session's end removes both marks in one transaction (the session never
/// removes them itself; a hand's `delete` removes one at a time), and nothing else changes
/// these parents' children, so their `pzxid`s, equal and past their `czxid`, with no child
/// left, prove that the session ended, whatever else joined or left meanwhile. ZooKeeper
/// removes the empty containers later (a minute by default).
pub(crate) fn taker_marks(path: &str, session: i64) -> [String; 2] {
    let takers = takers_path(path);
    [1, 2].map(|n| format!("{takers}/{session:016x}-{n}"))
}

/// The name of the `EPHEMERAL` child of each of [`taker_marks`].
pub(crate) const MARK: &str = "mark";

/// The name of [`takers_path`] under `<path>.participants`.
const TAKERS: &str = "takers";

/// The data of `<path>.participants` itself, written in every transaction that writes a taker's
/// participant node (a takeover, a repair of the companion): the taker's session and its
/// negotiated session timeout in milliseconds, `<session, 16 hex digits> <ms>`. It survives an
/// operator's delete of the taker's participant node, so a vacancy knows whose step-down it
/// waits for, and for how long at most (see `vacancy.rs`).
///
/// ```
/// use std::time::Duration;
/// use zoorpc_registry::election::participants::{taker_record, parse_taker};
/// let record = taker_record(0x1f, Duration::from_secs(10));
/// assert_eq!(record, "000000000000001f 10000");
/// assert_eq!(parse_taker(record.as_bytes()), Some((0x1f, Duration::from_secs(10))));
/// assert_eq!(parse_taker(b""), None);
/// assert_eq!(parse_taker(b"garbage 12"), None);
/// ```
pub fn taker_record(session: i64, session_timeout: std::time::Duration) -> String {
    format!("{session:016x} {}", session_timeout.as_millis())
}

/// Reads [`taker_record`]'s data; `None` for anything else (empty: nobody recorded yet).
pub fn parse_taker(data: &[u8]) -> Option<(i64, std::time::Duration)> {
    let text = std::str::from_utf8(data).ok()?;
    let (session, ms) = text.trim().split_once(' ')?;
    let session = u64::from_str_radix(session, 16).ok()? as i64;
    let ms = ms.parse::<u64>().ok()?;
    Some((session, std::time::Duration::from_millis(ms)))
}

/// The taker record a step-down writes (a resign, a handover), in the transaction that deletes
/// the node and writes the companion: `<session, 16 hex digits> released`. Read with the
/// companion's `mzxid` equal to its own, it proves the vacancy was announced by its holder (see
/// `announced.rs`). [`parse_taker`] reads no taker in it.
///
/// ```
/// use zoorpc_registry::election::participants::{released_record, parse_released, parse_taker};
/// let record = released_record(0x1f);
/// assert_eq!(record, "000000000000001f released");
/// assert_eq!(parse_released(record.as_bytes()), Some(0x1f));
/// assert_eq!(parse_taker(record.as_bytes()), None);
/// assert_eq!(parse_released(b"000000000000001f 10000"), None);
/// ```
pub fn released_record(session: i64) -> String {
    format!("{session:016x} {RELEASED}")
}

/// Reads [`released_record`]'s data: the session that stepped down; `None` for anything else.
pub fn parse_released(data: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(data).ok()?;
    let (session, word) = text.trim().split_once(' ')?;
    (word == RELEASED).then_some(())?;
    Some(u64::from_str_radix(session, 16).ok()? as i64)
}

/// The word after the session in [`released_record`].
const RELEASED: &str = "released";

/// The participant node of the contender in ZooKeeper session `session`:
/// `<path>.participants/<session id, 16 hex digits>`.
///
/// ```
/// use zoorpc_registry::election::participant_path;
/// assert_eq!(participant_path("/m", 0x1f), "/m.participants/000000000000001f");
/// ```
pub fn participant_path(path: &str, session: i64) -> String {
    format!("{}/{session:016x}", participants_path(path))
}

/// One participant as read from ZooKeeper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// The ZooKeeper session holding it (its name, read back; also its `ephemeralOwner`).
    pub session: i64,
    /// The address in its data (or the data as text if it is not an address).
    pub address: std::result::Result<String, String>,
    /// Whether it declared its address served by its own process (` listens` after the
    /// address): a standby with the fast takeover on may take over from it when that address
    /// refuses connections (see [`super::FastTakeover`]).
    pub listens: bool,
    /// The zxid of its last write: equal to the companion's `mzxid` for the holder of the epoch.
    pub mzxid: i64,
}

/// Creates this session's participant node (and its parent) unless it is there. `NodeExists`
/// with another owner cannot happen (the name is the session id); ours (a lost reply) is fine.
pub(crate) async fn join(
    client: &zk::Client,
    path: &str,
    address: &str,
    acl: NodeAcl,
) -> std::result::Result<(), zk::Error> {
    let me = client.session_id().0;
    let node = participant_path(path, me);
    for _ in 0..3 {
        match client
            .create(&node, address.as_bytes(), &ephemeral(acl))
            .await
        {
            Ok(_) | Err(zk::Error::NodeExists) => return Ok(()),
            Err(zk::Error::NoNode) => {
                if let Err(e) = ensure_path(client, &participants_path(path), acl).await {
                    return Err(match e {
                        Error::NoAuth { .. } => zk::Error::NoAuth,
                        _ => zk::Error::ConnectionLoss,
                    });
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(zk::Error::NoNode)
}

/// Every participant of the election at `path`, read in one pipelined round (the list, then
/// each node); a node gone between the two is left out. Names that are not session ids (an
/// operator's) are left out too.
pub async fn list(client: &zk::Client, path: &str) -> Result<Vec<Participant>> {
    let parent = participants_path(path);
    let names = match client.list_children(&parent).await {
        Ok(names) => names,
        Err(zk::Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(Error::zk("list", &parent, e)),
    };
    let sessions: Vec<i64> = names
        .iter()
        .filter_map(|name| u64::from_str_radix(name, 16).ok().map(|s| s as i64))
        .collect();
    let reads: Vec<_> = sessions
        .iter()
        .map(|s| client.get_data(&participant_path(path, *s)))
        .collect();
    let mut participants = Vec::with_capacity(reads.len());
    for (session, read) in sessions.into_iter().zip(reads) {
        match read.await {
            Ok((data, stat)) => {
                let (address, listens) = parse(&data);
                participants.push(Participant {
                    session,
                    address,
                    listens,
                    mzxid: stat.mzxid,
                });
            }
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(Error::zk("read", &participant_path(path, session), e)),
        }
    }
    Ok(participants)
}

/// A participant node's data: the contender's address, followed by ` listens` when its own
/// process serves that address (so refused connections there prove the process gone).
///
/// ```
/// use zoorpc_registry::election::participant_data;
/// assert_eq!(participant_data("127.0.0.1:9090", false), "127.0.0.1:9090");
/// assert_eq!(participant_data("127.0.0.1:9090", true), "127.0.0.1:9090 listens");
/// ```
pub fn participant_data(address: &str, listens: bool) -> String {
    if listens {
        format!("{address} {LISTENS}")
    } else {
        address.to_owned()
    }
}

/// The word after the address in a participant node that declares its address served.
const LISTENS: &str = "listens";

/// Whether a participant node's `data` declares `address` served by its process (`<address>
/// listens`): the fast takeover's precondition, read by a standby of that holder and by a
/// contender restarted on that address.
pub(crate) fn declares_served(data: &[u8], address: &str) -> bool {
    let (declared, listens) = parse(data);
    listens && declared.as_deref() == Ok(address)
}

/// Reads a participant node's data: its address (as [`read_address`] reads an address: the
/// whole data as text if the first word is not one) and whether it declared it served.
pub(crate) fn parse(data: &[u8]) -> (std::result::Result<String, String>, bool) {
    let text = String::from_utf8_lossy(data);
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    let listens = words.next() == Some(LISTENS) && words.next().is_none();
    if listens {
        (read_address(first.as_bytes()), true)
    } else {
        (read_address(data), false)
    }
}
