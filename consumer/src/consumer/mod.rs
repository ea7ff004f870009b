//! `Consumer`: discovery, the live endpoint list and the balanced channel, put together.
//!
//! - `connect` returns with the list already loaded (empty if no provider is registered yet).
//! - The list follows ZooKeeper; while ZooKeeper is unreachable the last list keeps serving.
//! - With [`ConsumerConfig::snapshot_path`] the list is also kept on disk; a consumer that cannot
//!   reach ZooKeeper within the connect timeout at start serves that snapshot (its age logged
//!   and in [`Consumer::snapshot_age`]) until it connects (see `snapshot.rs` for the rule).
//! - [`Consumer::channel`] / [`Consumer::channel_with`]: a [`BalancedChannel`] any tonic client
//!   runs on; every request is balanced and failed over on its own, so a client kept for the
//!   life of the program rebalances and survives its providers.
//! - `lookup` is the design card's call: a `HelloServiceClient` on the balanced channel (an empty
//!   list is [`Error::NoProviders`] at once); `say_hello` answers with the provider's URL.
//! - `call` runs a closure on one picked endpoint's own tonic `Channel`, with the same retry
//!   decision as the balanced channel.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tonic::transport::Channel;
use tracing::debug;
use zoorpc_proto::{HelloReply, HelloRequest, HelloServiceClient};
use zoorpc_registry::{ProviderUrl, Providers, Session};

use crate::balance::ejection::Strike;
pub use crate::balance::retry::CallPolicy;
use crate::balance::{
    Answered, BalancedChannel, Decision, Endpoint, EndpointSet, Failure, RetryBudget, classify,
    decide,
};
use crate::error::{Error, Result};
use crate::live_list::Live;

mod config;
mod start;
pub use config::ConsumerConfig;

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
    /// The session and its discovery: set at connect, or once connected when started from a
    /// snapshot.
    live: Arc<OnceLock<Live>>,
    /// The provider list the endpoints were last updated from (discovery's, or the snapshot's).
    providers: watch::Receiver<Providers>,
    /// When the snapshot served at start was written (`None`: started live).
    snapshot_written: Option<SystemTime>,
    endpoints: Arc<EndpointSet>,
    /// The default-policy channel; `channel_with` derives the others from it.
    channel: BalancedChannel,
    budget: Arc<RetryBudget>,
}

impl Consumer {
    /// The balanced channel for any tonic client, with [`CallPolicy::DEFAULT`]: requests that
    /// were never sent go to another endpoint. Cheap to clone; make clients once and keep them.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use zoorpc_consumer::{CallPolicy, Consumer};
    /// use zoorpc_proto::{HelloRequest, HelloServiceClient};
    /// let consumer = Consumer::connect("127.0.0.1:2181", "/registry").await?;
    /// let mut client = HelloServiceClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT));
    /// let reply = client.say_hello(HelloRequest { name: "zoo".into() }).await?;
    /// # let _ = reply; Ok(()) }
    /// ```
    pub fn channel(&self) -> BalancedChannel {
        self.channel.clone()
    }

    /// The balanced channel with `policy` (e.g. [`CallPolicy::IDEMPOTENT`]: requests that may
    /// have been processed are retried too).
    pub fn channel_with(&self, policy: CallPolicy) -> BalancedChannel {
        self.channel.with_policy(policy)
    }

    /// The base path this consumer watches.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The ZooKeeper session; `None` while a consumer started from a snapshot has not
    /// connected yet.
    pub fn session(&self) -> Option<&Session> {
        self.live.get().map(|live| &live.session)
    }

    /// How old the list served is, while it is the snapshot read at start (ZooKeeper was out of
    /// reach); `None` once the live list replaced it, or when the consumer started live.
    pub fn snapshot_age(&self) -> Option<Duration> {
        match (self.live.get(), self.snapshot_written) {
            (None, Some(written)) => Some(
                SystemTime::now()
                    .duration_since(written)
                    .unwrap_or_default(),
            ),
            _ => None,
        }
    }

