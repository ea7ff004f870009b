//! `EndpointSet`: the consumer's live list of providers, lock-free to read.
//!
//! - Readers load an `Arc` snapshot (`arc-swap`): no lock on the call path.
//! - One reusable tonic `Channel` per provider node, created lazily (no dial until first use) and
//!   kept while the node lives; a new node for the same URL (a restarted provider), a node name
//!   that comes back with a new creation (`czxid`), or a node whose URL was changed gets a fresh
//!   endpoint with a clean record.
//! - Only `http://` providers are dialled. An `https://` node is skipped with one warning until
//!   TLS is supported: a request is never sent in plaintext to a provider that asked for TLS.
//! - Connection failures eject an endpoint as the [`EjectionPolicy`] says (doubling, at most half
//!   of the endpoints, back through one probe request).
//! - Picking, in order of preference: the [`Strategy`] among the endpoints that are not ejected
//!   with a positive weight; else the strategy among the weight-0 endpoints not ejected
//!   (backups); else the endpoint whose ejection ends first (fail open: better a try than a
//!   certain error).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tracing::{debug, warn};
use zoorpc_registry::ProviderNode;

use super::candidates::{Candidates, Class};
use super::ejection::{Availability, EjectionPolicy};
pub use super::endpoint::{DEFAULT_WEIGHT, Endpoint};
use super::strategy::{Pick, Strategy};

/// The list and what picking draws from, swapped together on every update.
#[derive(Debug, Default)]
struct Listing {
    /// The endpoints in node order.
    endpoints: Arc<Vec<Arc<Endpoint>>>,
    /// The endpoints with a positive weight.
    weighted: Class,
    /// The weight-0 endpoints (backups).
    backups: Class,
}

impl Listing {
    fn new(endpoints: Vec<Arc<Endpoint>>) -> Listing {
        Listing {
            weighted: Class::of(&endpoints, |e| e.weight > 0),
            backups: Class::of(&endpoints, |e| e.weight == 0),
            endpoints: Arc::new(endpoints),
        }
    }
}

/// The live endpoint list.
#[derive(Debug)]
pub struct EndpointSet {
    /// The list picking reads, swapped whole on every update.
    listing: ArcSwap<Listing>,
    /// The picking rule.
    picker: Arc<dyn Pick>,
    /// When connection failures eject an endpoint.
    ejection: EjectionPolicy,
    /// Counts updates, so waiters learn of each one.
    version: tokio::sync::watch::Sender<u64>,
    /// Nodes skipped because they cannot be dialled (e.g. `https://`), so each is warned of once.
    skipped: Mutex<HashSet<(String, i64)>>,
}

impl Default for EndpointSet {
    fn default() -> Self {
        EndpointSet::with_policy(&Strategy::default(), EjectionPolicy::default())
    }
}

impl EndpointSet {
    /// An empty set, picking at random, with the default ejection policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with a strategy and an ejection policy.
    pub fn with_policy(strategy: &Strategy, ejection: EjectionPolicy) -> Self {
        EndpointSet {
            listing: ArcSwap::default(),
            picker: strategy.picker(),
            ejection,
            version: tokio::sync::watch::Sender::new(0),
            skipped: Mutex::default(),
        }
    }

