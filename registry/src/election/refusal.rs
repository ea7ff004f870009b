//! The fast takeover's proof that a master's process is gone: its own `host:port` *refusing*
//! TCP connections (the kernel answering RST: nothing listens there), several times over a
//! short window. Silence proves nothing: a connect that times out (a paused process still has
//! its listening socket and the kernel completes the handshake; a dead host or a partition
//! answer nothing) starts the count again, and the session timeout decides as without the
//! fast takeover.
//!
//! A standby holds one idle TCP connection to its master's address: the master's process
//! dying closes it at once (the kernel closes a dead process's sockets), which starts the
//! proof. Nothing is sent on it; a server closing it for its own reasons only costs a round of
//! connects that succeed (no proof) and a new idle connection.

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tracing::{debug, info};
use zookeeper_client as zk;

use super::campaign::{Campaign, Next};
use super::participants::{self, participant_data, participant_path};
use super::writes::Depose;

/// When a standby may take over from a master whose process is proven gone (see the
/// [module docs](super#the-fast-takeover)).
///
/// ```
/// use std::time::Duration;
/// use zoorpc_registry::election::FastTakeover;
/// let off = FastTakeover::default();
/// assert!(!off.enabled);
/// assert_eq!((off.refusals, off.spacing), (3, Duration::from_millis(100)));
/// let on = FastTakeover::on();
/// assert!(on.enabled && on.refusals == 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastTakeover {
    /// Whether this contender takes over on such a proof, and lets its standbys do so when it
    /// is master (its address must then be served by this very process, as
    /// `zoorpc_provider::HaServer` checks before it contends). Default off: a library user's
    /// address may be a label nobody listens on.
    pub enabled: bool,
    /// How many connects must be refused in a row. Default 3.
    pub refusals: u32,
    /// The pause between two connects: the proof spans `(refusals - 1) * spacing`. Default
    /// 100 ms.
    pub spacing: Duration,
    /// How long one connect may take; one that takes longer proves nothing. Default 500 ms.
    pub connect_timeout: Duration,
}

impl Default for FastTakeover {
    fn default() -> Self {
        FastTakeover {
            enabled: false,
            refusals: 3,
            spacing: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(500),
        }
    }
}

impl FastTakeover {
    /// The defaults, switched on.
    pub fn on() -> Self {
        FastTakeover {
            enabled: true,
            ..FastTakeover::default()
        }
    }
}

/// What one connect showed.
enum Attempt {
    /// Something listens: the connection, to hold.
    Listening(TcpStream),
    /// Refused: nothing listens there now.
    Refused,
    /// Anything else (a timeout, unreachable, a name that does not resolve): no proof.
    Unknown,
}

async fn connect(address: &str, timeout: Duration) -> Attempt {
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => Attempt::Listening(stream),
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => Attempt::Refused,
        Ok(Err(e)) => {
            debug!(address, error = %e, "connect to the master failed (no proof)");
            Attempt::Unknown
        }
        Err(_) => Attempt::Unknown,
    }
}

/// Resolves once `address` refused `settings.refusals` connects in a row, `settings.spacing`
/// apart; never otherwise (the caller drops it when the master node changes).
pub(super) async fn proven_gone(address: &str, settings: &FastTakeover) {
    // After a connect that proved nothing, wait before trying again: never a busy loop.
    let mut pause = settings.spacing;
    loop {
        match connect(address, settings.connect_timeout).await {
            Attempt::Listening(stream) => {
                closed(stream).await;
                pause = settings.spacing;
            }
            Attempt::Refused => {}
            Attempt::Unknown => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        if refused_in_a_row(address, settings).await {
            return;
        }
        tokio::time::sleep(settings.spacing).await;
    }
}

/// Waits until the peer closes `stream` (or it fails); whatever it sends is read and dropped.
async fn closed(mut stream: TcpStream) {
    let mut buffer = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            return;
        }
    }
}

