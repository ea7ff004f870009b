//! `Consumer`: discovery, the live endpoint list and picking, put together.
//!
//! - `connect` returns with the list already loaded (empty if no provider is registered yet).
//! - The list follows ZooKeeper; while ZooKeeper is unreachable the last list keeps serving.
//! - `lookup` picks a random live endpoint and returns a `HelloServiceClient` on its reusable
//!   channel; an empty list is [`Error::NoProviders`] at once.
//! - `call` runs a request with failover: a request that was never sent is retried on another
//!   endpoint; one that may have been processed is retried only if marked idempotent; the
//!   failed endpoint is ejected for a backoff either way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tracing::debug;
use zoorpc_proto::{HelloReply, HelloRequest, HelloServiceClient};
use zoorpc_registry::{Discovery, ProviderUrl, Providers, Session, SessionConfig};

use crate::endpoint_set::{Endpoint, EndpointSet};
use crate::error::{Error, Result};
use crate::failure::{Failure, classify};
use crate::tracked_channel::TrackedChannel;

/// How to build a consumer.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// ZooKeeper connect string.
    pub zk: String,
    /// The base path providers register under, e.g. `/registry`.
    pub base_path: String,
    /// ZooKeeper session timeout.
    pub session_timeout: Duration,
    /// How long `connect` waits for ZooKeeper.
    pub connect_timeout: Duration,
}

