//! Picking strategies: which endpoint a request goes to, as Curator's `ProviderStrategy`.
//!
//! A strategy sees the whole list and a predicate saying which endpoints it may pick (the
//! [`EndpointSet`](super::EndpointSet) asks first among healthy weighted endpoints, then among
//! healthy weight-0 backups, and fails open on its own). Built in:
//! - [`Strategy::Random`] (default, the design card): random, in proportion to `?weight=N`;
//!   uniform when the weights are equal (all 0 included), as Dubbo's random load balancing.
//! - [`Strategy::RoundRobin`]: in turn, in proportion to the weights, interleaved (a weight-300
//!   endpoint gets every other call next to a weight-100 one, not 300 in a row).
//! - [`Strategy::LeastLoaded`]: the power of two choices, as tower's p2c and Finagle: two
//!   endpoints drawn by weight; the second wins only if its [`Load::cost`](super::Load::cost)
//!   (a peak-EWMA latency that decays with time, times one plus a tenth per request in flight
//!   per 100 of weight) is
//!   clearly lower, else the first: equally loaded providers share the calls by `?weight=N`.
//!   A new endpoint, or one not answered for a second, is unmeasured and competes on requests
//!   in flight alone; a provider that was slow (paused, its first connection) is back within
//!   about a second.
//! - [`Strategy::First`]: the seeds' rule, the first usable entry in node order (registration
//!   order), the next one only when it is ejected: primary/backup.
//! - [`Strategy::Custom`]: your own [`Pick`].
//!
//! Picking takes no lock and allocates nothing. The built-in strategies draw from tables
//! prepared when the list changes ([`Candidates`]): O(1) expected per pick (O(log n) with unequal
//! weights), whatever the list's length; they walk the list only after [`DRAWS`] draws found
//! nothing usable.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::candidates::{Candidates, DRAWS};
use super::endpoint::Endpoint;

mod least_loaded;
mod rng;

pub use least_loaded::LeastLoaded;
use rng::PickRng;

/// A picking rule. `pick` returns the index in `endpoints` of one endpoint for which `usable`
/// holds, or `None` if there is none. It runs on every request: it should neither block nor
/// allocate. Given as [`Strategy::Custom`].
///
/// ```
/// use std::sync::Arc;
/// use zoorpc_consumer::{ConsumerConfig, Endpoint, Pick, Strategy};
///
/// /// Providers of zone `a` first (`?zone=a`), any other when none is usable.
/// #[derive(Debug)]
/// struct ZoneAFirst;
///
/// impl Pick for ZoneAFirst {
///     fn pick(&self, endpoints: &[Arc<Endpoint>], usable: &dyn Fn(&Endpoint) -> bool) -> Option<usize> {
///         let in_zone_a = |e: &Endpoint| e.url().metadata("zone") == Some("a");
///         let first = |wanted: &dyn Fn(&Endpoint) -> bool| endpoints.iter().position(|e| usable(e) && wanted(e));
///         first(&in_zone_a).or_else(|| first(&|_| true))
///     }
/// }
///
/// let config = ConsumerConfig::new("127.0.0.1:2181", "/services/echo")
///     .strategy(Strategy::Custom(Arc::new(ZoneAFirst)));
/// assert!(matches!(config.strategy, Strategy::Custom(_)));
/// ```
pub trait Pick: Send + Sync + fmt::Debug + 'static {
    /// Picks among the usable endpoints.
    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize>;

    /// Picks among `candidates` (what the endpoint set calls): the index in
    /// `candidates.endpoints()` of a usable endpoint, or `None` if there is none. The default
    /// walks the list with [`Pick::pick`]; a rule that can draw from the prepared class (as the
    /// built-in ones do) overrides it to cost the same at any list length.
    fn pick_candidate(&self, candidates: &Candidates<'_>) -> Option<usize> {
        self.pick(candidates.endpoints(), candidates.usable())
    }

    /// Whether this rule reads [`Endpoint::load`]: requests in flight and the latency EWMA are
    /// kept (a few shared counters written on every call) only for a rule that does. The
    /// default is `true`, so a rule of your own can read them; the built-in rules other than
    /// least-loaded say `false`.
    fn reads_load(&self) -> bool {
        true
    }
}

