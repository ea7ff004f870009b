//! `MasterClient`: the consumer mode for active/standby services. Every call goes to the
//! current master of an election path (followed through ZooKeeper with a
//! [`MasterWatch`]), and a call that fails because the master is switching over is retried on
//! the new one.
//!
//! - [`MasterClient::channel`] is a [`BalancedChannel`] whose only endpoint is the current master:
//!   any tonic client runs on it, with the consumer's retry code (one implementation): attempt
//!   timeout, the connection watchdog, classification, retry budget.
//! - The master's address is the master node's data, `host:port`; calls go to
//!   `http://<address>` on one reusable, lazily connected channel per address.
//! - Retried within [`MasterClientConfig::switch_over_timeout`] and the caller's deadline:
//!   - a call never sent (connection refused, stream refused: the old master is gone), and a
//!     call a standby refused (it answers [`standby_status`], the request was not processed):
//!     always, on whoever ZooKeeper names;
//!   - an idempotent call whose attempt may have been processed (no answer within the attempt
//!     timeout: a paused master; a broken connection; `UNAVAILABLE` answered): on the master
//!     ZooKeeper names next. Another master is tried at once, outside the retry budget and the
//!     policy's `max_attempts` (a switch-over is no retry storm: each is a new master, and
//!     the bound limits them). The same master is tried again only after the policy's backoff,
//!     if the master watch still names it after up to [`MasterClientConfig::retry_pause`] more
//!     for news, and only while the retry budget and `max_attempts` allow; once they refuse,
//!     the call waits for ZooKeeper to name another master. An attempt still waiting when
//!     ZooKeeper names another master is abandoned and the call sent there at once: a paused
//!     master answers nothing, and a caller's deadline (which replaces the attempt timeout)
//!     would otherwise be spent on it. So an idempotent call made while the master is paused is
//!     answered by the master that takes over when the paused one's session expires (the
//!     servers' session timeout, 10 s by default), provided that is within the bound (15 s by
//!     default) and the caller's deadline. A request too large to keep (over the buffer limit)
//!     or still streaming is committed to its first master, as on any balanced channel;
//!   - a non-idempotent call whose attempt may have been processed: never, and its attempt is
//!     not abandoned when the master changes (the old master's answer, if it comes, is the
//!     truth). It fails with that attempt's failure: `DEADLINE_EXCEEDED` naming the master
//!     after the attempt timeout or at the caller's deadline, `UNAVAILABLE` for a broken
//!     connection; it may have been processed.
//! - "The master" is what the [`MasterWatch`] says: ZooKeeper's node, followed by watches; while
//!   the client's own session is disconnected it keeps the last known master.
//! - No master and none within the bound: `UNAVAILABLE` naming the path (the registry's
//!   `NoMaster` error from [`MasterClient::say_hello`]); nothing waits longer than the bound
//!   plus one attempt timeout. A call whose attempts on a silent master were spent and that finds
//!   no other master when the bound passes (the silent one still named, or its node vacant: no
//!   takeover yet) fails with its last attempt's failure, the status adding that ZooKeeper named
//!   no other master within the bound (and who is named, or that nobody is) and that
//!   `switch_over_timeout` must exceed the takeover (the servers' session timeout; up to twice it when the standby must also wait
//!   out another session, as the election's vacancy rules say).
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

mod route;

use std::sync::Arc;
use std::time::Duration;

use zoorpc_proto::{HelloReply, HelloRequest, HelloServiceClient};
use zoorpc_registry::{MasterWatch, Session, ZkCredential};

use self::route::MasterRoute;
use crate::balance::{Answered, BalancedChannel, DEFAULT_BUFFER_LIMIT, RetryBudget};
use crate::consumer::CallPolicy;
use crate::error::{Error, Result, open_session};
use crate::tls::ConsumerTls;

/// The standby-refusal protocol (`zoorpc-proto`'s `standby`, what both sides agree on);
/// re-exported here, where clients have always found it.
pub use zoorpc_proto::standby::{STANDBY_METADATA, is_standby_refusal, standby_status};

