//! What `zoorpc xds` serves: for every service name asked for, its four resources, the
//! endpoints kept up to date by one follower task per name, shared by every xDS stream.
//!
//! Guarantees:
//! - One ZooKeeper watch per base path (a [`Discovery`]) or election path (a [`MasterWatch`]),
//!   started the first time any client asks for a name mapped to it (or at start for the names
//!   given on the command line), however many clients subscribe and however many names map to
//!   it (`--service a=/x --service b=/x`, or `--service hello=/services/hello` beside
//!   `--root /services`: one watch of `/services/hello`); dropped once no name followed maps to
//!   it.
//! - A name no stream subscribes to any more is released (its follower ended, and with the last
//!   follower of a path that path's watch) once it has had no subscriber for the linger
//!   (`--linger-ms`), so a client reconnecting at once finds it still followed; the names given
//!   on the command line are never released.
//! - Every change the watch publishes becomes a new version of the name's assignment at once,
//!   and wakes every stream ([`Catalog::subscribe`]); an assignment equal to the last one is not
//!   a new version.
//! - An assignment is encoded once per change, whatever the number of streams.
//! - ZooKeeper out of reach: the watches keep their last snapshot (their own guarantee), so the
//!   last assignment stays served, never an empty one caused by the outage; a log line and
//!   `zoorpc_xds_zookeeper_connected 0` say so, until the link is back.
//! - Names: `--service NAME=BASE_PATH` and `--master NAME=PATH` as given; any other name `N` is
//!   the base path `<root>/N`, if `N` is a [`service_name`] and that a path ZooKeeper takes.
//!   At most [`MAX_NAMES`] names with subscribers are followed (each is a watch on ZooKeeper);
//!   one more is refused until a name is released. A name refused (not a name, or past the
//!   cap) is answered with a Listener that routes nowhere ([`resources::unserved_listener`]):
//!   the client's calls fail at once instead of after its resource timer (15 s).

mod follow;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::task::AbortHandle;

use envoy_types::pb::google::protobuf::Any;
use tokio::sync::{OnceCell, watch};
use tracing::debug;
use zoorpc_registry::{Discovery, MasterWatch, Session};

use follow::{follow, report_link};

use super::assignment::{self, XdsEndpoint};
use super::resources::{self, Kind};
use super::service_name;

/// The most service names with subscribers followed at once.
pub const MAX_NAMES: usize = 1000;

/// How long a name without subscribers stays followed by default (`--linger-ms`): longer than a
/// client takes to reconnect its ADS stream, so a reconnect does not drop and start a watch.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(30);

/// The version of a refused name's Listener: never a served one's, so a name served later is
/// sent as a change.
const UNSERVED: u64 = u64::MAX;

/// Why a name is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a service name, or not a path ZooKeeper takes.
    NotAName,
    /// [`MAX_NAMES`] names with subscribers are followed already.
    TooMany,
}

/// How long a follower waits before trying again to start a watch that failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// One resource as served: its version (grows with every change of the resource) and its
/// encoding, shared by every stream that sends it.
#[derive(Clone, Debug)]
pub struct Versioned {
    pub version: u64,
    pub any: Arc<Any>,
}

/// Where a name's endpoints come from.
#[derive(Clone, Debug)]
enum Source {
    /// The providers under a base path.
    Providers(String),
    /// The master of an election path.
    Master(String),
}

/// One watch per path, shared by every name mapped to it: started by the first name's follower
/// (the others wait for it); each follower holds it (`Arc`), the map only refers to it, so the
/// watch ends with the last follower of its path.
type Shared<W> = Mutex<HashMap<String, Weak<OnceCell<W>>>>;

/// A name's resources, and who needs them.
struct Entry {
    /// Listener, route configuration and cluster: fixed for the name (version 0).
    fixed: [Arc<Any>; 3],
    /// The assignment; `None` until the name's watch first read ZooKeeper.
    endpoints: Option<Versioned>,
    /// Streams subscribed to the name: at 0 (unless `pinned`) the linger starts.
    holders: usize,
    /// Given on the command line: followed for the life of the process.
    pinned: bool,
    /// Which linger is under way, if any: a linger ending releases the name only if it is still
    /// the current one (a subscriber that came and went meanwhile started another).
    lingering: Option<u64>,
    /// The follower task, aborted (dropping its watch) when the name is released.
    follower: AbortHandle,
}

/// Every name's resources, and who follows them. Shared (`Arc`) by the server and its tasks.
pub struct Catalog {
    session: Session,
    /// Where the base paths of names without a `--service` are (`--root`), ending in `/`.
    root: String,
    /// `--service` and `--master`, by name.
    sources: BTreeMap<String, Source>,
    entries: Mutex<HashMap<String, Entry>>,
    /// The watch of each base path followed.
    discoveries: Shared<Discovery>,
    /// The watch of each election path followed.
    masters: Shared<MasterWatch>,
    /// Grows by one at every change of any name's assignment (and at every release): what
    /// wakes the streams.
    changes: watch::Sender<u64>,
    /// How long a name without subscribers stays followed.
    linger: Duration,
    /// Numbers the lingers (see [`Entry::lingering`]).
    lingers: std::sync::atomic::AtomicU64,
}

