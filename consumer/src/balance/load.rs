//! [`Load`]: what least-loaded picking reads of an endpoint (requests in flight, a latency
//! estimate), kept by the balanced channel; `InFlight` counts one request until it ends or is
//! dropped.
//!
//! The latency estimate is a peak-EWMA, the idea of tower's `PeakEwma` (written here for this
//! crate's atomics and clock):
//! - A sample above the estimate replaces it (a slowdown is seen at once); one below pulls it
//!   down by how long it has been since the last sample (time-weighted, half-life
//!   [`HALF_LIFE`]), never by how many samples came.
//! - The estimate decays towards zero between samples with the same half-life, and an endpoint
//!   not answered for [`FORGET_AFTER`] has no estimate at all: it is *unmeasured* again, as a new
//!   endpoint is. A provider that was slow once (a pause, a GC, its first connection) is tried
//!   again within about a second, and its first fresh answer replaces the old estimate instead
//!   of being blended into it.
//! - Requests in flight while the endpoint has answered nothing for a while count as that long
//!   (a request pending for 300 ms says the latency is at least that): a stalled endpoint does
//!   not look ever cheaper while calls pile up on it.
//! - An endpoint whose estimate is a guess (no answer within twice its measured latency, at
//!   least 10 ms: new, idle, or avoided because it was slow) takes one request at a time until
//!   it answers: it is *probed*. A provider that is still slow costs one call each time its
//!   estimate has decayed, not a burst of them.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How fast the estimate forgets: it halves every `HALF_LIFE` without samples, and a sample
/// below it weighs half after that long. 100 ms: a 500 ms outlier is down to a millisecond in
/// under a second.
pub const HALF_LIFE: Duration = Duration::from_millis(100);

/// An estimate not fed for this long (ten half-lives: a factor of a thousand) is dropped: the
/// endpoint is unmeasured again.
pub const FORGET_AFTER: Duration = Duration::from_secs(1);

/// How much cheaper the second candidate of p2c must be to win over the first: costs within
/// this factor are equivalent, and the first (drawn in proportion to the weights) is taken, so
/// that equally loaded providers share the calls by their weights.
pub const CLEARLY_CHEAPER: f64 = 1.5;

/// The shortest time since its last answer after which an endpoint with a request in flight
/// is probed (see [`Load::cost`]); longer for a slower endpoint: twice its latency.
pub const CONFIRM_FLOOR: Duration = Duration::from_millis(10);

/// What [`LeastLoaded`](super::LeastLoaded) reads of an endpoint: requests in flight and a
/// latency estimate, kept by the balanced channel (until response headers, which for a unary
/// call is its whole latency).
///
/// ```
/// use std::time::Duration;
/// use zoorpc_consumer::balance::Load;
/// let load = Load::default();
/// // Never measured: no estimate, so picking compares it on requests in flight alone.
/// assert_eq!((load.in_flight(), load.latency()), (0, None));
/// ```
#[derive(Debug)]
pub struct Load {
    /// The instant the microseconds below count from (the load's creation), on tokio's clock
    /// (a paused clock in tests controls the estimate's decay).
    epoch: Instant,
    in_flight: AtomicU32,
    /// The peak-EWMA latency estimate in nanoseconds, as of `sampled_us` (0: none yet).
    estimate_ns: AtomicU64,
    /// When the estimate was last fed (`now_us`; 0: never).
    sampled_us: AtomicU64,
    /// When the endpoint last made progress while busy: its last answer, or the start of a
    /// request when none was in flight (`now_us`). Requests in flight have waited at least
    /// since then.
    progress_us: AtomicU64,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            epoch: Instant::now(),
            in_flight: AtomicU32::new(0),
            estimate_ns: AtomicU64::new(0),
            sampled_us: AtomicU64::new(0),
            progress_us: AtomicU64::new(0),
        }
    }
}

/// 2^(-elapsed / HALF_LIFE): what is left of a weight after `elapsed_us`.
fn remaining(elapsed_us: u64) -> f64 {
    let half_lives = elapsed_us as f64 / HALF_LIFE.as_micros() as f64;
    (-half_lives).exp2()
}

impl Load {
    /// Microseconds since `epoch`, never 0 (0 means "not set").
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency estimate now, decayed since its last sample; `None` when the endpoint is
    /// unmeasured (never answered, or not for a second).
    pub fn latency(&self) -> Option<Duration> {
        self.estimate_at(self.now_us()).map(Duration::from_nanos)
    }

    /// How long the requests in flight have waited without the endpoint answering anything
    /// (zero when none is in flight): a lower bound on its latency now.
    pub fn stalled(&self) -> Duration {
        Duration::from_micros(self.stalled_at(self.now_us()))
    }

    fn estimate_at(&self, now: u64) -> Option<u64> {
        let sampled = self.sampled_us.load(Ordering::Relaxed);
        let age = now.saturating_sub(sampled);
        if sampled == 0 || age >= FORGET_AFTER.as_micros() as u64 {
            return None;
        }
        let estimate = self.estimate_ns.load(Ordering::Relaxed) as f64;
        Some((estimate * remaining(age)) as u64)
    }