    /// The live endpoints.
    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.snapshot()
    }

    /// The live provider URLs.
    pub fn urls(&self) -> Vec<ProviderUrl> {
        self.endpoints().iter().map(|e| e.url().clone()).collect()
    }

    /// Provider lists as the endpoints are updated from them (discovery's; the snapshot's until
    /// a consumer started from one connects).
    pub fn subscribe(&self) -> watch::Receiver<Providers> {
        self.providers.clone()
    }

    /// A watch of the live endpoint list (what the channel picks from): its value counts
    /// updates, and `changed()` wakes after one or more (coalesced, as a watch is; not a stream of
    /// every change, unlike [`zoorpc_registry::MasterElection::changes`]).
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.endpoints.updates()
    }

    /// Waits until `pred` holds for the live URLs, or `timeout` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[ProviderUrl]) -> bool,
    ) -> bool {
        let mut updates = self.updates();
        let check = async {
            loop {
                updates.borrow_and_update();
                if pred(&self.urls()) {
                    return;
                }
                if updates.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, check).await.is_ok()
    }

    /// A live endpoint, picked by the consumer's [`Strategy`](crate::Strategy) (random by
    /// default).
    pub fn pick(&self) -> Result<Arc<Endpoint>> {
        self.endpoints.pick(&[]).ok_or_else(|| self.no_providers())
    }

    /// A `HelloServiceClient` on the balanced channel (`SayHello` is idempotent, so with
    /// [`CallPolicy::IDEMPOTENT`]): each call picks a live provider and fails over, so a client
    /// kept for long follows the list. An empty list is [`Error::NoProviders`] at once.
    pub fn lookup(&self) -> Result<HelloServiceClient<BalancedChannel>> {
        if self.endpoints.is_empty() {
            return Err(self.no_providers());
        }
        Ok(HelloServiceClient::new(
            self.channel_with(CallPolicy::IDEMPOTENT),
        ))
    }

    /// Runs `f` on a picked endpoint's channel with failover as `policy` allows: each attempt
    /// under the policy's per-attempt timeout, on another endpoint each time. An empty list is
    /// [`Error::NoProviders`] at once; the answer names the provider that gave it.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_consumer::Error> {
    /// use zoorpc_consumer::{CallPolicy, Consumer};
    /// use zoorpc_proto::{HelloRequest, HelloServiceClient};
    /// let consumer = Consumer::connect("127.0.0.1:2181", "/registry").await?;
    /// let answer = consumer
    ///     .call(CallPolicy::IDEMPOTENT, |channel| async move {
    ///         let request = HelloRequest { name: "zoo".into() };
    ///         Ok(HelloServiceClient::new(channel).say_hello(request).await?.into_inner())
    ///     })
    ///     .await?;
    /// println!("{} from {} after {} attempt(s)", answer.value.message, answer.url, answer.attempts);
    /// # Ok(()) }
    /// ```
    pub async fn call<T, F, Fut>(&self, policy: CallPolicy, mut f: F) -> Result<Answer<T>>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let mut tried: Vec<String> = Vec::new();
        let mut maybe_sent = 0;
        let mut last: Option<(String, tonic::Status)> = None;
        self.budget.deposit();
        while let Some(endpoint) = self.endpoints.pick(&tried) {
            tried.push(endpoint.node().to_owned());
            let noted = endpoint.attempt_started();
            let outcome = attempt_within(&policy, f(endpoint.channel())).await;
            match outcome {
                Ok(value) => {
                    endpoint.record_success();
                    return Ok(Answer {
                        value,
                        url: endpoint.url().clone(),
                        attempts: tried.len(),
                    });
                }
                Err((failure, status, answered)) => {
                    let url = endpoint.url().to_string();
                    // Only a connection failure or an UNAVAILABLE answer weighs toward
                    // ejection; another retryable code is the provider's answer.
                    if failure.is_connection_failure()
                        && (!answered || status.code() == tonic::Code::Unavailable)
                    {
                        let strike = Strike::of(failure, answered);
                        self.endpoints.record_strike(&endpoint, noted, strike);
                    }
                    if failure == Failure::MaybeSent {
                        maybe_sent += 1;
                    }
                    if decide(failure, &policy, maybe_sent, &self.budget) != Decision::Retry {
                        return Err(Error::Call { url, status });
                    }
                    if failure == Failure::MaybeSent {
                        tokio::time::sleep(policy.backoff.pause(maybe_sent)).await;
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

    /// `SayHello(name)` with `policy`, through the balanced channel.
    pub async fn say_hello_with(
        &self,
        policy: CallPolicy,
        name: &str,
    ) -> Result<Answer<HelloReply>> {
        if self.endpoints.is_empty() {
            return Err(self.no_providers());
        }
        let mut client = HelloServiceClient::new(self.channel_with(policy));
        let request = HelloRequest {
            name: name.to_owned(),
        };
        match client.say_hello(request).await {
            Ok(response) => {
                let answered = response.extensions().get::<Answered>().cloned();
                let value = response.into_inner();
                Ok(match answered {
                    Some(a) => Answer {
                        value,
                        url: a.url,
                        attempts: a.attempts,
                    },
                    // Every response through the channel carries it; a provider URL parse of
                    // the reply's own field is the fallback.
                    None => Answer {
                        url: value.provider.parse().map_err(Error::Registry)?,
                        value,
                        attempts: 1,
                    },
                })
            }
            Err(status) => Err(self.call_error(status)),
        }
    }

    /// The consumer error for a status from the balanced channel.
    fn call_error(&self, status: tonic::Status) -> Error {
        Error::from_status(
            status,
            || self.no_providers(),
            |status| {
                status
                    .metadata()
                    .get(crate::balance::PROVIDER_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("a provider")
                    .to_owned()
            },
        )
    }

    fn no_providers(&self) -> Error {
        Error::NoProviders {
            base_path: self.base_path.clone(),
        }
    }
}

/// One attempt of [`Consumer::call`] under `policy`'s attempt timeout: its value, or its
/// error's classification, the status, and whether the provider answered it (a status without
/// a source: see `classify`) rather than the attempt timing out.
async fn attempt_within<T>(
    policy: &CallPolicy,
    attempt: impl Future<Output = std::result::Result<T, tonic::Status>>,
) -> std::result::Result<T, (Failure, tonic::Status, bool)> {
    match tokio::time::timeout(policy.attempt_timeout, attempt).await {
        Ok(outcome) => outcome.map_err(|status| {
            let answered = std::error::Error::source(&status).is_none();
            (classify_answer(&status, policy), status, answered)
        }),
        Err(_) => Err((
            Failure::MaybeSent,
            tonic::Status::deadline_exceeded(format!(
                "no answer within {:?}",
                policy.attempt_timeout
            )),
            false,
        )),
    }
}

/// [`classify`] with `policy`'s retryable codes: a code the provider answered is retried (as
/// maybe processed) when the policy lists it, and never when it does not (`UNAVAILABLE`
/// included); a transport failure is classified by its cause alone.
fn classify_answer(status: &tonic::Status, policy: &CallPolicy) -> Failure {
    let failure = classify(status);
    if std::error::Error::source(status).is_some() {
        return failure;
    }
    if policy.retryable.contains(status.code()) {
        Failure::MaybeSent
    } else if failure == Failure::MaybeSent {
        Failure::Application
    } else {
        failure
    }
}
