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
//!   endpoints at random, the one with the lower [`Load::cost`] (latency EWMA, weighted by
//!   requests in flight) wins; a latency not refreshed for 2 s is forgotten, so a recovered
//!   provider is tried again.
//! - [`Strategy::First`]: the seeds' rule, the first usable entry in node order (registration
//!   order), the next one only when it is ejected: primary/backup.
//! - [`Strategy::Custom`]: your own [`Pick`].
//!
//! Picking takes no lock and allocates nothing.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;

use super::ejection::now_ms;
use super::endpoint::Endpoint;

/// A picking rule. `pick` returns the index in `endpoints` of one endpoint for which `usable`
/// holds, or `None` if there is none.
pub trait Pick: Send + Sync + fmt::Debug + 'static {
    /// Picks among the usable endpoints.
    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize>;
}

/// The consumer's picking strategy ([`ConsumerConfig::strategy`](crate::ConsumerConfig)).
#[derive(Clone, Debug, Default)]
pub enum Strategy {
    /// Weighted random (the default).
    #[default]
    Random,
    /// Weighted round-robin, interleaved.
    RoundRobin,
    /// Power of two choices over in-flight requests × latency EWMA.
    LeastLoaded,
    /// The first usable entry in node order.
    First,
    /// A user's rule.
    Custom(Arc<dyn Pick>),
}

impl Strategy {
    /// The picker for one consumer (round-robin keeps its position per consumer).
    pub(crate) fn picker(&self) -> Arc<dyn Pick> {
        match self {
            Strategy::Random => Arc::new(Random),
            Strategy::RoundRobin => Arc::new(RoundRobin::default()),
            Strategy::LeastLoaded => Arc::new(LeastLoaded),
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

/// Weighted random.
#[derive(Debug, Default)]
pub struct Random;

impl Pick for Random {
    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        let (count, total, uniform) = census(endpoints, usable);
        if count == 0 {
            return None;
        }
        let mut rng = rand::rng();
        if uniform {
            nth_usable(endpoints, usable, rng.random_range(0..count))
        } else {
            by_ticket(endpoints, usable, rng.random_range(0..total))
        }
    }
}

/// Weighted round-robin: the `n`-th pick takes the weight ticket at `n × φ` (mod the total
/// weight), a low-discrepancy walk that gives each endpoint its share and spreads its turns.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicU64,
}

impl Pick for RoundRobin {
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
        const PHI_FRACTION: f64 = 0.618_033_988_749_894_9;
        let position = (n as f64 * PHI_FRACTION).fract();
        let ticket = ((position * total as f64) as u64).min(total - 1);
        by_ticket(endpoints, usable, ticket)
    }
}

/// Power of two choices over (in-flight + 1) × latency EWMA. Weights are not used.
#[derive(Debug, Default)]
pub struct LeastLoaded;

impl Pick for LeastLoaded {
    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        let (count, _, _) = census(endpoints, usable);
        if count <= 1 {
            return nth_usable(endpoints, usable, 0);
        }
        let mut rng = rand::rng();
        let a = rng.random_range(0..count);
        let mut b = rng.random_range(0..count - 1);
        if b >= a {
            b += 1;
        }
        let a = nth_usable(endpoints, usable, a)?;
        let b = nth_usable(endpoints, usable, b)?;
        if endpoints[b].load().cost() < endpoints[a].load().cost() {
            Some(b)
        } else {
            Some(a)
        }
    }
}

/// The first usable endpoint in node order.
#[derive(Debug, Default)]
pub struct First;

impl Pick for First {
    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        usable: &dyn Fn(&Endpoint) -> bool,
    ) -> Option<usize> {
        nth_usable(endpoints, usable, 0)
    }
}

/// What [`LeastLoaded`] reads of an endpoint: requests in flight and a latency EWMA, kept by the
/// balanced channel (until response headers, which for a unary call is its whole latency).
#[derive(Debug, Default)]
pub struct Load {
    in_flight: AtomicU32,
    /// Exponentially weighted moving average of the latency, in microseconds (0: none yet).
    ewma_us: AtomicU64,
    /// When the EWMA was last fed (`ejection::now_ms`; 0: never).
    sampled_ms: AtomicU64,
}

/// A latency EWMA not fed for this long no longer counts: the endpoint is tried again, so a
/// provider that was slow and recovered gets its share back.
const STALE_AFTER_MS: u64 = 2_000;

impl Load {
    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency EWMA (zero before the first answer).
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.ewma_us.load(Ordering::Relaxed))
    }

    /// What p2c compares: latency × (1 + in-flight / 10). gRPC servers answer requests in
    /// parallel, so requests in flight add little to the next one's latency; counting each as a
    /// whole latency (tower's `(pending + 1) × rtt`) sent calls to an idle provider ten times
    /// slower (measured with `bench slow`: p99 3× the baseline, against ~1× with this cost).
    /// An endpoint never measured, or not for [`STALE_AFTER_MS`], costs the least latency there
    /// is (1 µs), so it is tried.
    pub fn cost(&self) -> u64 {
        let sampled = self.sampled_ms.load(Ordering::Relaxed);
        let fresh = sampled != 0 && now_ms().saturating_sub(sampled) < STALE_AFTER_MS;
        let latency = if fresh {
            self.ewma_us.load(Ordering::Relaxed).max(1)
        } else {
            1
        };
        latency.saturating_mul(10 + u64::from(self.in_flight())) / 10
    }

    /// Starts counting one request; the count ends when the returned guard is finished or
    /// dropped (a caller that gives up on a call drops it mid-flight: the count must not leak).
    pub(crate) fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            load: self,
            done: false,
        }
    }

    /// Ends a request that took `latency` (`None`: failed, the latency says nothing).
    fn finish(&self, latency: Option<Duration>) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if let Some(latency) = latency {
            let sample = latency.as_micros().min(u128::from(u32::MAX)) as u64;
            let old = self.ewma_us.load(Ordering::Relaxed);
            // Weight 0.3 for the new sample: follows a slowdown within a few requests.
            let new = if old == 0 {
                sample
            } else {
                (old * 7 + sample * 3) / 10
            };
            self.ewma_us.store(new.max(1), Ordering::Relaxed);
            self.sampled_ms.store(now_ms(), Ordering::Relaxed);
        }
    }
}

/// One request counted in flight on an endpoint (see [`Load::start`]).
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    load: &'a Load,
    done: bool,
}

impl InFlight<'_> {
    /// The request ended after `latency` (`None`: it failed; the latency says nothing).
    pub(crate) fn finish(mut self, latency: Option<Duration>) {
        self.done = true;
        self.load.finish(latency);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.load.finish(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_request_is_no_longer_in_flight() {
        let load = Load::default();
        let a = load.start();
        let b = load.start();
        assert_eq!(load.in_flight(), 2);
        drop(a);
        b.finish(Some(Duration::from_millis(3)));
        assert_eq!(load.in_flight(), 0);
        assert_eq!(load.latency(), Duration::from_millis(3));
    }
}