/// Up to [`DRAWS`] draws by `draw`; the first usable one.
fn first_usable_draw(
    candidates: &Candidates<'_>,
    mut draw: impl FnMut() -> Option<usize>,
) -> Option<usize> {
    (0..DRAWS)
        .filter_map(|_| draw())
        .find(|&i| candidates.is_usable(i))
}

/// The consumer's picking strategy ([`ConsumerConfig::strategy`](crate::ConsumerConfig)).
/// Parsed from the names the programs' `--strategy` flag takes.
///
/// ```
/// use zoorpc_consumer::{ConsumerConfig, Strategy};
/// assert!(matches!("round-robin".parse(), Ok(Strategy::RoundRobin)));
/// assert!(matches!("least_loaded".parse(), Ok(Strategy::LeastLoaded)));
/// let err = "fastest".parse::<Strategy>().unwrap_err();
/// assert_eq!(err, "unknown strategy \"fastest\": use random, round-robin, least-loaded or first");
/// // `First` (primary/backup): the first node in order, the next one only when it is ejected.
/// let config = ConsumerConfig::new("127.0.0.1:2181", "/services/echo").strategy(Strategy::First);
/// # let _ = config;
/// ```
#[derive(Clone, Debug, Default)]
pub enum Strategy {
    /// Weighted random (the default).
    #[default]
    Random,
    /// Weighted round-robin, interleaved.
    RoundRobin,
    /// Weighted power of two choices over [`Load::cost`](super::Load::cost): a decaying latency
    /// estimate × (1 + requests in flight per 100 of weight / 10).
    LeastLoaded,
    /// The first usable entry in node order.
    First,
    /// A user's rule.
    Custom(Arc<dyn Pick>),
}

impl Strategy {
    /// The picker for one consumer (round-robin keeps its position per consumer), drawing
    /// from `seed`'s sequence when there is one (the random rules; a rule of your own has its
    /// own randomness).
    pub(crate) fn picker(&self, seed: Option<u64>) -> Arc<dyn Pick> {
        match self {
            Strategy::Random => Arc::new(seed.map_or_else(Random::default, Random::seeded)),
            Strategy::RoundRobin => Arc::new(RoundRobin::default()),
            Strategy::LeastLoaded => {
                Arc::new(seed.map_or_else(LeastLoaded::default, LeastLoaded::seeded))
            }
            Strategy::First => Arc::new(First),
            Strategy::Custom(pick) => pick.clone(),
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(Strategy::Random),
            "round-robin" | "round_robin" => Ok(Strategy::RoundRobin),
            "least-loaded" | "least_loaded" => Ok(Strategy::LeastLoaded),
            "first" => Ok(Strategy::First),
            other => Err(format!(
                "unknown strategy {other:?}: use random, round-robin, least-loaded or first"
            )),
        }
    }
}

/// The usable endpoints, their count, total weight and whether all weights are equal.
fn census(endpoints: &[Arc<Endpoint>], usable: &dyn Fn(&Endpoint) -> bool) -> (usize, u64, bool) {
    let (mut count, mut total, mut uniform, mut first) = (0usize, 0u64, true, None);
    for e in endpoints.iter().filter(|e| usable(e)) {
        count += 1;
        total += u64::from(e.weight());
        uniform &= *first.get_or_insert(e.weight()) == e.weight();
    }
    (count, total, uniform || total == 0)
}

/// The index of the `n`-th usable endpoint.
fn nth_usable(
    endpoints: &[Arc<Endpoint>],
    usable: &dyn Fn(&Endpoint) -> bool,
    n: usize,
) -> Option<usize> {
    endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| usable(e))
        .nth(n)
        .map(|(i, _)| i)
}

