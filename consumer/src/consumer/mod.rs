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
//! - `call` runs a closure on the balanced channel and names the provider that answered (the
//!   channel's one retry loop; `say_hello` is built on it).
//! - `discover` gives the list as tower's `Discover`, for a user who runs tower's own balancer
//!   instead of the balanced channel.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use zoorpc_proto::{HelloReply, HelloRequest, HelloServiceClient};
use zoorpc_registry::{ProviderUrl, Providers, Session};

pub use crate::balance::CallPolicy;
use crate::balance::{Answered, BalancedChannel, Endpoint, EndpointSet};
use crate::discover::ProviderChanges;
use crate::error::{Error, Result};
use crate::live_list::Live;

mod config;
mod start;
pub use config::ConsumerConfig;

/// A successful call: the value and the provider that produced it.
#[derive(Debug)]
#[non_exhaustive]
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

    /// The live list as tower's `Discover` (a stream of `Change`s keyed by node name, each
    /// service the provider's tonic `Channel`), for a user who puts tower's own balancer
    /// (`tower::balance::p2c::Balance`) on zoorpc's discovery: see [`ProviderChanges`].
    pub fn discover(&self) -> ProviderChanges {
        ProviderChanges::new(self.endpoints.clone(), self.channel.clone())
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

    /// Runs `f` on the balanced channel with `policy` and names the provider that answered:
    /// the channel does the picking, failover and retries (one retry loop: the caller's
    /// deadline, the attempt timeout, the retry budget, ejection and the metrics are the
    /// channel's), `call` turns its outcome into an [`Answer`] or this crate's [`Error`]. An
    /// empty list is [`Error::NoProviders`] at once (unless the policy waits for ready).
    ///
    /// `f` is called once: it builds a client on the channel and makes one request.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_consumer::Error> {
    /// use zoorpc_consumer::{CallPolicy, Consumer};
    /// use zoorpc_proto::{HelloRequest, HelloServiceClient};
    /// let consumer = Consumer::connect("127.0.0.1:2181", "/registry").await?;
    /// let answer = consumer
    ///     .call(CallPolicy::IDEMPOTENT, |channel| async move {
    ///         let request = HelloRequest { name: "zoo".into() };
    ///         HelloServiceClient::new(channel).say_hello(request).await
    ///     })
    ///     .await?;
    /// println!("{} from {} after {} attempt(s)", answer.value.message, answer.url, answer.attempts);
    /// # Ok(()) }
    /// ```
    pub async fn call<T, F, Fut>(&self, policy: CallPolicy, f: F) -> Result<Answer<T>>
    where
        F: FnOnce(BalancedChannel) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        // An empty list is the channel's to answer (at once, or after waiting for a provider
        // with wait-for-ready): its failure becomes `NoProviders` below.
        match f(self.channel_with(policy)).await {
            Ok(response) => {
                let answered = response.extensions().get::<Answered>().cloned();
                let value = response.into_inner();
                match answered {
                    Some(a) => Ok(Answer {
                        value,
                        url: a.url,
                        attempts: a.attempts,
                    }),
                    // Every response through the channel carries it; without it, the
                    // response did not come through the channel `f` was given.
                    None => Err(Error::Call {
                        url: "a provider".to_owned(),
                        status: tonic::Status::internal(
                            "the response did not come through the balanced channel given to \
                             `Consumer::call`: make the request on that channel",
                        ),
                    }),
                }
            }
            Err(status) => Err(self.call_error(status)),
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
        let request = HelloRequest {
            name: name.to_owned(),
        };
        self.call(policy, |channel| async move {
            HelloServiceClient::new(channel).say_hello(request).await
        })
        .await
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