    /// Whether the estimate is a measurement rather than a guess: the endpoint answered within
    /// twice the latency last measured (at least 10 ms). Under load an endpoint
    /// answers far more often; one avoided since, or idle, has only a decayed estimate.
    fn confirmed_at(&self, now: u64) -> bool {
        let sampled = self.sampled_us.load(Ordering::Relaxed);
        let measured_us = self.estimate_ns.load(Ordering::Relaxed) / 1_000;
        let window = measured_us
            .saturating_mul(2)
            .max(CONFIRM_FLOOR.as_micros() as u64);
        sampled != 0 && now.saturating_sub(sampled) < window
    }

    fn stalled_at(&self, now: u64) -> u64 {
        if self.in_flight() == 0 {
            return 0;
        }
        now.saturating_sub(self.progress_us.load(Ordering::Relaxed))
    }

    /// What p2c compares, for an endpoint of picking weight `weight`, in nanoseconds:
    /// latency × (1 + in-flight per weight / 10), where the latency is the estimate (`neutral`
    /// when unmeasured: the other candidate's, so that an unmeasured endpoint competes on
    /// requests in flight alone) and at least [`Load::stalled`]; `u64::MAX` while the endpoint,
    /// not answered within twice its measured latency (at least 10 ms), has a
    /// request in flight (its probe).
    ///
    /// Requests in flight count per 100 of weight (a weight-300 provider is taken to serve
    /// three times the requests at once), and each as a tenth of a latency: gRPC servers answer
    /// requests in parallel, so requests in flight add little to the next one's latency;
    /// counting each as a whole latency (tower's `(pending + 1) × rtt`) sent calls to an idle
    /// provider ten times slower (measured with `bench slow`).
    pub fn cost(&self, weight: u32, neutral: Option<Duration>) -> u64 {
        let neutral = neutral.map(|d| d.as_nanos() as u64);
        self.cost_at(self.now_us(), weight, neutral)
    }

    fn cost_at(&self, now: u64, weight: u32, neutral: Option<u64>) -> u64 {
        let estimate = self.estimate_at(now);
        if self.in_flight() > 0 && !self.confirmed_at(now) {
            // Its probe is out: nothing more until it answers.
            return u64::MAX;
        }
        let latency = estimate
            .or(neutral)
            .unwrap_or(0)
            .max(self.stalled_at(now).saturating_mul(1_000))
            .max(1_000);
        let weight = if weight == 0 {
            super::endpoint::DEFAULT_WEIGHT
        } else {
            weight
        };
        // In hundredths of a latency: ten per request in flight, per 100 of weight.
        let in_flight = u64::from(self.in_flight()) * 1_000 / u64::from(weight);
        latency.saturating_mul(100 + in_flight) / 100
    }

    /// Whether `b` (of picking weight `b_weight`) is clearly cheaper than `a`: costs less by
    /// more than [`CLEARLY_CHEAPER`]. Each is unmeasured at the other's estimate (see
    /// [`Load::cost`]).
    pub(crate) fn clearly_cheaper(a: &Load, a_weight: u32, b: &Load, b_weight: u32) -> bool {
        let (a_now, b_now) = (a.now_us(), b.now_us());
        let (a_latency, b_latency) = (a.estimate_at(a_now), b.estimate_at(b_now));
        let a_cost = a.cost_at(a_now, a_weight, b_latency);
        let b_cost = b.cost_at(b_now, b_weight, a_latency);
        (b_cost as f64) * CLEARLY_CHEAPER < a_cost as f64
    }