/// How to build a master client: [`MasterClientConfig::new`] and the builder methods. The
/// fields can be read and set; `#[non_exhaustive]`: a setting added later breaks no one.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MasterClientConfig {
    /// ZooKeeper connect string.
    pub zk: String,
    /// The election path, e.g. `/soa/master/services/HelloService:1.0.0`.
    pub path: String,
    /// ZooKeeper session timeout.
    pub session_timeout: Duration,
    /// How long `connect` waits for ZooKeeper.
    pub connect_timeout: Duration,
    /// How long one call waits for a master: retrying across a switch-over, and waiting for
    /// one when there is none (no contender yet: a switch-over cannot be told from it). Longer
    /// than the servers' session timeout, so a killed master's node has time to expire.
    /// Default 15 s; `Duration::ZERO` fails a call at once when there is no master. A caller's
    /// deadline (`grpc-timeout`) bounds it too.
    pub switch_over_timeout: Duration,
    /// Longest wait between two attempts when the master watch reports no change. Default 50 ms.
    pub retry_pause: Duration,
    /// Longest wait for one attempt's answer: a silent (paused, cut off) master is abandoned
    /// after it. Default 5 s. A caller's deadline replaces it (the call may wait for its answer
    /// until then), as [`CallPolicy::attempt_timeout`] says.
    pub attempt_timeout: Duration,
    /// The ZooKeeper digest identity (`user:password`) to authenticate with. Reading needs
    /// none (zoorpc's nodes are readable by anyone); `None` by default.
    pub zk_auth: Option<ZkCredential>,
    /// Call the masters over TLS, verified against these CAs (the master node holds
    /// `host:port` only: set this when the HA servers serve TLS). `None` (default): plaintext.
    pub tls: Option<ConsumerTls>,
}

impl MasterClientConfig {
    /// Defaults: 10 s session and connect timeouts, 15 s switch-over bound, 50 ms retry pause.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zoorpc_consumer::MasterClientConfig;
    /// use zoorpc_registry::default_master_path;
    /// let config = MasterClientConfig::new("127.0.0.1:2181", default_master_path("HelloService", "1.0.0"))
    ///     .switch_over_timeout(Duration::from_secs(30));
    /// assert_eq!(config.switch_over_timeout, Duration::from_secs(30));
    /// assert_eq!(config.attempt_timeout, Duration::from_secs(5));
    /// ```
    pub fn new(zk: impl Into<String>, path: impl Into<String>) -> Self {
        MasterClientConfig {
            zk: zk.into(),
            path: path.into(),
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            switch_over_timeout: Duration::from_secs(15),
            retry_pause: Duration::from_millis(50),
            attempt_timeout: Duration::from_secs(5),
            zk_auth: None,
            tls: None,
        }
    }

    /// This config with another ZooKeeper session timeout.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// This config waiting at most `timeout` for ZooKeeper at connect.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// This config waiting at most `timeout` for a master per call (see
    /// [`MasterClientConfig::switch_over_timeout`]).
    pub fn switch_over_timeout(mut self, timeout: Duration) -> Self {
        self.switch_over_timeout = timeout;
        self
    }

    /// This config pausing at most `pause` between attempts when the master watch reports no
    /// change.
    pub fn retry_pause(mut self, pause: Duration) -> Self {
        self.retry_pause = pause;
        self
    }

    /// This config waiting at most `timeout` for one attempt's answer (a caller's deadline
    /// replaces it).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// This config authenticating to ZooKeeper as `credential`.
    pub fn zk_auth(mut self, credential: ZkCredential) -> Self {
        self.zk_auth = Some(credential);
        self
    }

    /// This config calling the masters over TLS with `tls`.
    pub fn tls(mut self, tls: ConsumerTls) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A successful call: the value and the master that produced it.
#[derive(Debug)]
#[non_exhaustive]
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
    /// The master's address, followed in ZooKeeper.
    master_watch: Arc<MasterWatch>,
    /// The channel with the default policy; `channel_with` derives the others.
    channel: BalancedChannel,
    attempt_timeout: Duration,
}

impl MasterClient {
    /// Connects to ZooKeeper and follows the master at `path`, with defaults.
    pub async fn connect(zk: &str, path: &str) -> Result<MasterClient> {
        MasterClient::connect_with(MasterClientConfig::new(zk, path)).await
    }