/// The index of the usable endpoint holding weight ticket `ticket` (`0..total`).
fn by_ticket(
    endpoints: &[Arc<Endpoint>],
    usable: &dyn Fn(&Endpoint) -> bool,
    mut ticket: u64,
) -> Option<usize> {
    for (i, e) in endpoints.iter().enumerate().filter(|(_, e)| usable(e)) {
        let w = u64::from(e.weight());
        if ticket < w {
            return Some(i);
        }
        ticket -= w;
    }
    None
}

/// Weighted random: the thread's generator by default, or a sequence that repeats from run to
/// run with [`Random::seeded`] (what [`ConsumerConfig::rng_seed`](crate::ConsumerConfig) gives).
#[derive(Debug, Default)]
pub struct Random {
    rng: PickRng,
}

impl Random {
    /// Weighted random drawing from `seed`'s sequence: picks made one after another are the
    /// same in every run.
    pub fn seeded(seed: u64) -> Random {
        Random {
            rng: PickRng::seeded(seed),
        }
    }
}

impl Pick for Random {
    fn reads_load(&self) -> bool {
        false
    }

    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        let (count, total, uniform) = census(endpoints, usable);
        if count == 0 {
            return None;
        }
        if uniform {
            nth_usable(endpoints, usable, self.rng.below(count as u64) as usize)
        } else {
            by_ticket(endpoints, usable, self.rng.below(total))
        }
    }

    fn pick_candidate(&self, candidates: &Candidates<'_>) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let (len, total) = (candidates.len() as u64, candidates.total_weight());
        let drawn = if candidates.is_uniform() {
            first_usable_draw(candidates, || candidates.nth(self.rng.below(len) as usize))
        } else {
            first_usable_draw(candidates, || candidates.by_ticket(self.rng.below(total)))
        };
        drawn.or_else(|| self.pick(candidates.endpoints(), candidates.usable()))
    }
}

/// Weighted round-robin: the `n`-th pick takes the weight ticket at `n × φ` (mod the total
/// weight), a low-discrepancy walk that gives each endpoint its share and spreads its turns.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicU64,
}

impl Pick for RoundRobin {
    fn reads_load(&self) -> bool {
        false
    }

    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        let (count, total, uniform) = census(endpoints, usable);
        if count == 0 {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if uniform {
            return nth_usable(endpoints, usable, (n % count as u64) as usize);
        }
        by_ticket(endpoints, usable, golden_ticket(n, total))
    }

    /// Each draw takes the next turn: an endpoint that cannot be picked now passes its turn on.
    fn pick_candidate(&self, candidates: &Candidates<'_>) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let (len, total) = (candidates.len(), candidates.total_weight());
        let uniform = candidates.is_uniform();
        first_usable_draw(candidates, || {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            if uniform {
                candidates.nth((n % len as u64) as usize)
            } else {
                candidates.by_ticket(golden_ticket(n, total))
            }
        })
        .or_else(|| self.pick(candidates.endpoints(), candidates.usable()))
    }
}

/// The weight ticket (`0..total`) of the `n`-th weighted round-robin turn: `n × φ` mod 1, scaled.
fn golden_ticket(n: u64, total: u64) -> u64 {
    const PHI_FRACTION: f64 = 0.618_033_988_749_894_9;
    let position = (n as f64 * PHI_FRACTION).fract();
    ((position * total as f64) as u64).min(total.saturating_sub(1))
}

/// The first usable endpoint in node order.
#[derive(Debug, Default)]
pub struct First;

impl Pick for First {
    fn reads_load(&self) -> bool {
        false
    }

    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        nth_usable(endpoints, usable, 0)
    }

    fn pick_candidate(&self, candidates: &Candidates<'_>) -> Option<usize> {
        (0..candidates.len())
            .filter_map(|n| candidates.nth(n))
            .find(|&i| candidates.is_usable(i))
    }
}
