//! `EndpointSet`: the consumer's live list of providers, lock-free to read.
//!
//! - Readers load an `Arc` snapshot (`arc-swap`): no lock on the call path.
//! - One reusable tonic `Channel` per provider node, created lazily (no dial until first use) and
//!   kept while the node lives; a new node for the same URL (a restarted provider), a node name
//!   that comes back with a new creation (`czxid`), or a node whose URL was changed gets a fresh
//!   endpoint with a clean record.
//! - Only `http://` providers are dialled. An `https://` node is skipped with one warning until
//!   TLS is supported: a request is never sent in plaintext to a provider that asked for TLS.
//! - An endpoint that failed to connect is *ejected* for a backoff that doubles per consecutive
//!   failure (1 s .. 30 s) and is skipped by picking while ejected; a success clears it.
//! - Picking, in order of preference: among the endpoints not ejected with a positive weight,
//!   random in proportion to `?weight=N` (uniform when the weights are equal, as Dubbo's random
//!   load balancing); else among the weight-0 endpoints not ejected (backups), uniform; else the
//!   endpoint whose ejection ends first (fail open: better a try than a certain error).

use std::collections::HashSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rand::Rng;
use tonic::transport::Channel;
use tracing::{debug, warn};
use zoorpc_registry::{ProviderNode, ProviderUrl};

use crate::dialer::{DIAL_TIMEOUT, Dialer};

const EJECT_BASE: Duration = Duration::from_secs(1);
const EJECT_MAX: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Weight used when a provider URL has no (valid) `weight` parameter.
pub const DEFAULT_WEIGHT: u32 = 100;

/// A provider's picking weight from `?weight=N`.
fn weight_of(url: &ProviderUrl) -> u32 {
    match url.metadata("weight").map(str::parse::<u32>) {
        None => DEFAULT_WEIGHT,
        Some(Ok(w)) => w,
        Some(Err(_)) => {
            warn!(url = %url, "ignoring a weight that is not a number; using {DEFAULT_WEIGHT}");
            DEFAULT_WEIGHT
        }
    }
}

/// One provider as the consumer sees it.
#[derive(Debug)]
pub struct Endpoint {
    node: String,
    /// The node's `czxid`: with the name, which node this endpoint belongs to.
    created: i64,
    url: ProviderUrl,
    channel: Channel,
    ejected_until_ms: AtomicU64,
    failures: AtomicU32,
    weight: u32,
}

impl Endpoint {
    fn new(node: &ProviderNode) -> Option<Endpoint> {
        let endpoint = match tonic::transport::Endpoint::from_shared(node.url.endpoint()) {
            Ok(e) => e,
            Err(e) => {
                warn!(url = %node.url, error = %e, "cannot build a channel; skipping this provider");
                return None;
            }
        };
        // HTTP/2 pings find a connection whose peer vanished without closing it (a paused
        // process, a partition) even when no call is waiting on it. The dialer bounds the
        // connect and the server's greeting together.
        let channel = endpoint
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(Dialer {
                timeout: DIAL_TIMEOUT,
            });
        Some(Endpoint {
            node: node.name.clone(),
            created: node.created,
            url: node.url.clone(),
            channel,
            ejected_until_ms: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            weight: weight_of(&node.url),
        })
    }

    /// The znode name, e.g. `provider0000000042`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The node's creation (`czxid`); with [`Endpoint::node`] it identifies the node.
    pub fn created(&self) -> i64 {
        self.created
    }

    /// The provider URL.
    pub fn url(&self) -> &ProviderUrl {
        &self.url
    }

    /// The endpoint's channel (cheap to clone; all clones share one connection).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The picking weight (`?weight=N`, default 100; 0 takes traffic only when nothing else can).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Whether picking skips this endpoint now.
    pub fn is_ejected(&self) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms()
    }

    /// Records a connection failure: ejects for a doubling backoff.
    pub fn record_failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed).min(16);
        let backoff = (EJECT_BASE * 2u32.saturating_pow(n)).min(EJECT_MAX);
        self.ejected_until_ms
            .store(now_ms() + backoff.as_millis() as u64, Ordering::Relaxed);
        debug!(url = %self.url, ?backoff, "endpoint ejected");
    }

    /// Records a success: clears the ejection.
    pub fn record_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            self.ejected_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

