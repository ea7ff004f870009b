//! Requests that went unanswered, and waiting for the connection to come back: what every recipe
//! needs to survive a lost reply without doing its write twice.

use std::time::Duration;

use zookeeper_client as zk;

use crate::error::{Error, Result};

/// Pause before trying again after a failed ZooKeeper request (unless the session changes
/// first). One value for every recipe.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// How many unanswered requests one operation lives through before it reports the failure.
pub(crate) const MAX_LOST_REPLIES: u32 = 20;

/// Whether a failed request may still have taken effect: its answer never arrived (connection
/// lost, no response in time; zookeeper-client reports the latter as a custom error). A definite
/// answer from ZooKeeper (`NoNode`, `NodeExists`, ...) or a terminated session means it did not,
/// or that it no longer matters.
pub(crate) fn unanswered(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::Custom(_)
    )
}

/// Waits until `client` is connected again (same session), at most two session timeouts; an
/// ended session or the bound is an error.
pub(crate) async fn wait_reconnected(client: &zk::Client) -> Result<()> {
    let mut states = client.state_watcher();
    let deadline = tokio::time::Instant::now() + client.session_timeout() * 2;
    loop {
        match states.state() {
            zk::SessionState::SyncConnected => return Ok(()),
            s if s.is_terminated() => return Err(Error::zk("reconnect", "/", ended(s))),
            _ => {}
        }
        if tokio::time::timeout_at(deadline, states.changed())
            .await
            .is_err()
        {
            return Err(Error::zk("reconnect", "/", zk::Error::ConnectionLoss));
        }
    }
}

/// The error a terminated session state stands for.
fn ended(state: zk::SessionState) -> zk::Error {
    match state {
        zk::SessionState::Expired => zk::Error::SessionExpired,
        zk::SessionState::AuthFailed => zk::Error::AuthFailed,
        _ => zk::Error::ClientClosed,
    }
}
