//! Read-only views for operators (`zoorpc ls`, `zoorpc master`): what ZooKeeper holds right
//! now, with the stats a watch-based recipe does not keep (session ids, creation times, epochs).
//!
//! Guarantees:
//! - Nothing is written and no watch is left behind: plain reads, each one answer.
//! - [`services`] walks the tree under a root breadth-first, at most [`MAX_NODES_VISITED`] nodes
//!   (the walk says when it stopped early), and reports every parent holding at least one
//!   provider: a child whose data is a provider URL whatever its name (discovery takes every
//!   child, so `ls` shows what consumers call), or a `provider<seq>` or ephemeral child whose
//!   data is not one: reported with its raw data (at most 200 characters) and the parse error,
//!   never skipped silently and never an error of the whole listing. A child with children and
//!   no data is a folder whatever its name (as discovery sees it): walked into, never a
//!   provider.
//! - A node deleted between the listing and the read is left out (it is gone).
//! - [`master`] reads the master node, its companion and the participant nodes: the epoch is
//!   the companion's `mzxid` (the fencing token), the tenure started at the companion's `mtime`
//!   (every takeover and handover writes it in the same multi-op as the master node). It never
//!   reports as master an address that is not: when the node's data names a contender that does
//!   not hold it (a designation not taken over yet) it says so, since when, and who still holds
//!   the node ([`MasterEntry::pending`]); data that is not `host:port` is reported as such. A
//!   designee left in the companion by a handover that has completed is not shown.

use std::collections::VecDeque;

use zookeeper_client as zk;

use crate::discovery::{NodeFormat, is_folder};
use crate::election::participants;
use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;
use crate::provider_url::ProviderUrl;
use crate::registration::PROVIDER_PREFIX;
use crate::session::Session;

mod master;

pub use master::{MasterEntry, Pending, contenders, designee, master};

/// The most nodes [`services`] visits under a root before it stops (and says so).
pub const MAX_NODES_VISITED: usize = 10_000;

/// One provider node as ZooKeeper holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderEntry {
    /// Full path, e.g. `/registry/provider0000000042`.
    pub path: String,
    /// The node's data parsed as a provider URL, or why it is not one (with the raw data).
    pub url: std::result::Result<ProviderUrl, String>,
    /// The owning session (`ephemeralOwner`); 0 for a persistent node.
    pub session_id: i64,
    /// When the node was created (`ctime`, Unix milliseconds, ZooKeeper's clock).
    pub created_ms: i64,
}

/// A base path with its provider nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The base path, e.g. `/registry`.
    pub base_path: String,
    /// Its providers (children holding a provider URL, whatever their names; `provider<seq>`
    /// and ephemeral children holding anything else), sorted by name.
    pub providers: Vec<ProviderEntry>,
}

/// What [`services`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceListing {
    /// Base paths holding providers, sorted by path.
    pub services: Vec<ServiceEntry>,
    /// Whether the walk stopped at [`MAX_NODES_VISITED`] before seeing everything.
    pub truncated: bool,
    /// Paths this session may not read (ZooKeeper said NoAuth): left out, the rest listed.
    pub unreadable: Vec<String>,
    /// Election paths seen on the walk (those with a `<path>.epoch` companion), sorted.
    pub elections: Vec<String>,
}

/// Lists the services (base paths with at least one provider: see the module's guarantees)
/// under `root`.
///
/// ```no_run
/// # async fn demo() -> Result<(), zoorpc_registry::Error> {
/// use zoorpc_registry::{Session, inspect};
/// let session = Session::connect_to("127.0.0.1:2181").await?;
/// let listing = inspect::services(&session, "/").await?;
/// for service in &listing.services {
///     for provider in &service.providers {
///         println!("{} {} session 0x{:x}", service.base_path, provider.path, provider.session_id);
///     }
/// }
/// # Ok(()) }
/// ```
pub async fn services(session: &Session, root: &str) -> Result<ServiceListing> {
    // The root is a fine place to start a walk (it only cannot hold providers itself).
    let root = if root == "/" {
        root.to_owned()
    } else {
        validate_path(root)?.to_owned()
    };
    let client = session.connected_within_timeout().await?.client;
    let mut queue = VecDeque::from([root]);
    let mut visited = 0usize;
    let mut listing = ServiceListing {
        services: Vec::new(),
        truncated: false,
        unreadable: Vec::new(),
        elections: Vec::new(),
    };
    while let Some(path) = queue.pop_front() {
        visited += 1;
        if visited > MAX_NODES_VISITED {
            listing.truncated = true;
            break;
        }
        let Some(children) = list_children(&client, &path, &mut listing).await? else {
            continue;
        };
        let mut providers = Vec::new();
        for child in &children {
            match read_child(&client, &path, child, &children, &mut listing).await? {
                Child::Provider(entry) => providers.push(entry),
                Child::Parent(child_path) => queue.push_back(child_path),
                Child::Skipped => {}
            }
        }
        if !providers.is_empty() {
            listing.services.push(ServiceEntry {
                base_path: path,
                providers,
            });
        }
    }
    listing
        .services
        .sort_by(|a, b| a.base_path.cmp(&b.base_path));
    listing.elections.sort();
    Ok(listing)
}

/// The children of `path`, sorted; `None` when it is gone or unreadable (noted in `listing`).
async fn list_children(
    client: &zk::Client,
    path: &str,
    listing: &mut ServiceListing,
) -> Result<Option<Vec<String>>> {
    match client.list_children(path).await {
        Ok(mut children) => {
            children.sort();
            Ok(Some(children))
        }
        Err(zk::Error::NoNode) => Ok(None),
        // One protected subtree does not hide the others.
        Err(zk::Error::NoAuth) => {
            listing.unreadable.push(path.to_owned());
            Ok(None)
        }
        Err(e) => Err(Error::zk("list", path, e)),
    }
}

