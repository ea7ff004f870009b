//! [`ProviderChanges`]: a consumer's live list as tower sees discovery, a stream of
//! [`Change`]s (tower's `Discover`), so tower's own balancers (`tower::balance::p2c::Balance`)
//! can run on zoorpc's discovery instead of the [`BalancedChannel`](crate::BalancedChannel).
//!
//! The guarantees are on [`ProviderChanges`].
//!
//! The choice of a stream rather than a feature: tower's `discover`, `load` and `balance` are
//! compiled in anyway (tonic's channel uses them), so the adapter costs no dependency.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tonic::transport::Channel;
use tower::discover::Change;

use crate::balance::{BalancedChannel, Endpoint, EndpointSet};

/// The next update of the list, with the receiver to wait for the one after.
type Updated = Pin<Box<dyn Future<Output = Option<watch::Receiver<u64>>> + Send>>;

/// A consumer's providers as tower's `Discover`: a never-ending stream of [`Change`]s keyed by
/// node name, each service the provider's tonic `Channel`. Made by
/// [`Consumer::discover`](crate::Consumer::discover).
///
/// Guarantees:
/// - The first changes are an `Insert` per provider listed when the stream is first polled; then
///   an `Insert` for each provider that joins, a `Remove` for each that leaves, keyed by its node
///   name (`provider0000000042`). A node whose URL changed, or a name that came back with a new
///   node, is inserted again under its name (tower replaces the service of a key inserted twice).
/// - The list is the consumer's: it follows ZooKeeper (a provider whose session ends leaves it),
///   keeps the last list while ZooKeeper is out of reach, and keeps following for as long as the
///   stream lives, the consumer dropped or not. Several updates between two polls come as the
///   changes between the last list seen and the current one.
/// - Each service is the provider's own tonic `Channel`, the one connection the consumer keeps
///   to it (dialled as the consumer dials: TLS for `https://`, the dial timeout, the connection watchdog). On
///   it the balancer is tower's: zoorpc's ejection, retries, retry budget and deadlines apply
///   only to calls through a `BalancedChannel`.
/// - The stream never fails (its error type is `Infallible`) and never ends.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use tower::balance::p2c::Balance;
/// use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
/// use zoorpc_consumer::Consumer;
/// use zoorpc_proto::{HelloRequest, HelloServiceClient};
/// let consumer = Consumer::connect("127.0.0.1:2181", "/registry").await?;
/// // tower's p2c over requests in flight, on zoorpc's discovery.
/// let discover = PendingRequestsDiscover::new(consumer.discover(), CompleteOnResponse::default());
/// let balance = Balance::new(discover);
/// let mut client = HelloServiceClient::new(tower::buffer::Buffer::new(balance, 64));
/// let reply = client.say_hello(HelloRequest { name: "zoo".into() }).await?;
/// # let _ = reply; Ok(()) }
/// ```
pub struct ProviderChanges {
    endpoints: Arc<EndpointSet>,
    /// Resolves at the list's next update (`None` once it is no longer kept): what wakes the
    /// stream.
    updated: Option<Updated>,
    /// The list as last compared (`None`: not yet).
    compared: Option<Arc<Vec<Arc<Endpoint>>>>,
    /// What the stream's consumer was last told: the endpoint under each node name.
    known: HashMap<Arc<str>, Arc<Endpoint>>,
    /// Changes found and not yet yielded.
    pending: VecDeque<Change<Arc<str>, Channel>>,
    /// Keeps the list following ZooKeeper: the task that does it runs while a channel made
    /// from the consumer lives.
    _following: BalancedChannel,
}

impl ProviderChanges {
    pub(crate) fn new(endpoints: Arc<EndpointSet>, following: BalancedChannel) -> Self {
        let updates = endpoints.updates();
        ProviderChanges {
            endpoints,
            updated: Some(next_update(updates)),
            compared: None,
            known: HashMap::new(),
            pending: VecDeque::new(),
            _following: following,
        }
    }

    /// Queues the changes from what was last told to the list now; whether there were any.
    fn compare(&mut self) -> bool {
        let now = self.endpoints.snapshot();
        if self
            .compared
            .as_ref()
            .is_some_and(|compared| Arc::ptr_eq(compared, &now))
        {
            return false;
        }
        let mut listed: HashSet<&str> = HashSet::with_capacity(now.len());
        for endpoint in now.iter() {
            listed.insert(endpoint.node());
            let same = self
                .known
                .get(endpoint.node())
                .is_some_and(|known| Arc::ptr_eq(known, endpoint));
            if !same {
                let name = endpoint.node_name().clone();
                self.known.insert(name.clone(), endpoint.clone());
                self.pending
                    .push_back(Change::Insert(name, endpoint.channel()));
            }
        }
        let gone: Vec<Arc<str>> = self
            .known
            .keys()
            .filter(|name| !listed.contains(&***name))
            .cloned()
            .collect();
        for name in gone {
            self.known.remove(&name);
            self.pending.push_back(Change::Remove(name));
        }
        self.compared = Some(now);
        !self.pending.is_empty()
    }
}

/// Waits for the list's next update; `None` when it is no longer kept.
fn next_update(mut updates: watch::Receiver<u64>) -> Updated {
    Box::pin(async move { updates.changed().await.ok().map(|()| updates) })
}

impl futures_core::Stream for ProviderChanges {
    type Item = Result<Change<Arc<str>, Channel>, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(change) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(change)));
            }
            // The wake-up for the next update is registered before the list is read, so an
            // update made after the read wakes the stream (the list is stored before its update
            // is announced: one made before the read is seen by the read itself).
            if let Some(updated) = this.updated.as_mut() {
                match updated.as_mut().poll(cx) {
                    Poll::Ready(Some(updates)) => {
                        this.updated = Some(next_update(updates));
                        continue;
                    }
                    // The list is no longer kept: it stays as it is.
                    Poll::Ready(None) => this.updated = None,
                    Poll::Pending => {}
                }
            }
            if !this.compare() {
                return Poll::Pending;
            }
        }
    }
}

impl fmt::Debug for ProviderChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderChanges")
            .field("known", &self.known.keys().collect::<Vec<_>>())
            .field("pending", &self.pending.len())
            .finish()
    }
}