impl ConsumerConfig {
    /// Defaults: 10 s session timeout, 10 s connect timeout.
    pub fn new(zk: impl Into<String>, base_path: impl Into<String>) -> Self {
        ConsumerConfig {
            zk: zk.into(),
            base_path: base_path.into(),
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Retry policy of one call.
#[derive(Clone, Copy, Debug)]
pub struct CallPolicy {
    /// Safe to repeat if the connection broke mid-call (or an attempt timed out).
    pub idempotent: bool,
    /// Most attempts that may have reached a provider (each endpoint is tried at most once).
    /// Attempts that were never sent (connection refused, no HTTP/2 greeting, stream refused by a
    /// draining server) do not count: they are bounded by the live list only, so a call fails
    /// for want of a reachable provider only after every endpoint refused it.
    pub max_attempts: usize,
    /// Longest wait for one attempt's answer. A provider that does not answer in time (paused,
    /// overloaded, cut off) is ejected like one that refused the connection; the call is
    /// retried elsewhere only if idempotent.
    pub attempt_timeout: Duration,
}

impl CallPolicy {
    /// Retries only calls that were never sent (on every endpoint if need be); attempts of at
    /// most 5 s.
    pub const DEFAULT: CallPolicy = CallPolicy {
        idempotent: false,
        max_attempts: 3,
        attempt_timeout: Duration::from_secs(5),
    };

    /// Also retries calls that may have been processed, up to 3 such attempts of at most 5 s
    /// (never-sent attempts do not count).
    pub const IDEMPOTENT: CallPolicy = CallPolicy {
        idempotent: true,
        max_attempts: 3,
        attempt_timeout: Duration::from_secs(5),
    };

    /// This policy with another per-attempt timeout.
    pub const fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy::DEFAULT
    }
}

/// A successful call: the value and the provider that produced it.
#[derive(Debug)]
pub struct Answer<T> {
    /// The response.
    pub value: T,
    /// Which provider answered.
    pub url: ProviderUrl,
    /// How many endpoints were tried (1 if the first one answered).
    pub attempts: usize,
}

/// A service consumer: the live provider list under one base path, and calls over it.
#[derive(Debug)]
pub struct Consumer {
    base_path: String,
    session: Session,
    discovery: Discovery,
    endpoints: Arc<EndpointSet>,
    follower: JoinHandle<()>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl Consumer {
    /// Connects to ZooKeeper and watches `base_path`.
    pub async fn connect(zk: &str, base_path: &str) -> Result<Consumer> {
        Consumer::connect_with(ConsumerConfig::new(zk, base_path)).await
    }

    /// Connects with `config`.
    pub async fn connect_with(config: ConsumerConfig) -> Result<Consumer> {
        let session = Session::connect(
            SessionConfig::new(&config.zk)
                .session_timeout(config.session_timeout)
                .connect_timeout(config.connect_timeout),
        )
        .await?;
        Consumer::with_session(session, &config.base_path).await
    }

    /// Watches `base_path` on an existing session.
    pub async fn with_session(session: Session, base_path: &str) -> Result<Consumer> {
        let discovery = Discovery::watch(&session, base_path).await?;
        let endpoints = Arc::new(EndpointSet::new());
        let mut snapshots = discovery.subscribe();
        endpoints.update(&snapshots.borrow_and_update());
        let follower = tokio::spawn({
            let endpoints = endpoints.clone();
            async move {
                while snapshots.changed().await.is_ok() {
                    let providers = snapshots.borrow_and_update().clone();
                    endpoints.update(&providers);
                    debug!(count = providers.len(), "provider list updated");
                }
            }
        });
        Ok(Consumer {
            base_path: base_path.to_owned(),
            session,
            discovery,
            endpoints,
            follower,
        })
    }

    /// The base path this consumer watches.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The ZooKeeper session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The live endpoints.
    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.snapshot()
    }

    /// The live provider URLs.
    pub fn urls(&self) -> Vec<ProviderUrl> {
        self.endpoints().iter().map(|e| e.url().clone()).collect()
    }

    /// Provider snapshots as discovery publishes them.
    pub fn subscribe(&self) -> watch::Receiver<Providers> {
        self.discovery.subscribe()
    }

    /// Notified after every change of the live endpoint list (what `lookup` picks from).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.endpoints.changes()
    }

    /// Waits until `pred` holds for the live URLs, or `timeout` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[ProviderUrl]) -> bool,
    ) -> bool {
        let mut changes = self.changes();
        let check = async {
            loop {
                changes.borrow_and_update();
                if pred(&self.urls()) {
                    return;
                }
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, check).await.is_ok()
    }

    /// Picks a random live endpoint.
    pub fn pick(&self) -> Result<Arc<Endpoint>> {
        self.endpoints.pick(&[]).ok_or_else(|| self.no_providers())
    }

    /// A `HelloServiceClient` for a random live endpoint, on that endpoint's reusable channel.
    /// Connection failures through it eject the endpoint; prefer [`Consumer::call`] or
    /// [`Consumer::say_hello`] for automatic failover.
    pub fn lookup(&self) -> Result<HelloServiceClient<TrackedChannel>> {
        Ok(HelloServiceClient::new(TrackedChannel::new(self.pick()?)))
    }

    /// Runs `f` on a picked endpoint's channel with failover as `policy` allows.
    pub async fn call<T, F, Fut>(&self, policy: CallPolicy, mut f: F) -> Result<Answer<T>>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let mut tried: Vec<String> = Vec::new();
        let mut maybe_sent = 0;
        let mut last: Option<(String, tonic::Status)> = None;
        while maybe_sent < policy.max_attempts.max(1) {
            let Some(endpoint) = self.endpoints.pick(&tried) else {
                break;
            };
            tried.push(endpoint.node().to_owned());
            let attempt = tokio::time::timeout(policy.attempt_timeout, f(endpoint.channel()));
            let outcome = match attempt.await {
                Ok(outcome) => outcome.map_err(|status| (classify(&status), status)),
                Err(_) => Err((
                    Failure::MaybeSent,
                    tonic::Status::deadline_exceeded(format!(
                        "no answer within {:?}",
                        policy.attempt_timeout
                    )),
                )),
            };
            match outcome {
                Ok(value) => {
                    endpoint.record_success();
                    return Ok(Answer {
                        value,
                        url: endpoint.url().clone(),
                        attempts: tried.len(),
                    });
                }
                Err((failure, status)) => {
                    let url = endpoint.url().to_string();
                    if failure.is_connection_failure() {
                        endpoint.record_failure();
                    }
                    match failure {
                        Failure::NotSent => {}
                        Failure::MaybeSent if policy.idempotent => maybe_sent += 1,
                        _ => return Err(Error::Call { url, status }),
                    }
                    debug!(url = %url, error = %status, "call failed; trying another provider");
                    last = Some((url, status));
                }
            }
        }
        match last {
            Some((url, status)) => Err(Error::Exhausted {
                attempts: tried.len(),
                url,
                status,
            }),
            None => Err(self.no_providers()),
        }
    }

    /// `SayHello(name)` with failover (it is idempotent).
    pub async fn say_hello(&self, name: &str) -> Result<Answer<HelloReply>> {
        self.say_hello_with(CallPolicy::IDEMPOTENT, name).await
    }

    /// `SayHello(name)` with `policy`.
    pub async fn say_hello_with(
        &self,
        policy: CallPolicy,
        name: &str,
    ) -> Result<Answer<HelloReply>> {
        self.call(policy, |channel| {
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

    fn no_providers(&self) -> Error {
        Error::NoProviders {
            base_path: self.base_path.clone(),
        }
    }
}
