//! What `zoorpc xds` serves: for every service name asked for, its four resources, the
//! endpoints kept up to date by one follower task per name, shared by every xDS stream.
//!
//! Guarantees:
//! - One ZooKeeper watch per name (a [`Discovery`] of its base path, or a [`MasterWatch`] of its
//!   election), started the first time any client asks for the name (or at start for the names
//!   given on the command line), however many clients subscribe.
//! - Every change the watch publishes becomes a new version of the name's assignment at once,
//!   and wakes every stream ([`Catalog::subscribe`]); an assignment equal to the last one is not
//!   a new version.
//! - An assignment is encoded once per change, whatever the number of streams.
//! - ZooKeeper out of reach: the watches keep their last snapshot (their own guarantee), so the
//!   last assignment stays served, never an empty one caused by the outage; a log line and
//!   `zoorpc_xds_zookeeper_connected 0` say so, until the link is back.
//! - Names: `--service NAME=BASE_PATH` and `--master NAME=PATH` as given; any other name `N` is
//!   the base path `<root>/N`, if `N` is a [`service_name`] and that a path ZooKeeper takes.
//!   At most [`MAX_NAMES`] names are followed (each is a watch on ZooKeeper).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use envoy_types::pb::google::protobuf::Any;
use tokio::sync::watch;
use tracing::{info, warn};
use zoorpc_registry::{Discovery, MasterWatch, Session};

use super::assignment::{self, XdsEndpoint};
use super::resources::Kind;
use super::service_name;

/// The most service names followed at once.
pub const MAX_NAMES: usize = 1000;

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

/// A name's resources.
struct Entry {
    /// Listener, route configuration and cluster: fixed for the name (version 0).
    fixed: [Arc<Any>; 3],
    /// The assignment; `None` until the name's watch first read ZooKeeper.
    endpoints: Option<Versioned>,
}

/// Every name's resources, and who follows them. Shared (`Arc`) by the server and its tasks.
pub struct Catalog {
    session: Session,
    /// Where the base paths of names without a `--service` are (`--root`), ending in `/`.
    root: String,
    /// `--service` and `--master`, by name.
    sources: BTreeMap<String, Source>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Grows by one at every change of any name's assignment: what wakes the streams.
    changes: watch::Sender<u64>,
}

impl Catalog {
    /// A catalog following the `services` (name, base path) and `masters` (name, election path)
    /// given on the command line at once; other names when asked for.
    pub fn start(
        session: Session,
        root: &str,
        services: Vec<(String, String)>,
        masters: Vec<(String, String)>,
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
            changes: watch::Sender::new(0),
        });
        for name in names {
            catalog.want(&name);
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

    /// Makes sure `name` is followed; `false` if it cannot be served (not a path, too many).
    pub fn want(self: &Arc<Self>, name: &str) -> bool {
        let source = match self.sources.get(name) {
            Some(source) => source.clone(),
            None => match service_name(name)
                .map(|name| format!("{}{name}", self.root))
                .and_then(|path| {
                    zoorpc_registry::validate_path(&path)
                        .map(str::to_owned)
                        .map_err(|e| e.to_string())
                }) {
                Ok(path) => Source::Providers(path),
                Err(_) => return false,
            },
        };
        let mut entries = self.lock();
        if entries.contains_key(name) {
            return true;
        }
        if entries.len() >= MAX_NAMES {
            warn!(
                name,
                "not serving another name: {MAX_NAMES} are followed already"
            );
            return false;
        }
        let fixed = [Kind::Listener, Kind::Route, Kind::Cluster]
            .map(|kind| Arc::new(kind.fixed(name).unwrap_or_default()));
        entries.insert(
            name.to_owned(),
            Entry {
                fixed,
                endpoints: None,
            },
        );
        drop(entries);
        tokio::spawn(follow(self.clone(), name.to_owned(), source));
        true
    }

    /// The resource of `kind` for `name`, if there is one (yet).
    pub fn resource(&self, kind: Kind, name: &str) -> Option<Versioned> {
        let entries = self.lock();
        let entry = entries.get(name)?;
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

/// Follows `name`'s source for the life of the process, publishing every change.
async fn follow(catalog: Arc<Catalog>, name: String, source: Source) {
    match source {
        Source::Providers(base) => follow_providers(&catalog, &name, &base).await,
        Source::Master(path) => follow_master(&catalog, &name, &path).await,
    }
}

/// Starts a watch with `start`, trying again after [`RETRY_PAUSE`] while it fails.
async fn started<W, F, Fut>(name: &str, what: &str, mut start: F) -> W
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = zoorpc_registry::Result<W>>,
{
    loop {
        match start().await {
            Ok(watch) => return watch,
            Err(e) => {
                warn!(name, error = %e, "cannot watch {what} yet; trying again in 1 s");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

async fn follow_providers(catalog: &Catalog, name: &str, base: &str) {
    let discovery = started(name, base, || Discovery::watch(&catalog.session, base)).await;
    info!(name, base, "serving the providers under {base} as {name}");
    let mut updates = discovery.subscribe();
    // Providers already warned about, so a bad one is named once, not at every change.
    let mut warned: HashSet<String> = HashSet::new();
    loop {
        let providers = updates.borrow_and_update().clone();
        let (endpoints, left_out) = assignment::endpoints_of(&providers);
        for (url, why) in left_out {
            if warned.insert(url.clone()) {
                warn!(name, %url, "provider left out of the assignment: {why}");
            }
        }
        catalog.publish(name, &endpoints);
        if updates.changed().await.is_err() {
            return;
        }
    }
}

async fn follow_master(catalog: &Catalog, name: &str, path: &str) {
    let watch = started(name, path, || MasterWatch::follow(&catalog.session, path)).await;
    info!(name, path, "serving the master of {path} as {name}");
    let mut masters = watch.subscribe();
    loop {
        let master = masters.borrow_and_update().clone();
        let endpoint = master.as_deref().and_then(XdsEndpoint::of_master);
        if let (Some(address), None) = (&master, &endpoint) {
            warn!(
                name,
                address, "the master's host is not an IP address: not served"
            );
        }
        catalog.publish(name, endpoint.as_slice());
        if masters.changed().await.is_err() {
            return;
        }
    }
}

/// Says when ZooKeeper goes out of reach and comes back (a log line and
/// `zoorpc_xds_zookeeper_connected`): the last state is served meanwhile.
async fn report_link(session: Session) {
    let mut statuses = session.subscribe();
    let mut was_connected = true;
    metrics::gauge!("zoorpc_xds_zookeeper_connected").set(1.0);
    loop {
        let connected = statuses.borrow_and_update().is_connected();
        if connected != was_connected {
            if connected {
                info!("ZooKeeper is back: following the registry again");
            } else {
                warn!("ZooKeeper is out of reach: serving the last known state");
            }
            metrics::gauge!("zoorpc_xds_zookeeper_connected").set(f64::from(u8::from(connected)));
            was_connected = connected;
        }
        if statuses.changed().await.is_err() {
            return;
        }
    }
}
