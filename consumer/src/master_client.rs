//! `MasterClient`: the consumer mode for active/standby services. Every call goes to the
//! current master of an election path (followed through ZooKeeper with a
//! [`MasterWatch`]), and a call that fails because the master is switching over is retried on
//! the new one.
//!
//! - [`MasterClient::channel`] is a [`BalancedChannel`] whose only endpoint is the current master:
//!   any tonic client runs on it, with the consumer's retry code (one implementation): attempt
//!   timeout, HTTP/2 keepalive, classification, retry budget.
//! - The master's address is the master node's data, `host:port`; calls go to
//!   `http://<address>` on one reusable, lazily connected channel per address.
//! - Retried within [`MasterClientConfig::switch_over_timeout`]: a call never sent (connection
//!   refused, stream refused: the old master is gone), and a call a standby refused (it answers
//!   [`standby_status`], the request was not processed) always; a call that may have been
//!   processed (connection broken, no answer within the attempt timeout: a paused master) only
//!   with an idempotent policy. Before trying the same master again the client waits for the
//!   master watch to report a change, at most [`MasterClientConfig::retry_pause`].
//! - No master and none within the bound: `UNAVAILABLE` naming the path (the registry's
//!   `NoMaster` error from [`MasterClient::say_hello`]); nothing waits longer than the bound
//!   plus one attempt timeout.
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zoorpc_proto::{HelloReply, HelloRequest, HelloServiceClient};
use zoorpc_registry::{MasterWatch, Session, ZkCredential};

use crate::balance::channel::{BoxFuture, Route};
use crate::balance::{Answered, BalancedChannel, DEFAULT_BUFFER_LIMIT, Endpoint, RetryBudget};
use crate::consumer::CallPolicy;
use crate::error::{Error, Result, open_session};
use crate::tls::ConsumerTls;

/// The standby-refusal protocol lives on the server side (`zoorpc-provider`); re-exported here,
/// where clients have always found it.
pub use zoorpc_proto::standby::{STANDBY_METADATA, is_standby_refusal, standby_status};

/// Channels kept for addresses other than the current master (a master that comes back).
const KEPT_CHANNELS: usize = 8;

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
    /// Longest wait between two attempts when the master watch reports no change. Default 50 ms.
    pub retry_pause: Duration,
    /// Longest wait for one attempt's answer: a silent (paused, cut off) master is abandoned
    /// after it. Default 5 s.
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
    /// let mut config = MasterClientConfig::new("127.0.0.1:2181", default_master_path("HelloService", "1.0.0"));
    /// config.switch_over_timeout = Duration::from_secs(30);
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
    /// The master's address, followed in ZooKeeper.
    master_watch: Arc<MasterWatch>,
    /// The channel with the default policy; `channel_with` derives the others.
    channel: BalancedChannel,
    attempt_timeout: Duration,
}

/// The master client's route: the current master, waiting (bounded) for a switch-over.
#[derive(Debug)]
struct MasterRoute {
    masters: watch::Receiver<Option<String>>,
    /// The watch behind `masters`, shared with the `MasterClient`: a channel kept after its
    /// client was dropped still follows the master.
    watch: Arc<MasterWatch>,
    /// Endpoints by address, so a master that comes back keeps its connection.
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    switch_over_timeout: Duration,
    retry_pause: Duration,
    /// TLS for every master, if the HA servers serve it.
    tls: Option<ConsumerTls>,
}

impl MasterRoute {
    fn endpoint(&self, address: &str) -> Option<Arc<Endpoint>> {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(endpoint) = endpoints.get(address) {
            return Some(endpoint.clone());
        }
        let endpoint = Arc::new(Endpoint::for_address(address, self.tls.as_ref())?);
        if endpoints.len() >= KEPT_CHANNELS {
            endpoints.clear();
        }
        endpoints.insert(address.to_owned(), endpoint.clone());
        Some(endpoint)
    }
}

impl Route for MasterRoute {
    fn next<'a>(
        &'a self,
        tried: &'a [Arc<Endpoint>],
        started: Instant,
    ) -> BoxFuture<'a, Option<Arc<Endpoint>>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::from_std(started + self.switch_over_timeout);
            let mut masters = self.masters.clone();
            let mut paused = tried.is_empty();
            loop {
                let master = masters.borrow_and_update().clone();
                match master {
                    // The first attempt, a new master, or the same one after a pause.
                    Some(address)
                        if paused || tried.last().map(|e| e.node()) != Some(address.as_str()) =>
                    {
                        return self.endpoint(&address);
                    }
                    Some(_) => {
                        // The master just failed: give the master watch a moment to report a
                        // switch-over before trying it again.
                        let pause = tokio::time::Instant::now() + self.retry_pause;
                        if tokio::time::Instant::now() >= deadline {
                            return None;
                        }
                        let pause = pause.min(deadline);
                        if let Ok(Err(_)) = tokio::time::timeout_at(pause, masters.changed()).await
                        {
                            // No watch left to report a switch-over (it cannot happen while
                            // the route holds it): still pause, never spin.
                            tokio::time::sleep_until(pause).await;
                        }
                        paused = true;
                    }
                    None => {
                        // No master right now: wait for one, within the bound.
                        match tokio::time::timeout_at(deadline, masters.changed()).await {
                            Ok(Ok(())) => paused = true,
                            _ => return None,
                        }
                    }
                }
            }
        })
    }

    fn record_failure(&self, _: &Endpoint) {
        // One endpoint at a time: nothing to eject it in favour of.
    }

    /// A master that TLS refused (an untrusted certificate, or one that refuses this client)
    /// is not worth trying again until the switch-over bound: it would refuse the same way,
    /// some 17 handshakes a second for 15 s. The call fails at once with the reason.
    fn gives_up_after(&self, error: &(dyn std::error::Error + 'static)) -> bool {
        let mut source = Some(error);
        while let Some(level) = source {
            if level
                .downcast_ref::<crate::DialError>()
                .is_some_and(crate::DialError::is_tls_refusal)
            {
                return true;
            }
            source = level.source();
        }
        false
    }

    /// No master to call: nobody holds the node, or (named) what it holds is no address.
    fn no_endpoint(&self) -> tonic::Status {
        tonic::Status::unavailable(self.watch.no_master_error().to_string())
    }
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
        let route = Arc::new(MasterRoute {
            masters: master_watch.subscribe(),
            watch: master_watch.clone(),
            endpoints: Mutex::new(HashMap::new()),
            switch_over_timeout: config.switch_over_timeout,
            retry_pause: config.retry_pause,
            tls: config.tls.clone(),
        });
        let policy = CallPolicy::DEFAULT.with_attempt_timeout(config.attempt_timeout);
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

    /// The watch of the master node.
    pub fn master_watch(&self) -> &MasterWatch {
        &self.master_watch
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

    /// The master's channel with `policy` (its attempt timeout replaced by the client's).
    pub fn channel_with(&self, policy: CallPolicy) -> BalancedChannel {
        self.channel
            .with_policy(policy.with_attempt_timeout(self.attempt_timeout))
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