    /// A receiver that is notified after every update of the list (the value counts updates).
    pub fn updates(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The current endpoints.
    pub fn snapshot(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.listing.load().endpoints.clone()
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.listing.load().endpoints.len()
    }

    /// Whether there are no endpoints.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the list with `providers`, keeping the endpoint (channel, ejection) of every
    /// node that is still there with the same creation and URL.
    pub fn update(&self, providers: &[ProviderNode]) {
        let current = self.listing.load_full();
        let mut previous = Previous::new(&current.endpoints, providers);
        let mut skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        if !skipped.is_empty() {
            let listed: HashSet<(&str, i64)> = providers
                .iter()
                .map(|p| (p.name.as_str(), p.created))
                .collect();
            skipped.retain(|(name, created)| listed.contains(&(name.as_str(), *created)));
        }
        let next: Vec<Arc<Endpoint>> = providers
            .iter()
            .filter_map(|p| {
                if p.url.scheme() != "http" {
                    if skipped.insert((p.name.clone(), p.created)) {
                        warn!(node = %p.name, url = %p.url, "skipping a provider this consumer cannot reach safely: only http:// is supported (TLS is not, and a request is never sent in plaintext to an https:// provider)");
                    }
                    return None;
                }
                previous
                    .find(p)
                    .filter(|e| e.url == p.url)
                    .cloned()
                    .or_else(|| Endpoint::new(p).map(Arc::new))
            })
            .collect();
        drop(skipped);
        self.listing.store(Arc::new(Listing::new(next)));
        self.version.send_modify(|v| *v += 1);
    }

    /// Picks an endpoint not in `exclude` (node names); `None` only if every endpoint is
    /// excluded (or the set is empty). Preference: the strategy among endpoints not ejected
    /// with a positive weight; then among weight-0 endpoints not ejected (backups); then the
    /// endpoint whose ejection ends first (fail open). An endpoint back from an ejection takes
    /// one request (its probe) until that succeeds.
    pub fn pick(&self, exclude: &[String]) -> Option<Arc<Endpoint>> {
        self.pick_where(|e| !exclude.contains(&e.node))
    }

    /// [`EndpointSet::pick`] excluding the nodes of the endpoints a call already tried.
    pub(crate) fn pick_after(&self, tried: &[Arc<Endpoint>]) -> Option<Arc<Endpoint>> {
        self.pick_where(|e| !tried.iter().any(|t| t.node == e.node))
    }

    /// Picking (see [`EndpointSet::pick`]) among the endpoints for which `candidate` holds.
    fn pick_where(&self, candidate: impl Fn(&Endpoint) -> bool) -> Option<Arc<Endpoint>> {
        let listing = self.listing.load();
        let all = &listing.endpoints;
        let policy = &self.ejection;
        for (backups, class) in [(false, &listing.weighted), (true, &listing.backups)] {
            let usable = |e: &Endpoint| {
                candidate(e)
                    && (e.weight == 0) == backups
                    && e.health.availability(policy) != Availability::Closed
            };
            let candidates = Candidates::new(all, class, &usable);
            // An endpoint on probation is picked only by the request that claims its probe;
            // a lost race means picking again without it (bounded by the list's length).
            for _ in 0..=all.len() {
                let Some(i) = self.picker.pick_candidate(&candidates) else {
                    break;
                };
                let e = &all[i];
                match e.health.availability(policy) {
                    Availability::Open => return Some(e.clone()),
                    Availability::Probe if e.health.claim_probe(policy) => {
                        debug!(url = %e.url, "probing an endpoint back from ejection");
                        return Some(e.clone());
                    }
                    _ => {}
                }
            }
        }
        all.iter()
            .filter(|e| candidate(e))
            .min_by_key(|e| e.health.ejected_until_ms())
            .cloned()
    }

    /// Records a connection failure of `endpoint`: ejects it unless that would put more than
    /// the policy's share of the endpoints out at once.
    pub fn record_failure(&self, endpoint: &Endpoint) {
        let listing = self.listing.load();
        let all = &listing.endpoints;
        let others_out = all
            .iter()
            .filter(|e| !std::ptr::eq(e.as_ref(), endpoint) && e.is_ejected())
            .count();
        let may_eject = others_out < self.ejection.max_ejected(all.len().max(1));
        match endpoint.health.record_failure(&self.ejection, may_eject) {
            Some(backoff) => {
                super::metrics::ejected(endpoint.label());
                debug!(url = %endpoint.url, ?backoff, "endpoint ejected")
            }
            None => {
                debug!(url = %endpoint.url, others_out, "not ejected: the most endpoints that may be out at once are out")
            }
        }
    }
}

/// The endpoints before an update, to find the one of a node that is still there: walked along
/// the new list when both are in node order (discovery's snapshots are), else looked up by node.
enum Previous<'a> {
    /// Both lists in node order (names unique): one walk, no hashing.
    Sorted {
        endpoints: &'a [Arc<Endpoint>],
        next: usize,
    },
    /// By node (name and creation).
    Indexed(HashMap<(&'a str, i64), &'a Arc<Endpoint>>),
}

impl<'a> Previous<'a> {
    fn new(endpoints: &'a [Arc<Endpoint>], providers: &[ProviderNode]) -> Previous<'a> {
        if endpoints.is_sorted_by(|a, b| a.node < b.node)
            && providers.is_sorted_by(|a, b| a.name < b.name)
        {
            return Previous::Sorted { endpoints, next: 0 };
        }
        Previous::Indexed(
            endpoints
                .iter()
                .map(|e| ((e.node.as_str(), e.created), e))
                .collect(),
        )
    }

    /// The previous endpoint of `p`'s node (same name and creation), if any. With `Sorted`,
    /// called in the new list's order.
    fn find(&mut self, p: &ProviderNode) -> Option<&'a Arc<Endpoint>> {
        match self {
            Previous::Sorted { endpoints, next } => {
                while let Some(e) = endpoints.get(*next) {
                    match e.node.as_str().cmp(p.name.as_str()) {
                        std::cmp::Ordering::Less => *next += 1,
                        std::cmp::Ordering::Equal => {
                            *next += 1;
                            return (e.created == p.created).then_some(e);
                        }
                        std::cmp::Ordering::Greater => return None,
                    }
                }
                None
            }
            Previous::Indexed(by_node) => by_node.get(&(p.name.as_str(), p.created)).copied(),
        }
    }
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
        set.record_failure(&a);
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
        set.record_failure(&endpoint(&set, "b"));
        assert_eq!(share_of_a(&set, &[]), 1.0, "the backup takes every call");
    }

