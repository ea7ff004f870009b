//! Expiring a client's session from outside, as ZooKeeper's own test suites do.

use std::time::Duration;

/// Expires the session `session` of a client connected to `connect`: another client joins the
/// same session (id and password) and closes it, as the ZooKeeper test suites do. Every
/// ephemeral of that session is deleted and its client sees `Expired`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let zk = zoorpc_testkit::ZkServer::shared()?;
/// let client = zookeeper_client::Client::connect(&zk.connect_string()).await?;
/// let mut states = client.state_watcher();
/// zoorpc_testkit::expire_session(&zk.connect_string(), client.session().clone()).await?;
/// let ended = loop {
///     let state = states.changed().await;
///     if state.is_terminated() {
///         break state;
///     }
/// };
/// assert_eq!(ended, zookeeper_client::SessionState::Expired);
/// // `client` is done for good: the code under test must open a new session
/// # Ok(()) }
/// ```
pub async fn expire_session(
    connect: &str,
    session: zookeeper_client::SessionInfo,
) -> Result<(), zookeeper_client::Error> {
    const ATTEMPTS: u64 = 40;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // The session's own client takes the connection back as soon as the twin has it, so a
        // twin can wait many seconds for its handshake; give up after one and join again.
        let joining = zookeeper_client::Client::connector()
            .with_session(session.clone())
            .with_session_timeout(Duration::from_secs(10))
            .connect(connect);
        let twin = tokio::time::timeout(Duration::from_secs(1), joining)
            .await
            .unwrap_or(Err(zookeeper_client::Error::Timeout));
        match twin {
            Ok(twin) => {
                drop(twin);
                // The twin's close races the session's own client, which reconnects as soon as
                // the twin takes its connection over; if that reconnect wins, the session lives
                // on. Join again to find out: `SessionExpired` once it is really gone.
                // Bounded, but generous: in 100 expiries in a row (tests/registry/expiry_rounds.rs) the
                // session's own client once won ten races in a row on a loaded machine.
                if attempt >= ATTEMPTS {
                    return Err(zookeeper_client::Error::Timeout);
                }
                tokio::time::sleep(Duration::from_millis((5 * attempt).min(100))).await;
            }
            // Already expired: what the caller wanted.
            Err(zookeeper_client::Error::SessionExpired) => return Ok(()),
            Err(zookeeper_client::Error::Timeout) if attempt < ATTEMPTS => {}
            Err(e) if attempt >= 3 => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "joining the session to expire it failed; retrying")
            }
        }
    }
}
