//! The followers of the catalog's names: one task per name on the shared watch of its path
//! ([`Discovery`] or [`MasterWatch`]), publishing every change; and the report of ZooKeeper's
//! link.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use tokio::sync::{OnceCell, watch};
use tracing::{info, warn};
use zoorpc_registry::{Discovery, MasterWatch, Session};

use super::super::assignment::{self, XdsEndpoint};
use super::{Catalog, RETRY_PAUSE, Shared, Source};

/// Follows `name`'s source, publishing every change, until the name is released (the task
/// aborted).
pub(super) async fn follow(catalog: Arc<Catalog>, name: String, source: Source) {
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

/// A subscription to `path`'s watch in `watches`, started with `start` (and [`started`]) if no
/// follower holds it now; the others wait for that one. The watch lives as long as one of the
/// returned `Arc`s does.
async fn subscribed<W, T, F, Fut>(
    watches: &Shared<W>,
    name: &str,
    path: &str,
    start: F,
    subscribe: impl Fn(&W) -> watch::Receiver<T>,
) -> (watch::Receiver<T>, Arc<OnceCell<W>>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = zoorpc_registry::Result<W>>,
{
    let cell = {
        let mut watches = watches.lock().unwrap_or_else(|p| p.into_inner());
        // The paths of released names go (their watches went with their last follower).
        watches.retain(|_, held| held.strong_count() > 0);
        match watches.get(path).and_then(Weak::upgrade) {
            Some(cell) => cell,
            None => {
                let cell = Arc::new(OnceCell::new());
                watches.insert(path.to_owned(), Arc::downgrade(&cell));
                cell
            }
        }
    };
    let watch = cell
        .get_or_init(|| async {
            info!(path, "watching {path}");
            started(name, path, start).await
        })
        .await;
    (subscribe(watch), cell.clone())
}

async fn follow_providers(catalog: &Catalog, name: &str, base: &str) {
    let start = || Discovery::watch(&catalog.session, base);
    // `_watch` keeps the base path's watch for as long as this name is followed.
    let (mut updates, _watch) = subscribed(
        &catalog.discoveries,
        name,
        base,
        start,
        Discovery::subscribe,
    )
    .await;
    info!(name, base, "serving the providers under {base} as {name}");
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
    let start = || MasterWatch::follow(&catalog.session, path);
    let (mut masters, _watch) =
        subscribed(&catalog.masters, name, path, start, MasterWatch::subscribe).await;
    info!(name, path, "serving the master of {path} as {name}");
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
pub(super) async fn report_link(session: Session) {
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
