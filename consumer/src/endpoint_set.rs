//! `EndpointSet`: the consumer's live list of providers, lock-free to read.
//!
//! - Readers load an `Arc` snapshot (`arc-swap`): no lock on the call path.
//! - One reusable tonic `Channel` per provider node, created lazily (no dial until first use) and
//!   kept while the node lives; a new node for the same URL (a restarted provider) gets a fresh
//!   endpoint with a clean record.
//! - An endpoint that failed to connect is *ejected* for a backoff that doubles per consecutive
//!   failure (1 s .. 30 s) and is skipped by picking while ejected; a success clears it.
//! - Picking is uniformly random among the endpoints not ejected. If every endpoint is ejected
//!   the one whose ejection ends first is tried (fail open: better a try than a certain error).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rand::Rng;
use tonic::transport::Channel;
use tracing::{debug, warn};
use zoorpc_registry::{ProviderNode, ProviderUrl};

const EJECT_BASE: Duration = Duration::from_secs(1);
const EJECT_MAX: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// One provider as the consumer sees it.
#[derive(Debug)]
pub struct Endpoint {
    node: String,
    url: ProviderUrl,
    channel: Channel,
    ejected_until_ms: AtomicU64,
    failures: AtomicU32,
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
        let channel = endpoint
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .connect_lazy();
        Some(Endpoint {
            node: node.name.clone(),
            url: node.url.clone(),
            channel,
            ejected_until_ms: AtomicU64::new(0),
            failures: AtomicU32::new(0),
        })
    }

    /// The znode name, e.g. `provider0000000042`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The provider URL.
    pub fn url(&self) -> &ProviderUrl {
        &self.url
    }

    /// The endpoint's channel (cheap to clone; all clones share one connection).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
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
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    version: tokio::sync::watch::Sender<u64>,
}

impl Default for EndpointSet {
    fn default() -> Self {
        EndpointSet {
            endpoints: ArcSwap::default(),
            version: tokio::sync::watch::Sender::new(0),
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
    /// node that is still there.
    pub fn update(&self, providers: &[ProviderNode]) {
        let current = self.endpoints.load();
        let next: Vec<Arc<Endpoint>> = providers
            .iter()
            .filter_map(|p| {
                current
                    .iter()
                    .find(|e| e.node == p.name && e.url == p.url)
                    .cloned()
                    .or_else(|| Endpoint::new(p).map(Arc::new))
            })
            .collect();
        self.endpoints.store(Arc::new(next));
        self.version.send_modify(|v| *v += 1);
    }

    /// Picks a random endpoint not in `exclude` (node names), preferring endpoints that are not
    /// ejected. `None` only if every endpoint is excluded (or the set is empty).
    pub fn pick(&self, exclude: &[String]) -> Option<Arc<Endpoint>> {
        let all = self.endpoints.load();
        let candidates = || all.iter().filter(|e| !exclude.contains(&e.node));
        let healthy = candidates().filter(|e| !e.is_ejected()).count();
        if healthy > 0 {
            let i = rand::rng().random_range(0..healthy);
            return candidates().filter(|e| !e.is_ejected()).nth(i).cloned();
        }
        candidates()
            .min_by_key(|e| e.ejected_until_ms.load(Ordering::Relaxed))
            .cloned()
    }
}
