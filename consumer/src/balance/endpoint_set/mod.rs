//! `EndpointSet`: the consumer's live list of providers, lock-free to read.
//!
//! - Readers load an `Arc` snapshot (`arc-swap`): no lock on the call path.
//! - One reusable tonic `Channel` per provider node, created lazily (no dial until first use) and
//!   kept while the node lives; a new node for the same URL (a restarted provider), a node name
//!   that comes back with a new creation (`czxid`), or a node whose URL was changed gets a fresh
//!   endpoint with a clean record.
//! - `http://` providers are dialled in plaintext, `https://` ones with TLS verified against the
//!   set's [`ConsumerTls`]; without one an `https://` endpoint stays in the list but its dial
//!   fails naming the missing CA (so it is ejected like any failed connection): a request is
//!   never sent in plaintext to a provider that asked for TLS.
//! - Failures eject an endpoint as the [`EjectionPolicy`] says (see
//!   [`ejection`](super::ejection)): a connection failure at once, `UNAVAILABLE` answers only
//!   several in a row; one outage is one ejection; doubling per consecutive ejection, at most
//!   half of the endpoints, back through one probe request.
//! - Picking, in order of preference: the [`Strategy`] among the endpoints that are not ejected
//!   with a positive weight; else the strategy among the weight-0 endpoints not ejected
//!   (backups); else the endpoint whose ejection ends first (fail open: better a try than a
//!   certain error).

use std::sync::Arc;

use arc_swap::ArcSwap;
use tracing::{debug, warn};
use zoorpc_registry::ProviderNode;

mod previous;

use previous::Previous;

use super::candidates::{Candidates, Class};
use super::ejection::{AttemptStart, Availability, EjectionPolicy, Strike};
pub use super::endpoint::Endpoint;
use super::strategy::{Pick, Strategy};
use crate::tls::ConsumerTls;

/// The list and what picking draws from, swapped together on every update.
#[derive(Debug, Default)]
struct Listing {
    /// The endpoints in node order.
    endpoints: Arc<Vec<Arc<Endpoint>>>,
    /// The endpoints with a positive weight.
    weighted: Class,
    /// The weight-0 endpoints (backups).
    backups: Class,
    /// Whether the endpoints are in node order (names unique), so the next update can walk them.
    sorted: bool,
}

impl Listing {
    fn new(endpoints: Vec<Arc<Endpoint>>, sorted: bool) -> Listing {
        Listing {
            sorted,
            weighted: Class::of(&endpoints, |e| e.weight > 0),
            backups: Class::of(&endpoints, |e| e.weight == 0),
            endpoints: Arc::new(endpoints),
        }
    }
}

/// The live endpoint list: one [`Endpoint`] (one lazily connected channel) per provider node,
/// swapped whole on every update, read without a lock. `https://` providers are kept and
/// dialled with TLS (see [`EndpointSet::with_tls`]). The consumer's own: a user sees its
/// endpoints through `Consumer::endpoints` and picks through a balanced channel.
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
    /// How `https://` providers are dialled (`None`: they are not).
    tls: Option<ConsumerTls>,
}

impl Default for EndpointSet {
    fn default() -> Self {
        EndpointSet::with_policy(&Strategy::default(), EjectionPolicy::default())
    }
}

impl EndpointSet {
    /// Whether the set's picking rule reads the endpoints' [`Load`](super::Load) (see
    /// [`Pick::reads_load`]).
    pub(crate) fn reads_load(&self) -> bool {
        self.picker.reads_load()
    }

    /// An empty set, picking at random, with the default ejection policy.
    #[cfg(feature = "testing")]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with a strategy and an ejection policy.
    pub fn with_policy(strategy: &Strategy, ejection: EjectionPolicy) -> Self {
        EndpointSet::seeded(strategy, ejection, None)
    }

    /// An empty set whose random picking draws from `seed`'s sequence when there is one
    /// ([`ConsumerConfig::rng_seed`](crate::ConsumerConfig::rng_seed)).
    pub(crate) fn seeded(strategy: &Strategy, ejection: EjectionPolicy, seed: Option<u64>) -> Self {
        EndpointSet {
            listing: ArcSwap::default(),
            picker: strategy.picker(seed),
            ejection,
            version: tokio::sync::watch::Sender::new(0),
            tls: None,
        }
    }

    /// This set, dialling `https://` providers with `tls` (`None`: refusing to).
    pub fn with_tls(mut self, tls: Option<ConsumerTls>) -> Self {
        self.tls = tls;
        self
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
        let mut previous = Previous::new(&current.endpoints, current.sorted);
        let mut next: Vec<Arc<Endpoint>> = Vec::with_capacity(providers.len());
        for p in providers {
            let kept = previous.find(p).filter(|e| e.url == p.url).cloned();
            next.extend(kept.or_else(|| {
                if p.url.scheme() == "https" && self.tls.is_none() {
                    warn!(node = %p.name, url = %p.url, "an https:// provider and no TLS configured ({}): calls to it fail, never in plaintext", crate::error::settings::TLS_CA);
                }
                Endpoint::new(p, self.tls.as_ref()).map(Arc::new)
            }));
        }
        let sorted = previous.in_order();
        self.listing.store(Arc::new(Listing::new(next, sorted)));
        self.version.send_modify(|v| *v += 1);
    }

    /// Picks an endpoint not in `exclude` (node names); `None` only if every endpoint is
    /// excluded (or the set is empty). Preference: the strategy among endpoints not ejected
    /// with a positive weight; then among weight-0 endpoints not ejected (backups); then the
    /// endpoint whose ejection ends first (fail open). An endpoint back from an ejection takes
    /// one request (its probe) until that succeeds.
    #[cfg(any(test, feature = "testing"))]
    pub fn pick(&self, exclude: &[String]) -> Option<Arc<Endpoint>> {
        self.pick_where(|e| !exclude.iter().any(|x| **x == *e.node))
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
            .min_by_key(|e| e.health.ejected_until())
            .cloned()
    }

    /// Records a connection failure of `endpoint` by a call that started now: ejects it
    /// unless it is ejected already or that would put more than the policy's share of the
    /// endpoints out at once.
    #[cfg(test)]
    pub(crate) fn record_failure(&self, endpoint: &Endpoint) {
        self.record_strike(endpoint, endpoint.health.started(), Strike::Connection);
    }

    /// Records a failure of an attempt on `endpoint` that started at `started`, as ejection
    /// weighs `strike` (see [`ejection`](super::ejection)): failures of an outage already
    /// judged (the endpoint ejected, or ejected since the attempt started) change nothing.
    pub(crate) fn record_strike(&self, endpoint: &Endpoint, started: AttemptStart, strike: Strike) {
        let listing = self.listing.load();
        let all = &listing.endpoints;
        let others_out = all
            .iter()
            .filter(|e| !std::ptr::eq(e.as_ref(), endpoint) && e.is_ejected())
            .count();
        let may_eject = others_out < self.ejection.max_ejected(all.len().max(1));
        if let Some(backoff) =
            endpoint
                .health
                .record_failure(&self.ejection, may_eject, started, strike)
        {
            super::metrics::ejected(endpoint.label());
            debug!(url = %endpoint.url, ?backoff, ?strike, "endpoint ejected");
        } else if !may_eject {
            debug!(url = %endpoint.url, others_out, "not ejected: the most endpoints that may be out at once are out");
        }
    }
}

#[cfg(test)]
mod tests;