    /// Connects with `config`.
    pub async fn connect_with(config: MasterClientConfig) -> Result<MasterClient> {
        let session = open_session(
            &config.zk,
            config.session_timeout,
            config.connect_timeout,
            config.zk_auth.clone(),
        )
        .await?;
        let master_watch = Arc::new(MasterWatch::follow(&session, &config.path).await?);
        let route = Arc::new(MasterRoute::new(
            master_watch.clone(),
            config.switch_over_timeout,
            config.retry_pause,
            config.tls.clone(),
        ));
        let policy = CallPolicy::DEFAULT.with_default_attempt_timeout(config.attempt_timeout);
        let channel = BalancedChannel::new(
            route,
            policy,
            Arc::new(RetryBudget::default()),
            DEFAULT_BUFFER_LIMIT,
        );
        Ok(MasterClient {
            path: config.path,
            session,
            master_watch,
            channel,
            attempt_timeout: config.attempt_timeout,
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

    /// The current master's address, `None` if there is none right now.
    pub fn master(&self) -> Option<String> {
        self.master_watch.master()
    }

    /// The master's channel for any tonic client, with [`CallPolicy::DEFAULT`] (requests never
    /// processed, standby refusals included, are retried on the master).
    pub fn channel(&self) -> BalancedChannel {
        self.channel.clone()
    }

    /// The master's channel with `policy`, its attempt timeout's length replaced by the
    /// client's (a caller's deadline replaces it in turn, unless `policy`'s was set:
    /// [`CallPolicy::attempt_timeout_fixed`]).
    pub fn channel_with(&self, policy: CallPolicy) -> BalancedChannel {
        self.channel.with_policy(CallPolicy {
            attempt_timeout: self.attempt_timeout,
            ..policy
        })
    }

    /// A `HelloServiceClient` on the master's channel (idempotent), with the current master's
    /// address; `NoMaster` at once if there is none.
    pub fn lookup(&self) -> Result<(String, HelloServiceClient<BalancedChannel>)> {
        let master = self.master().ok_or_else(|| self.no_master())?;
        Ok((
            master,
            HelloServiceClient::new(self.channel_with(CallPolicy::IDEMPOTENT)),
        ))
    }

    /// `SayHello(name)` on the master, retried across a switch-over (it is idempotent).
    pub async fn say_hello(&self, name: &str) -> Result<MasterAnswer<HelloReply>> {
        let mut client = HelloServiceClient::new(self.channel_with(CallPolicy::IDEMPOTENT));
        let request = HelloRequest {
            name: name.to_owned(),
        };
        match client.say_hello(request).await {
            Ok(response) => {
                let answered = response.extensions().get::<Answered>().cloned();
                let (master, attempts) = answered
                    .map(|a| (a.node.to_string(), a.attempts))
                    .unwrap_or_else(|| (self.master().unwrap_or_default(), 1));
                Ok(MasterAnswer {
                    value: response.into_inner(),
                    master,
                    attempts,
                })
            }
            Err(status) => Err(Error::from_status(
                status,
                || self.no_master(),
                |_| format!("the master of {}", self.path),
            )),
        }
    }

    fn no_master(&self) -> Error {
        Error::Registry(self.master_watch.no_master_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each builder method sets its own setting and no other.
    #[test]
    fn each_builder_sets_its_setting() {
        let credential = ZkCredential::parse("app:secret").unwrap();
        let config = MasterClientConfig::new("127.0.0.1:2181", "/soa/master/services/S:1")
            .session_timeout(Duration::from_secs(1))
            .connect_timeout(Duration::from_secs(2))
            .switch_over_timeout(Duration::from_secs(3))
            .retry_pause(Duration::from_millis(4))
            .attempt_timeout(Duration::from_secs(5))
            .zk_auth(credential.clone());
        assert_eq!(
            (config.zk.as_str(), config.path.as_str()),
            ("127.0.0.1:2181", "/soa/master/services/S:1")
        );
        assert_eq!(config.session_timeout, Duration::from_secs(1));
        assert_eq!(config.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.switch_over_timeout, Duration::from_secs(3));
        assert_eq!(config.retry_pause, Duration::from_millis(4));
        assert_eq!(config.attempt_timeout, Duration::from_secs(5));
        assert_eq!(config.zk_auth, Some(credential));
        assert!(config.tls.is_none());
    }
}