impl Catalog {
    /// A catalog following the `services` (name, base path) and `masters` (name, election path)
    /// given on the command line at once; other names when asked for.
    pub fn start(
        session: Session,
        root: &str,
        services: Vec<(String, String)>,
        masters: Vec<(String, String)>,
        linger: Duration,
    ) -> Arc<Catalog> {
        let sources: BTreeMap<String, Source> = services
            .into_iter()
            .map(|(name, base)| (name, Source::Providers(base)))
            .chain(masters.into_iter().map(|(n, p)| (n, Source::Master(p))))
            .collect();
        let names: Vec<String> = sources.keys().cloned().collect();
        let catalog = Arc::new(Catalog {
            session: session.clone(),
            root: format!("{}/", root.trim_end_matches('/')),
            sources,
            entries: Mutex::new(HashMap::new()),
            discoveries: Mutex::default(),
            masters: Mutex::default(),
            changes: watch::Sender::new(0),
            linger,
            lingers: std::sync::atomic::AtomicU64::new(0),
        });
        for name in names {
            if let Some(source) = catalog.source(&name) {
                catalog
                    .lock()
                    .insert(name.clone(), catalog.entry(&name, source, true));
            }
        }
        tokio::spawn(report_link(session));
        catalog
    }

    /// A receiver woken at every change of any assignment.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The number of changes so far (the version a response carries).
    pub fn generation(&self) -> u64 {
        *self.changes.borrow()
    }

    /// Where `name`'s endpoints come from, if it is a name that can be served.
    fn source(&self, name: &str) -> Option<Source> {
        if let Some(source) = self.sources.get(name) {
            return Some(source.clone());
        }
        let path = format!("{}{}", self.root, service_name(name).ok()?);
        zoorpc_registry::validate_path(&path).ok()?;
        Some(Source::Providers(path))
    }

    /// A new entry for `name`, its follower started.
    fn entry(self: &Arc<Self>, name: &str, source: Source, pinned: bool) -> Entry {
        let fixed = [Kind::Listener, Kind::Route, Kind::Cluster]
            .map(|kind| Arc::new(kind.fixed(name).unwrap_or_default()));
        let follower = tokio::spawn(follow(self.clone(), name.to_owned(), source));
        Entry {
            fixed,
            endpoints: None,
            holders: usize::from(!pinned),
            pinned,
            lingering: None,
            follower: follower.abort_handle(),
        }
    }

    /// Subscribes one stream to `name`, following it if it is not yet; each success is undone
    /// by one [`Catalog::release`].
    pub fn hold(self: &Arc<Self>, name: &str) -> Result<(), Refused> {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(name) {
            entry.holders += 1;
            entry.lingering = None;
            return Ok(());
        }
        let source = self.source(name).ok_or(Refused::NotAName)?;
        let held = entries.values().filter(|e| e.holders > 0).count();
        if held >= MAX_NAMES {
            return Err(Refused::TooMany);
        }
        let entry = self.entry(name, source, false);
        entries.insert(name.to_owned(), entry);
        Ok(())
    }

    /// Undoes one [`Catalog::hold`] of `name`: the last one starts its linger.
    pub fn release(self: &Arc<Self>, name: &str) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(name) else {
            return;
        };
        entry.holders = entry.holders.saturating_sub(1);
        if entry.holders > 0 || entry.pinned {
            return;
        }
        let linger = self
            .lingers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        entry.lingering = Some(linger);
        // A stream dropped as the runtime shuts down has no linger to wait for.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (catalog, name) = (self.clone(), name.to_owned());
        runtime.spawn(async move {
            tokio::time::sleep(catalog.linger).await;
            catalog.lingered(&name, linger);
        });
    }

    /// The end of `name`'s linger `linger`: releases the name if no stream took it since.
    fn lingered(&self, name: &str, linger: u64) {
        let mut entries = self.lock();
        if entries
            .get(name)
            .is_none_or(|e| e.lingering != Some(linger))
        {
            return;
        }
        if let Some(entry) = entries.remove(name) {
            entry.follower.abort();
        }
        // A wildcard subscriber no longer gets the name; a stream refused a name may get it now.
        self.changes.send_modify(|generation| *generation += 1);
        drop(entries);
        debug!(name, "no client subscribes to {name}: released");
        metrics::gauge!("zoorpc_xds_endpoints", "name" => name.to_owned()).set(0.0);
    }

    /// The resource of `kind` for `name`, if there is one (yet); a name not followed has its
    /// Listener routing nowhere.
    pub fn resource(&self, kind: Kind, name: &str) -> Option<Versioned> {
        let entries = self.lock();
        let Some(entry) = entries.get(name) else {
            return (kind == Kind::Listener).then(|| Versioned {
                version: UNSERVED,
                any: Arc::new(resources::unserved_listener(name)),
            });
        };
        let fixed = |i: usize| {
            Some(Versioned {
                version: 0,
                any: entry.fixed[i].clone(),
            })
        };
        match kind {
            Kind::Listener => fixed(0),
            Kind::Route => fixed(1),
            Kind::Cluster => fixed(2),
            Kind::Endpoints => entry.endpoints.clone(),
        }
    }

    /// Every name followed (what a wildcard subscription gets).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Takes in `name`'s endpoints: a new version if they changed, and every stream woken.
    fn publish(&self, name: &str, endpoints: &[XdsEndpoint]) {
        let any = assignment::assignment(name, endpoints);
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(name) else {
            return;
        };
        if entry.endpoints.as_ref().is_some_and(|e| *e.any == any) {
            return;
        }
        // The version and the generation move together, under the lock: two names changing
        // at once get two versions.
        self.changes.send_modify(|generation| {
            *generation += 1;
            entry.endpoints = Some(Versioned {
                version: *generation,
                any: Arc::new(any),
            });
        });
        drop(entries);
        metrics::gauge!("zoorpc_xds_endpoints", "name" => name.to_owned())
            .set(endpoints.len() as f64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves whole values behind: keep serving them.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