    #[tokio::test]
    async fn at_most_half_of_the_endpoints_are_ejected() {
        let set = EndpointSet::new();
        set.update(&[
            node("a", "http://127.0.0.1:1"),
            node("b", "http://127.0.0.1:2"),
            node("c", "http://127.0.0.1:3"),
            node("d", "http://127.0.0.1:4"),
        ]);
        for e in set.snapshot().iter() {
            set.record_failure(e);
        }
        let ejected = set.snapshot().iter().filter(|e| e.is_ejected()).count();
        assert_eq!(ejected, 2);
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
    async fn every_strategy_skips_ejected_and_excluded_endpoints_of_a_long_list() {
        let nodes: Vec<ProviderNode> = (0..40)
            .map(|i| node(&format!("n{i:02}"), &format!("http://127.0.0.1:{}", i + 1)))
            .collect();
        for strategy in [
            Strategy::Random,
            Strategy::RoundRobin,
            Strategy::LeastLoaded,
            Strategy::First,
        ] {
            let set = EndpointSet::with_policy(&strategy, EjectionPolicy::default());
            set.update(&nodes);
            // Every other endpoint out: half of them, the most the policy allows.
            for e in set.snapshot().iter().step_by(2) {
                set.record_failure(e);
            }
            let out: HashSet<String> = set
                .snapshot()
                .iter()
                .filter(|e| e.is_ejected())
                .map(|e| e.node().to_owned())
                .collect();
            assert_eq!(out.len(), 20, "{strategy:?}");
            let exclude = vec!["n01".to_owned(), "n03".to_owned()];
            let mut seen = HashSet::new();
            for _ in 0..2000 {
                let picked = set.pick(&exclude).unwrap().node().to_owned();
                assert!(!out.contains(&picked), "{strategy:?} picked ejected {picked}");
                assert!(!exclude.contains(&picked), "{strategy:?} picked excluded {picked}");
                seen.insert(picked);
            }
            let expected = if matches!(strategy, Strategy::First) { 1 } else { 18 };
            assert_eq!(seen.len(), expected, "{strategy:?} reached {seen:?}");
        }
    }

    #[tokio::test]
    async fn weighted_random_and_round_robin_keep_their_shares_with_backups_beside() {
        for strategy in [Strategy::Random, Strategy::RoundRobin] {
            let set = EndpointSet::with_policy(&strategy, EjectionPolicy::default());
            set.update(&[
                node("a", "http://127.0.0.1:1?weight=300"),
                node("z", "http://127.0.0.1:9?weight=0"),
                node("b", "http://127.0.0.1:2?weight=100"),
            ]);
            let share = share_of_a(&set, &[]);
            assert!((0.70..0.80).contains(&share), "{strategy:?}: {share}");
            assert_eq!(set.pick(&["a".into(), "b".into()]).unwrap().node(), "z");
        }
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