/// The data and stat of `path`; `None` when it is gone or unreadable (noted in `listing`).
async fn read_node(
    client: &zk::Client,
    path: &str,
    listing: &mut ServiceListing,
) -> Result<Option<(Vec<u8>, zk::Stat)>> {
    match client.get_data(path).await {
        Ok(found) => Ok(Some(found)),
        Err(zk::Error::NoNode) => Ok(None),
        // One protected node does not hide the others.
        Err(zk::Error::NoAuth) => {
            listing.unreadable.push(path.to_owned());
            Ok(None)
        }
        Err(e) => Err(Error::zk("read", path, e)),
    }
}

/// What one child of a walked parent is.
enum Child {
    /// A provider of the parent (maybe with bad data, shown as such).
    Provider(ProviderEntry),
    /// A node to look into.
    Parent(String),
    /// Gone, unreadable (noted), or an election's node.
    Skipped,
}

/// Reads `child` of `path` (`siblings`: all of `path`'s children) and tells what it is.
async fn read_child(
    client: &zk::Client,
    path: &str,
    child: &str,
    siblings: &[String],
    listing: &mut ServiceListing,
) -> Result<Child> {
    let child_path = join(path, child);
    let Some((data, stat)) = read_node(client, &child_path, listing).await? else {
        return Ok(Child::Skipped);
    };
    let url = any_format(&data);
    // What a consumer of `path` would call: every child holding a URL (discovery takes any
    // name), and every `provider<seq>` or ephemeral child even with bad data (shown as such,
    // never hidden). Anything else is a parent to look into.
    // A folder (children, no data) is looked into whatever its name, as discovery passes it over.
    let folder = is_folder(&data, &stat);
    if url.is_err() && (folder || !is_provider_name(child) && stat.ephemeral_owner == 0) {
        if let Some(master) = child.strip_suffix(".epoch") {
            listing.elections.push(join(path, master));
        }
        // An election's participant nodes are no providers either.
        let participants = child
            .strip_suffix(participants::PARTICIPANTS_SUFFIX)
            .is_some_and(|master| siblings.contains(&format!("{master}.epoch")));
        return Ok(if participants {
            Child::Skipped
        } else {
            Child::Parent(child_path)
        });
    }
    // An election's master node (ephemeral, beside its companion) is no provider.
    if url.is_err() && siblings.contains(&format!("{child}.epoch")) {
        return Ok(Child::Skipped);
    }
    Ok(Child::Provider(entry(child_path, url, &data, &stat)))
}

/// A node's data as a provider URL, or, when it holds a JSON object, as an instance in the
/// Curator layout: a walk shows Curator's instances as the consumers that follow them call them.
fn any_format(data: &[u8]) -> Result<ProviderUrl> {
    match data.first() {
        Some(b'{') => NodeFormat::Curator.url_of(data),
        _ => NodeFormat::Url.url_of(data),
    }
}

/// The instances of one service as discovery in `format` sees them: every child of `path` is
/// one (a bad one shown with the reason), as Curator's `queryForInstances` reads every child.
/// An empty listing when `path` does not exist.
///
/// ```no_run
/// # async fn demo() -> Result<(), zoorpc_registry::Error> {
/// use zoorpc_registry::{NodeFormat, Session, inspect};
/// let session = Session::connect_to("127.0.0.1:2181").await?;
/// let listing = inspect::instances(&session, "/services/greeter", NodeFormat::Curator).await?;
/// println!("{} instances", listing.services.first().map_or(0, |s| s.providers.len()));
/// # Ok(()) }
/// ```
pub async fn instances(
    session: &Session,
    path: &str,
    format: NodeFormat,
) -> Result<ServiceListing> {
    let path = validate_path(path)?.to_owned();
    let client = session.connected_within_timeout().await?.client;
    let mut listing = ServiceListing {
        services: Vec::new(),
        truncated: false,
        unreadable: Vec::new(),
        elections: Vec::new(),
    };
    let Some(children) = list_children(&client, &path, &mut listing).await? else {
        return Ok(listing);
    };
    let mut providers = Vec::new();
    for child in &children {
        let child_path = join(&path, child);
        let Some((data, stat)) = read_node(&client, &child_path, &mut listing).await? else {
            continue;
        };
        providers.push(entry(child_path, format.url_of(&data), &data, &stat));
    }
    if !providers.is_empty() {
        listing.services.push(ServiceEntry {
            base_path: path,
            providers,
        });
    }
    Ok(listing)
}

/// What `ls` shows of one provider node.
fn entry(path: String, url: Result<ProviderUrl>, data: &[u8], stat: &zk::Stat) -> ProviderEntry {
    ProviderEntry {
        url: url.map_err(|e| {
            format!(
                "{e} (data: {:?})",
                crate::error::excerpt(&String::from_utf8_lossy(data))
            )
        }),
        path,
        session_id: stat.ephemeral_owner,
        created_ms: stat.ctime,
    }
}

fn is_provider_name(name: &str) -> bool {
    name.strip_prefix(PROVIDER_PREFIX)
        .is_some_and(|seq| !seq.is_empty() && seq.chars().all(|c| c.is_ascii_digit()))
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_and_paths() {
        assert!(is_provider_name("provider0000000042"));
        assert!(!is_provider_name("provider"));
        assert!(!is_provider_name("providers"));
        assert!(!is_provider_name("x0000000001"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