/// Whether `address` refuses `settings.refusals` connects in a row.
async fn refused_in_a_row(address: &str, settings: &FastTakeover) -> bool {
    for i in 0..settings.refusals.max(1) {
        if i > 0 {
            tokio::time::sleep(settings.spacing).await;
        }
        if !matches!(
            connect(address, settings.connect_timeout).await,
            Attempt::Refused
        ) {
            return false;
        }
    }
    true
}

/// A master that may be proven gone: its address and its node (`czxid`, version).
pub(super) struct Suspect {
    address: String,
    node: (i64, i32),
}

impl Campaign {
    /// This contender's participant node data: its address, and whether it declares it served
    /// (it does with the fast takeover on).
    pub(super) fn participant(&self) -> String {
        participant_data(&self.address, self.fast.enabled)
    }

    /// Stands by `holder`, holding the node `stat`. With the fast takeover on and a holder of
    /// ours that declared its address served (its participant node says so): watch for the
    /// proof that its process is gone, and take over once this very node is proven so. Anyone
    /// else (a foreign holder, whose address is a label; one of ours that declared nothing) is
    /// waited out until its session ends.
    pub(super) async fn stand_by(
        &mut self,
        client: &zk::Client,
        stat: &zk::Stat,
        holder: String,
        watcher: zk::OneshotWatcher,
        companion: std::result::Result<(Vec<u8>, zk::Stat), zk::Error>,
    ) -> Next {
        if !self.fast.enabled || stat.ephemeral_owner == 0 {
            return Next::Watch(watcher);
        }
        let owner = participant_path(&self.path, stat.ephemeral_owner);
        let declared = match client.get_data(&owner).await {
            Ok((data, _)) => participants::declares_served(&data, &holder),
            Err(zk::Error::NoNode) => {
                // Deleted by hand (or a holder that is not ours): a holder of ours creates it
                // again at once, and its declaration is what this standby waits for.
                self.proven = None;
                return match client.check_and_watch_stat(&owner).await {
                    Ok((None, created)) => Next::Either(watcher, created),
                    Ok((Some(_), _)) => Next::Again,
                    Err(e) => {
                        debug!(error = %e, path = %owner, "cannot watch the master's participant node");
                        Next::Watch(watcher)
                    }
                };
            }
            Err(e) => {
                debug!(error = %e, path = %owner, "cannot read the master's participant node");
                false
            }
        };
        let node = (stat.czxid, stat.version);
        if !declared {
            self.proven = None;
            return Next::Watch(watcher);
        }
        if self.proven.take() != Some(node) {
            return Next::Probe(
                watcher,
                Suspect {
                    address: holder,
                    node,
                },
            );
        }
        let Ok((_, companion)) = companion else {
            return Next::Again;
        };
        info!(path = %self.path, master = %holder, "the master's address refuses connections: its process is gone; taking over");
        let depose = Depose {
            version: stat.version,
            participant: Some(owner),
        };
        self.take_over(client, Some(depose), companion.version)
            .await
    }

    /// Waits for the node's watch, or for the proof that `suspect`'s process is gone (then
    /// remembered for the next step, which takes over if the node is still the same); whether
    /// the watch reported the node deleted.
    pub(super) async fn probe(&mut self, watcher: zk::OneshotWatcher, suspect: Suspect) -> bool {
        tokio::select! {
            event = watcher.changed() => event.event_type == zk::EventType::NodeDeleted,
            () = proven_gone(&suspect.address, &self.fast) => {
                self.proven = Some(suspect.node);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_proven_gone_and_a_listening_one_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let settings = FastTakeover::on();
        // Listening: no proof while it listens.
        let waiting =
            tokio::time::timeout(Duration::from_millis(500), proven_gone(&address, &settings));
        assert!(waiting.await.is_err(), "a listening port was proven gone");
        // Gone: proven within the window and a little more.
        drop(listener);
        let proven =
            tokio::time::timeout(Duration::from_secs(5), proven_gone(&address, &settings)).await;
        assert!(proven.is_ok(), "a closed port was not proven gone");
    }
}
