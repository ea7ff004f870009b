//! `Session`: one logical ZooKeeper session that outlives expiry.
//!
//! ZooKeeper sessions die for good on expiry, and the client never reconnects after `Expired`.
//! `Session` hides that: a supervisor task watches the client's state, and on a terminal state it
//! builds a new client (retrying while ZooKeeper is unreachable) and publishes it as a new
//! *generation*. Recipes (registration, discovery, election) subscribe to [`SessionStatus`] and
//! re-create their ephemerals when the generation changes; a reconnect within the same
//! generation re-creates nothing.
//!
//! Guarantees:
//! - `connect` returns only with an established session, or an error naming the connect string
//!   within the configured connect timeout.
//! - A session timeout the wire cannot carry (zero, under 1 ms, over `i32::MAX` ms) or a zero
//!   connect timeout is refused by `connect` with [`Error::InvalidSetting`], never silently
//!   replaced (the client library would turn 0 into 6 s and wrap 2^31 ms to a negative value the
//!   server raises to its minimum).
//! - Every status change is published in order; `generation` only grows.
//! - With a `ZkCredential` every connection of every generation is authenticated with it
//!   (see [`crate::auth`]); the credential's password never appears in logs or `Debug`.
//! - Dropping the last `Session` handle (and every recipe holding one) closes the session.
//! - A chroot in the connect string (`host:port/app`) is created when missing: when a session
//!   opens, and whenever a recipe finds it missing later (an operator's `deleteall /app`),
//!   saying so in the log; errors name nodes with their chroot (`/app/registry`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use zookeeper_client as zk;

use crate::auth::NodeAcl;
use crate::connect_string::ConnectString;
use crate::error::{Error, Result};

mod config;
use crate::plumbing::ensure_path;
pub use config::SessionConfig;

/// Link state within a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Connected; requests are served.
    Connected,
    /// The connection is lost; the session may still come back (ephemerals still exist).
    Disconnected,
    /// The session expired or was closed; a new one is being established.
    Expired,
}

/// What recipes see: the current client, its generation and its link state.
#[derive(Clone, Debug)]
pub struct SessionStatus {
    /// Grows by one each time a new ZooKeeper session replaces an expired one.
    pub generation: u64,
    /// Link state of this generation.
    pub state: LinkState,
    /// The client of this generation.
    pub client: zk::Client,
}

impl SessionStatus {
    /// Whether requests can be served now.
    pub fn is_connected(&self) -> bool {
        self.state == LinkState::Connected
    }
}

/// A ZooKeeper session that survives expiry. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Session {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: SessionConfig,
    status: watch::Sender<SessionStatus>,
    supervisor: JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