/// The live endpoint list.
#[derive(Debug)]
pub struct EndpointSet {
    /// The list picking reads, swapped whole on every update.
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    /// Counts updates, so waiters learn of each one.
    version: tokio::sync::watch::Sender<u64>,
    /// Nodes skipped because they cannot be dialled (e.g. `https://`), so each is warned of once.
    skipped: Mutex<HashSet<(String, i64)>>,
}

impl Default for EndpointSet {
    fn default() -> Self {
        EndpointSet {
            endpoints: ArcSwap::default(),
            version: tokio::sync::watch::Sender::new(0),
            skipped: Mutex::default(),
        }
    }
}

impl EndpointSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A receiver that is notified after every update of the list (the value counts updates).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The current endpoints.
    pub fn snapshot(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.load().len()
    }

    /// Whether there are no endpoints.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the list with `providers`, keeping the endpoint (channel, ejection) of every
    /// node that is still there with the same creation and URL.
    pub fn update(&self, providers: &[ProviderNode]) {
        let current = self.endpoints.load();
        let mut skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        skipped.retain(|(name, created)| {
            providers
                .iter()
                .any(|p| &p.name == name && p.created == *created)
        });
        let next: Vec<Arc<Endpoint>> = providers
            .iter()
            .filter_map(|p| {
                if p.url.scheme() != "http" {
                    if skipped.insert((p.name.clone(), p.created)) {
                        warn!(node = %p.name, url = %p.url, "skipping a provider this consumer cannot reach safely: only http:// is supported (TLS is not, and a request is never sent in plaintext to an https:// provider)");
                    }
                    return None;
                }
                current
                    .iter()
                    .find(|e| e.node == p.name && e.created == p.created && e.url == p.url)
                    .cloned()
                    .or_else(|| Endpoint::new(p).map(Arc::new))
            })
            .collect();
        drop(skipped);
        self.endpoints.store(Arc::new(next));
        self.version.send_modify(|v| *v += 1);
    }

    /// Picks an endpoint not in `exclude` (node names); `None` only if every endpoint is
    /// excluded (or the set is empty). Preference: endpoints not ejected with a positive weight,
    /// random in proportion to `?weight=N` (default 100; uniform when all weights are equal, as
    /// in Dubbo's random load balancing); then weight-0 endpoints not ejected (backups), uniform;
    /// then the endpoint whose ejection ends first (fail open).
    pub fn pick(&self, exclude: &[String]) -> Option<Arc<Endpoint>> {
        let all = self.endpoints.load();
        let candidates = || all.iter().filter(|e| !exclude.contains(&e.node));
        let healthy = || candidates().filter(|e| !e.is_ejected());
        if let Some(e) = pick_weighted(healthy().filter(|e| e.weight > 0)) {
            return Some(e.clone());
        }
        if let Some(e) = pick_weighted(healthy().filter(|e| e.weight == 0)) {
            return Some(e.clone());
        }
        candidates()
            .min_by_key(|e| e.ejected_until_ms.load(Ordering::Relaxed))
            .cloned()
    }
}