    /// Starts counting one request; the count ends when the returned guard is finished or
    /// dropped (a caller that gives up on a call drops it mid-flight: the count must not leak).
    pub(crate) fn start(&self) -> InFlight<'_> {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            // Nothing was waiting: the wait starts now.
            self.progress_us.store(self.now_us(), Ordering::Relaxed);
        }
        InFlight {
            load: self,
            done: false,
        }
    }

    /// Ends a request that was answered after `latency` (`None`: it failed or was dropped; the
    /// latency says nothing).
    fn finish(&self, latency: Option<Duration>) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if let Some(latency) = latency {
            self.sample(self.now_us(), latency);
        }
    }

    /// Feeds the estimate an answer's latency at `now`.
    fn sample(&self, now: u64, latency: Duration) {
        self.progress_us.store(now, Ordering::Relaxed);
        let sample = latency.as_nanos().min(u128::from(u64::MAX)) as u64;
        let next = match self.estimate_at(now) {
            // A peak is taken at once.
            Some(estimate) if estimate < sample => sample,
            // Below: the decayed estimate (what is left of the last one) plus the sample for
            // the weight that decayed, so a sample weighs by the time since the last one.
            Some(estimate) => {
                let since = now.saturating_sub(self.sampled_us.load(Ordering::Relaxed));
                estimate + (sample as f64 * (1.0 - remaining(since))) as u64
            }
            None => sample,
        };
        self.estimate_ns.store(next.max(1), Ordering::Relaxed);
        self.sampled_us.store(now, Ordering::Relaxed);
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
        let latency = load.latency().expect("measured");
        assert!(latency <= Duration::from_millis(3), "{latency:?}");
        assert!(latency > Duration::from_millis(2), "{latency:?}");
    }

    /// A load whose estimate is `estimate`, sampled now.
    fn load_sampled(estimate: Duration) -> Load {
        let load = Load::default();
        load.estimate_ns
            .store(estimate.as_nanos() as u64, Ordering::Relaxed);
        load.sampled_us.store(load.now_us(), Ordering::Relaxed);
        load
    }

    /// On tokio's paused clock: the estimate halves every half-life without samples and is
    /// forgotten after `FORGET_AFTER`.
    #[tokio::test(start_paused = true)]
    async fn the_estimate_halves_every_half_life_and_is_forgotten() {
        let load = Load::default();
        load.start().finish(Some(Duration::from_millis(400)));
        assert_eq!(load.latency(), Some(Duration::from_millis(400)));
        tokio::time::advance(2 * HALF_LIFE).await;
        assert_eq!(
            load.latency(),
            Some(Duration::from_millis(100)),
            "a quarter"
        );
        tokio::time::advance(FORGET_AFTER - 2 * HALF_LIFE - Duration::from_micros(2)).await;
        assert!(load.latency().is_some());
        tokio::time::advance(Duration::from_micros(2)).await;
        assert_eq!(load.latency(), None, "unmeasured again");
    }

    /// On tokio's paused clock: a peak measured before a pause is replaced by the first fresh
    /// answer; a lower sample right after a peak weighs next to nothing.
    #[tokio::test(start_paused = true)]
    async fn a_fresh_sample_after_a_stale_peak_replaces_it() {
        let load = Load::default();
        load.start().finish(Some(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(600)).await;
        load.start().finish(Some(Duration::from_millis(1)));
        let latency = load.latency().expect("measured");
        assert!(latency < Duration::from_millis(10), "{latency:?}");
        load.start().finish(Some(Duration::from_millis(40)));
        tokio::time::advance(Duration::from_micros(1)).await;
        load.start().finish(Some(Duration::from_millis(1)));
        let latency = load.latency().expect("measured");
        assert!(latency >= Duration::from_millis(39), "{latency:?}");
    }

    #[test]
    fn unmeasured_costs_the_neutral_latency_and_a_stall_counts() {
        let load = Load::default();
        let neutral = Some(Duration::from_millis(2));
        assert_eq!(load.cost(100, neutral), 2_000_000);
        let pending = load.start();
        // Unmeasured, its first request is its probe: nothing more until it answers.
        assert_eq!(load.cost(100, neutral), u64::MAX);
        let now = load.progress_us.load(Ordering::Relaxed);
        load.sampled_us.store(now, Ordering::Relaxed);
        load.estimate_ns.store(2_000_000, Ordering::Relaxed);
        // One in flight at weight 100: a tenth more; at weight 300 a thirtieth.
        assert_eq!(load.cost_at(now, 100, Some(2_000_000)), 2_200_000);
        assert_eq!(load.cost_at(now, 300, Some(2_000_000)), 2_060_000);
        // A request waiting without an answer is a lower bound on the latency...
        let later = now + 8_000;
        assert_eq!(load.stalled_at(later), 8_000);
        assert_eq!(load.cost_at(later, 100, Some(2_000_000)), 8_800_000);
        // ...and with no answer for twice the latency (at least 10 ms), the one in flight is a
        // probe: the estimate is a guess now.
        assert_eq!(load.cost_at(now + 11_000, 100, None), u64::MAX);
        load.estimate_ns.store(20_000_000, Ordering::Relaxed);
        assert!(load.cost_at(now + 39_000, 100, None) < u64::MAX);
        assert_eq!(load.cost_at(now + 41_000, 100, None), u64::MAX);
        drop(pending);
        assert_eq!(load.stalled(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn equally_loaded_endpoints_are_equivalent_and_a_slow_one_is_not() {
        let fast = load_sampled(Duration::from_millis(2));
        let alike = load_sampled(Duration::from_micros(2_500));
        let slow = load_sampled(Duration::from_millis(20));
        assert!(!Load::clearly_cheaper(&fast, 100, &alike, 100));
        assert!(!Load::clearly_cheaper(&alike, 100, &fast, 100));
        assert!(Load::clearly_cheaper(&slow, 100, &fast, 100));
        assert!(!Load::clearly_cheaper(&fast, 100, &slow, 100));
        // Unmeasured: as expensive as the other, so neither wins on latency...
        let new = Load::default();
        assert!(!Load::clearly_cheaper(&new, 100, &slow, 100));
        assert!(!Load::clearly_cheaper(&slow, 100, &new, 100));
        // ...until it has its probe out.
        let _probe = new.start();
        assert!(Load::clearly_cheaper(&new, 100, &slow, 100));
    }
}
