//! `MasterClient`: the consumer mode for active/standby services. Every call goes to the
//! current master of an election path (followed through ZooKeeper with a
//! [`MasterFollower`]), and a call that fails because the master is switching over is retried on
//! the new one.
//!
//! - The master's address is the master node's data, `host:port`; calls go to
//!   `http://<address>` on one reusable, lazily connected tonic `Channel` per address.
//! - Retried within [`MasterClientConfig::switch_over_timeout`]: a call never sent (connection
//!   refused, stream refused: the old master is gone), and a call a standby refused (it answers
//!   [`standby_status`], the request was not processed). A call that may have been processed is
//!   retried only when marked idempotent. Between attempts the client waits for the follower to
//!   report a change, at most [`MasterClientConfig::retry_pause`].
//! - No master and none within the bound: the registry's `NoMaster` error, naming the path.
//! - Application errors are returned at once, never retried.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_consumer::Error> {
//! use zoorpc_consumer::MasterClient;
//! let client = MasterClient::connect("127.0.0.1:2181", "/soa/master/services/HelloService:1.0.0").await?;
//! let answer = client.say_hello("zoo").await?;
//! println!("{} (from the master at {})", answer.value.message, answer.master);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Channel;
use tracing::debug;
use zoorpc_proto::{HelloReply, HelloRequest, HelloServiceClient};
use zoorpc_registry::{MasterFollower, Session, SessionConfig};

use crate::balance::{Failure, classify};
use crate::error::{Error, Result};

/// The metadata key a standby puts on its `UNAVAILABLE` answer (see [`standby_status`]).
pub const STANDBY_METADATA: &str = "zoorpc-standby";

/// Channels kept for addresses other than the current master (a master that comes back).
const KEPT_CHANNELS: usize = 8;

/// What a server that is not the master answers: `UNAVAILABLE`, marked with
/// [`STANDBY_METADATA`] (value: the master it knows, or empty), so a [`MasterClient`] knows the
/// request was not processed and retries it on the master.
///
/// ```
/// use zoorpc_consumer::master_client::{is_standby_refusal, standby_status};
/// let refusal = standby_status(Some("127.0.0.1:9090"));
/// assert_eq!(refusal.code(), tonic::Code::Unavailable);
/// assert!(is_standby_refusal(&refusal));
/// assert!(!is_standby_refusal(&tonic::Status::unavailable("overloaded")));
/// ```
pub fn standby_status(master: Option<&str>) -> tonic::Status {
    let known = master.unwrap_or("");
    let mut status = tonic::Status::unavailable(match master {
        Some(m) => format!("this server is a standby; the master is {m}"),
        None => "this server is a standby; no master is known".to_owned(),
    });
    if let Ok(value) = known.parse() {
        status.metadata_mut().insert(STANDBY_METADATA, value);
    }
    status
}

/// Whether `status` is a standby's refusal ([`standby_status`]).
pub fn is_standby_refusal(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && status.metadata().contains_key(STANDBY_METADATA)
}

/// How to build a master client.
#[derive(Clone, Debug)]
pub struct MasterClientConfig {
    /// ZooKeeper connect string.
    pub zk: String,
    /// The election path, e.g. `/soa/master/services/HelloService:1.0.0`.
    pub path: String,
    /// ZooKeeper session timeout.
    pub session_timeout: Duration,
    /// How long `connect` waits for ZooKeeper.
    pub connect_timeout: Duration,
    /// How long one call keeps retrying across a switch-over. Longer than the servers' session
    /// timeout, so a killed master's node has time to expire. Default 15 s.
    pub switch_over_timeout: Duration,
    /// Longest wait between two attempts when the follower reports no change. Default 50 ms.
    pub retry_pause: Duration,
}

impl MasterClientConfig {
    /// Defaults: 10 s session and connect timeouts, 15 s switch-over bound, 50 ms retry pause.
    pub fn new(zk: impl Into<String>, path: impl Into<String>) -> Self {
        MasterClientConfig {
            zk: zk.into(),
            path: path.into(),
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            switch_over_timeout: Duration::from_secs(15),
            retry_pause: Duration::from_millis(50),
        }
    }
}

/// A successful call: the value and the master that produced it.
#[derive(Debug)]
pub struct MasterAnswer<T> {
    /// The response.
    pub value: T,
    /// The address of the master that answered (`host:port`, as the node holds it).
    pub master: String,
    /// How many attempts it took (1 if the first one answered).
    pub attempts: usize,
}

/// Calls the current master of one election path.
#[derive(Debug)]
pub struct MasterClient {
    path: String,
    session: Session,
    follower: MasterFollower,
    channels: Mutex<HashMap<String, Channel>>,
    switch_over_timeout: Duration,
    retry_pause: Duration,
}