/// A random pick from `endpoints` in proportion to their weights; uniform when the weights are
/// all equal (also all 0, as Dubbo does when the total weight is 0).
fn pick_weighted<'a, I>(endpoints: I) -> Option<&'a Arc<Endpoint>>
where
    I: Iterator<Item = &'a Arc<Endpoint>> + Clone,
{
    let (mut count, mut total, mut uniform, mut first) = (0usize, 0u64, true, None);
    for e in endpoints.clone() {
        count += 1;
        total += u64::from(e.weight);
        uniform &= *first.get_or_insert(e.weight) == e.weight;
    }
    if count == 0 {
        return None;
    }
    let mut rng = rand::rng();
    if uniform {
        return endpoints.clone().nth(rng.random_range(0..count));
    }
    let mut ticket = rng.random_range(0..total);
    for e in endpoints {
        let w = u64::from(e.weight);
        if ticket < w {
            return Some(e);
        }
        ticket -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, url: &str) -> ProviderNode {
        ProviderNode {
            name: name.into(),
            url: url.parse().unwrap(),
            created: 1,
        }
    }

    fn share_of_a(set: &EndpointSet, exclude: &[String]) -> f64 {
        let picks = 4000;
        let a = (0..picks)
            .filter(|_| set.pick(exclude).unwrap().node() == "a")
            .count();
        a as f64 / picks as f64
    }

    #[tokio::test]
    async fn uniform_weighted_ejected_and_fail_open() {
        let set = EndpointSet::new();
        assert!(set.pick(&[]).is_none());
        set.update(&[
            node("a", "http://127.0.0.1:1"),
            node("b", "http://127.0.0.1:2"),
        ]);
        let share = share_of_a(&set, &[]);
        assert!((0.45..0.55).contains(&share), "{share}");

        set.update(&[
            node("a", "http://127.0.0.1:1?weight=300"),
            node("b", "http://127.0.0.1:2?weight=100"),
        ]);
        let share = share_of_a(&set, &[]);
        assert!((0.70..0.80).contains(&share), "{share}");

        // An ejected endpoint is skipped while another is healthy...
        let a = set
            .snapshot()
            .iter()
            .find(|e| e.node() == "a")
            .cloned()
            .unwrap();
        a.record_failure();
        assert!(a.is_ejected());
        assert_eq!(share_of_a(&set, &[]), 0.0);
        // ...but picked when it is the only one left (fail open).
        assert_eq!(set.pick(&["b".into()]).unwrap().node(), "a");
        a.record_success();
        assert!(!a.is_ejected());

        // Weight 0 takes traffic only when nothing else can.
        set.update(&[
            node("a", "http://127.0.0.1:1?weight=0"),
            node("b", "http://127.0.0.1:2"),
        ]);
        assert_eq!(share_of_a(&set, &[]), 0.0);
        assert_eq!(set.pick(&["b".into()]).unwrap().node(), "a");
        assert!(set.pick(&["a".into(), "b".into()]).is_none());
    }

    fn endpoint(set: &EndpointSet, name: &str) -> Arc<Endpoint> {
        set.snapshot()
            .iter()
            .find(|e| e.node() == name)
            .cloned()
            .unwrap()
    }

    #[tokio::test]
    async fn a_healthy_weight_0_backup_comes_before_an_ejected_weighted_endpoint() {
        let set = EndpointSet::new();
        set.update(&[
            node("a", "http://127.0.0.1:1?weight=0"),
            node("b", "http://127.0.0.1:2?weight=100"),
        ]);
        endpoint(&set, "b").record_failure();
        assert_eq!(share_of_a(&set, &[]), 1.0, "the backup takes every call");
        // Both ejected: the one whose ejection ends first, whatever its weight.
        endpoint(&set, "a").record_failure();
        endpoint(&set, "a").record_failure();
        assert_eq!(set.pick(&[]).unwrap().node(), "b");
    }

    #[tokio::test]
    async fn all_weights_0_pick_uniformly() {
        let set = EndpointSet::new();
        set.update(&[
            node("a", "http://127.0.0.1:1?weight=0"),
            node("b", "http://127.0.0.1:2?weight=0"),
        ]);
        let share = share_of_a(&set, &[]);
        assert!((0.45..0.55).contains(&share), "{share}");
    }

    #[tokio::test]
    async fn https_nodes_are_skipped_and_a_changed_url_or_creation_gets_a_new_endpoint() {
        let set = EndpointSet::new();
        set.update(&[
            node("a", "https://127.0.0.1:1"),
            node("b", "http://127.0.0.1:2"),
        ]);
        assert_eq!(set.len(), 1);
        assert_eq!(set.pick(&[]).unwrap().node(), "b");
        let b = endpoint(&set, "b");
        let mut reused = node("b", "http://127.0.0.1:2");
        reused.created = 2;
        set.update(std::slice::from_ref(&reused));
        assert!(
            !Arc::ptr_eq(&b, &endpoint(&set, "b")),
            "a new node under an old name"
        );
        let b = endpoint(&set, "b");
        reused.url = "http://127.0.0.1:3".parse().unwrap();
        set.update(&[reused]);
        assert!(
            !Arc::ptr_eq(&b, &endpoint(&set, "b")),
            "a node whose URL was set"
        );
        assert_eq!(endpoint(&set, "b").url().port(), 3);
    }

    #[tokio::test]
    async fn update_keeps_endpoints_of_surviving_nodes() {
        let set = EndpointSet::new();
        set.update(&[
            node("a", "http://127.0.0.1:1"),
            node("b", "http://127.0.0.1:2"),
        ]);
        let before = set.snapshot();
        set.update(&[
            node("b", "http://127.0.0.1:2"),
            node("c", "http://127.0.0.1:1"),
        ]);
        let after = set.snapshot();
        assert!(
            Arc::ptr_eq(&before[1], &after[0]),
            "b keeps its endpoint and channel"
        );
        assert_eq!(after[1].node(), "c");
        assert_eq!(set.len(), 2);
    }
}
