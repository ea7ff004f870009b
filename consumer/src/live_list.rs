//! The task behind a consumer's list: copies discovery's snapshots into the endpoint set (and
//! the on-disk snapshot, when configured); for a consumer started from a snapshot while
//! ZooKeeper was out of reach, it first keeps trying to connect, and the first live listing
//! replaces the snapshot's list.
//!
//! Guarantees:
//! - The endpoint set is updated before the list is published to `subscribe()`rs. A consumer
//!   started from a snapshot reports itself live (`Consumer::snapshot_age` is `None`, `session()`
//!   is `Some`) as the first live list is installed: just before the endpoint set changes, so
//!   whoever sees the set change sees the consumer live.
//! - The on-disk snapshot is written on every live change, never from a snapshot's own list.
//! - Nothing waits without bound: each connection attempt is bounded by the connect timeout,
//!   with a pause of at most 2 s between attempts.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use zoorpc_registry::{Discovery, NodeFormat, Providers, Session, ZkCredential};

use crate::balance::EndpointSet;
use crate::error::open_session;
use crate::snapshot;

/// The ZooKeeper side of a consumer once connected.
#[derive(Debug)]
pub(crate) struct Live {
    /// The session the discovery runs in.
    pub(crate) session: Session,
    /// Kept alive for as long as the consumer: dropping it stops the watch.
    pub(crate) discovery: Discovery,
}

/// What the task needs to connect later and to write the snapshot.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) zk: String,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) credential: Option<ZkCredential>,
    pub(crate) base_path: String,
    /// How the base path's children are read (zoorpc's URLs, Curator's JSON).
    pub(crate) format: NodeFormat,
    pub(crate) snapshot_path: Option<PathBuf>,
}

/// Where the list comes from at start.
pub(crate) enum Start {
    /// Connected: discovery's snapshots.
    Connected(watch::Receiver<Providers>),
    /// Serving a snapshot: connect first.
    Later,
}

/// Starts the task.
pub(crate) fn spawn(
    start: Start,
    settings: Settings,
    endpoints: Arc<EndpointSet>,
    providers: watch::Sender<Providers>,
    live: Arc<OnceLock<Live>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (mut snapshots, mut pending) = match start {
            Start::Connected(snapshots) => (snapshots, None),
            Start::Later => {
                let connected = connect(&settings).await;
                (connected.discovery.subscribe(), Some(connected))
            }
        };
        loop {
            let list = snapshots.borrow_and_update().clone();
            // Live first: whoever sees the endpoint set change sees the consumer live.
            match pending.take() {
                Some(connected) => {
                    let _ = live.set(connected);
                    info!(count = list.len(), base_path = %settings.base_path, "connected to ZooKeeper; the live list replaces the snapshot's");
                }
                None => debug!(count = list.len(), "provider list updated"),
            }
            endpoints.update(&list);
            crate::balance::live_endpoints(&settings.base_path, endpoints.len());
            providers.send_replace(list.clone());
            save(&settings, list).await;
            if snapshots.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Connects and starts discovery, retrying until it works.
async fn connect(settings: &Settings) -> Live {
    let mut pause = Duration::from_millis(100);
    loop {
        let opened = open_session(
            &settings.zk,
            settings.session_timeout,
            settings.connect_timeout,
            settings.credential.clone(),
        )
        .await;
        let failure = match opened {
            Ok(session) => {
                match Discovery::watch_format(&session, &settings.base_path, settings.format).await
                {
                    Ok(discovery) => return Live { session, discovery },
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        debug!(error = %failure, "ZooKeeper still out of reach; serving the snapshot");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Writes the snapshot file, if configured (a failure is a warning: the list keeps serving).
async fn save(settings: &Settings, list: Providers) {
    let Some(path) = settings.snapshot_path.clone() else {
        return;
    };
    let base = settings.base_path.clone();
    let written = tokio::task::spawn_blocking(move || {
        snapshot::write(&path, &base, &list).map_err(|e| format!("{}: {e}", path.display()))
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "cannot write the provider list snapshot"),
        Err(e) => warn!(error = %e, "the snapshot writer stopped"),
    }
}