impl Session {
    /// Connects, waiting at most the configured connect timeout for the first session. A
    /// timeout out of range is an [`Error::InvalidSetting`] (see [`SessionConfig::validate`]);
    /// ZooKeeper out of reach for that long is an [`Error::Unreachable`] naming the connect
    /// string. After an expiry the session opens a new ZooKeeper session itself and publishes
    /// it as the next generation ([`Session::subscribe`]).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_registry::Error> {
    /// use std::time::Duration;
    /// use zoorpc_registry::{Session, SessionConfig, ZkCredential};
    /// let config = SessionConfig::new("127.0.0.1:2181,127.0.0.1:2182")
    ///     .session_timeout(Duration::from_secs(6))
    ///     .credential(Some(ZkCredential::from_file("/etc/zoorpc/zk-auth")?));
    /// let session = Session::connect(config).await?;
    /// println!("session 0x{:x}, timeout {:?}", session.session_id(), session.session_timeout());
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: SessionConfig) -> Result<Session> {
        config.validate()?;
        let client = open(&config).await?;
        info!(
            connect = %config.connect,
            session = %client.session_id(),
            timeout = ?client.session_timeout(),
            "ZooKeeper session established"
        );
        let (status, _) = watch::channel(SessionStatus {
            generation: 0,
            state: LinkState::Connected,
            client: client.clone(),
        });
        connected_gauge(&config, true);
        let supervisor = tokio::spawn(supervise(config.clone(), status.clone(), client));
        Ok(Session {
            shared: Arc::new(Shared {
                config,
                status,
                supervisor,
            }),
        })
    }

    /// Shorthand for `Session::connect(SessionConfig::new(connect))`.
    pub async fn connect_to(connect: &str) -> Result<Session> {
        Session::connect(SessionConfig::new(connect)).await
    }

    /// The configuration this session was opened with.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.config
    }

    /// The current status.
    pub fn status(&self) -> SessionStatus {
        self.shared.status.borrow().clone()
    }

    /// A receiver of status changes.
    pub fn subscribe(&self) -> watch::Receiver<SessionStatus> {
        self.shared.status.subscribe()
    }

    /// The client of the current generation.
    pub fn client(&self) -> zk::Client {
        self.shared.status.borrow().client.clone()
    }

    /// The current ZooKeeper session id.
    pub fn session_id(&self) -> i64 {
        self.client().session_id().0
    }

    /// How long this session waits for ZooKeeper when it is out of reach (its config's connect
    /// timeout).
    pub fn connect_timeout(&self) -> Duration {
        self.shared.config.connect_timeout
    }

    /// The connect string this session was opened with.
    pub fn connect_string(&self) -> &str {
        &self.shared.config.connect
    }

    /// Who may change the nodes this session creates (its config's [`SessionConfig::node_acl`]).
    pub fn node_acl(&self) -> NodeAcl {
        self.shared.config.node_acl()
    }

    /// The negotiated session timeout of the current generation.
    pub fn session_timeout(&self) -> Duration {
        self.client().session_timeout()
    }

    /// Waits until connected, at most the configured connect timeout; an error naming the
    /// connect string when ZooKeeper stays out of reach that long.
    pub async fn connected_within_timeout(&self) -> Result<SessionStatus> {
        self.connected_within(self.shared.config.connect_timeout)
            .await
    }

    /// Waits until connected, at most `timeout`; an error naming the connect string when
    /// ZooKeeper stays out of reach that long.
    pub async fn connected_within(&self, timeout: Duration) -> Result<SessionStatus> {
        tokio::time::timeout(timeout, self.connected())
            .await
            .map_err(|_| Error::Unreachable {
                connect: self.shared.config.connect.clone(),
                timeout,
                detail: "the session is disconnected and did not reconnect in time".into(),
            })
    }

    /// Waits until connected and returns that status.
    pub async fn connected(&self) -> SessionStatus {
        let mut rx = self.subscribe();
        loop {
            let status = rx.borrow_and_update().clone();
            if status.is_connected() {
                return status;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`; this cannot end while we hold it.
                return status;
            }
        }
    }
}

/// Opens one ZooKeeper session within the configured timeout. A chroot in the connect string is
/// created when missing (as Curator does for its namespace), then every path is relative to it;
/// a chroot deleted later is created again by the recipes' `ensure_path` when they next create
/// a node (registration, election).
async fn open(config: &SessionConfig) -> Result<zk::Client> {
    let connect = ConnectString::parse(&config.connect)?;
    let unreachable = |detail: String| Error::Unreachable {
        connect: connect.to_string(),
        timeout: config.connect_timeout,
        detail,
    };
    let mut connector = zk::Client::connector()
        .with_session_timeout(config.session_timeout)
        .with_connection_timeout(config.connect_timeout.min(Duration::from_secs(5)));
    if let Some(credential) = &config.credential {
        // Sent with the session's first request and again on every reconnect.
        connector = connector.with_auth("digest", &credential.digest_auth());
    }
    let connecting = connector.connect(connect.hosts_str());
    let client = match tokio::time::timeout(config.connect_timeout, connecting).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => return Err(unreachable("no session was established".into())),
    };
    let Some(chroot) = connect.chroot() else {
        return Ok(client);
    };
    ensure_path(&client, chroot, config.node_acl()).await?;
    client
        .chroot(chroot)
        .map_err(|_| Error::InvalidConnectString {
            connect: connect.to_string(),
            reason: format!("ZooKeeper does not accept the chroot {chroot}"),
        })
}

/// Follows the client's state; on a terminal state opens a new session.
async fn supervise(
    config: SessionConfig,
    status: watch::Sender<SessionStatus>,
    client: zk::Client,
) {
    let mut client = client;
    let mut generation = 0u64;
    // The previous generation's status (and its ended client), kept until the next one: a
    // recipe still waiting on one of its watches when the generation changes drops that watch
    // after hearing of the change; dropping the client first would cancel the watch under it
    // (zookeeper-client then panics inside the waiting task).
    let mut _retired: Option<SessionStatus> = None;
    loop {
        let states = follow_link(&config, &status, &client).await;
        warn!(
            session = %client.session_id(),
            state = %states.peek_state(),
            "ZooKeeper session ended; opening a new one"
        );
        connected_gauge(&config, false);
        metrics::counter!("zoorpc_zk_expiries_total", "zk" => config.connect_string().to_owned())
            .increment(1);
        status.send_modify(|s| s.state = LinkState::Expired);
        client = reopen(&config).await;
        generation += 1;
        info!(session = %client.session_id(), generation, "new ZooKeeper session established");
        connected_gauge(&config, true);
        _retired = Some(status.send_replace(SessionStatus {
            generation,
            state: LinkState::Connected,
            client: client.clone(),
        }));
    }
}

/// Publishes `client`'s link state as it changes until its session ends; returns its state
/// watcher, which tells how it ended.
async fn follow_link(
    config: &SessionConfig,
    status: &watch::Sender<SessionStatus>,
    client: &zk::Client,
) -> zk::StateWatcher {
    let mut states = client.state_watcher();
    loop {
        let state = states.changed().await;
        let link = match state {
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                LinkState::Connected
            }
            zk::SessionState::Disconnected => LinkState::Disconnected,
            _ => return states,
        };
        info!(session = %client.session_id(), ?link, "ZooKeeper link state");
        connected_gauge(config, link == LinkState::Connected);
        if link == LinkState::Disconnected {
            metrics::counter!("zoorpc_zk_disconnects_total", "zk" => config.connect_string().to_owned())
                .increment(1);
        }
        status.send_modify(|s| s.state = link);
    }
}

/// A new session, tried until one opens (backing off from 50 ms to 2 s between tries).
async fn reopen(config: &SessionConfig) -> zk::Client {
    let mut backoff = Duration::from_millis(50);
    loop {
        match open(config).await {
            Ok(client) => return client,
            Err(e) => {
                warn!(error = %e, "cannot open a new ZooKeeper session yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// `zoorpc_zk_connected{zk}`: 1 while the session's link is up (a no-op without a recorder).
/// With `zoorpc_zk_disconnects_total{zk}` and `zoorpc_zk_expiries_total{zk}` (a new session
/// opened), the session's state for dashboards.
fn connected_gauge(config: &SessionConfig, connected: bool) {
    metrics::gauge!("zoorpc_zk_connected", "zk" => config.connect_string().to_owned())
        .set(if connected { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refused before any connection is tried (127.0.0.1:1 would take the connect timeout).
    #[tokio::test]
    async fn connect_refuses_timeouts_the_wire_cannot_carry() {
        for timeout in [
            Duration::ZERO,
            Duration::from_micros(999),
            Duration::from_millis(1 << 31),
            Duration::from_millis(u64::MAX),
        ] {
            let config = SessionConfig::new("127.0.0.1:1").session_timeout(timeout);
            let started = std::time::Instant::now();
            let err = Session::connect(config).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidSetting {
                        setting: "session timeout",
                        ..
                    }
                ),
                "{timeout:?}: {err}"
            );
            assert!(err.to_string().contains("1 ms to 2147483647 ms"), "{err}");
            assert!(started.elapsed() < Duration::from_secs(1));
        }
        let config = SessionConfig::new("127.0.0.1:1").connect_timeout(Duration::ZERO);
        let err = Session::connect(config).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidSetting {
                    setting: "connect timeout",
                    ..
                }
            ),
            "{err}"
        );
    }
}