impl MasterClient {
    /// Connects to ZooKeeper and follows the master at `path`, with defaults.
    pub async fn connect(zk: &str, path: &str) -> Result<MasterClient> {
        MasterClient::connect_with(MasterClientConfig::new(zk, path)).await
    }

    /// Connects with `config`.
    pub async fn connect_with(config: MasterClientConfig) -> Result<MasterClient> {
        let session = Session::connect(
            SessionConfig::new(&config.zk)
                .session_timeout(config.session_timeout)
                .connect_timeout(config.connect_timeout),
        )
        .await?;
        let follower = MasterFollower::follow(&session, &config.path).await?;
        Ok(MasterClient {
            path: config.path,
            session,
            follower,
            channels: Mutex::new(HashMap::new()),
            switch_over_timeout: config.switch_over_timeout,
            retry_pause: config.retry_pause,
        })
    }

    /// The election path followed.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The ZooKeeper session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The follower of the master node.
    pub fn follower(&self) -> &MasterFollower {
        &self.follower
    }

    /// The current master's address, `None` if there is none right now.
    pub fn master(&self) -> Option<String> {
        self.follower.master()
    }

    /// A `HelloServiceClient` on the current master's channel, with its address; `NoMaster` at
    /// once if there is none. No retry: prefer [`MasterClient::call`].
    pub fn lookup(&self) -> Result<(String, HelloServiceClient<Channel>)> {
        let master = self.master().ok_or_else(|| self.no_master())?;
        let channel = self.channel(&master)?;
        Ok((master, HelloServiceClient::new(channel)))
    }

    /// Runs `f` on the current master's channel, retrying across a switch-over (see the module
    /// docs); `idempotent` allows retrying a call that may have been processed.
    pub async fn call<T, F, Fut>(&self, idempotent: bool, mut f: F) -> Result<MasterAnswer<T>>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let deadline = Instant::now() + self.switch_over_timeout;
        let mut masters = self.follower.subscribe();
        let mut attempts = 0;
        let mut last: Option<(String, tonic::Status)> = None;
        loop {
            let master = masters.borrow_and_update().clone();
            let Some(master) = master else {
                // No master right now: wait for one, within the bound.
                match tokio::time::timeout_at(deadline, masters.changed()).await {
                    Ok(Ok(())) => continue,
                    _ => break,
                }
            };
            attempts += 1;
            let channel = self.channel(&master)?;
            let status = match f(channel).await {
                Ok(value) => {
                    return Ok(MasterAnswer {
                        value,
                        master,
                        attempts,
                    });
                }
                Err(status) => status,
            };
            let retry = is_standby_refusal(&status)
                || match classify(&status) {
                    Failure::NotSent => true,
                    Failure::MaybeSent => idempotent,
                    Failure::Application => false,
                };
            if !retry {
                return Err(Error::Call {
                    url: format!("http://{master}"),
                    status,
                });
            }
            debug!(%master, error = %status, "call to the master failed; waiting for a switch-over");
            last = Some((master, status));
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let pause = self.retry_pause.min(deadline - now);
            let _ = tokio::time::timeout(pause, masters.changed()).await;
        }
        match last {
            Some((master, status)) => Err(Error::Exhausted {
                attempts,
                url: format!("http://{master}"),
                status,
            }),
            None => Err(self.no_master()),
        }
    }

    /// `SayHello(name)` on the master, retried across a switch-over (it is idempotent).
    pub async fn say_hello(&self, name: &str) -> Result<MasterAnswer<HelloReply>> {
        self.call(true, |channel| {
            let request = HelloRequest {
                name: name.to_owned(),
            };
            async move {
                HelloServiceClient::new(channel)
                    .say_hello(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await
    }

    /// The reusable channel to `address`.
    fn channel(&self, address: &str) -> Result<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|_| {
                Error::Registry(zoorpc_registry::Error::InvalidAddress {
                    address: address.to_owned(),
                    reason: "it does not make a valid http://<address> URI",
                })
            })?;
        let channel = endpoint
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .connect_lazy();
        if channels.len() >= KEPT_CHANNELS {
            channels.clear();
        }
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    fn no_master(&self) -> Error {
        Error::Registry(zoorpc_registry::Error::NoMaster {
            path: self.path.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_refusals_are_recognised() {
        let refusal = standby_status(Some("127.0.0.1:9090"));
        assert!(is_standby_refusal(&refusal));
        assert!(refusal.message().contains("127.0.0.1:9090"));
        assert!(is_standby_refusal(&standby_status(None)));
        assert!(!is_standby_refusal(&tonic::Status::unavailable("other")));
    }
}
