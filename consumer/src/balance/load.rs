//! [`Load`]: what least-loaded picking reads of an endpoint (requests in flight, a latency EWMA),
//! kept by the balanced channel; `InFlight` counts one request until it ends or is dropped.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::ejection::now_ms;

/// What [`LeastLoaded`](super::LeastLoaded) reads of an endpoint: requests in flight and a latency EWMA, kept by the
/// balanced channel (until response headers, which for a unary call is its whole latency).
///
/// ```
/// use std::time::Duration;
/// use zoorpc_consumer::balance::Load;
/// let load = Load::default();
/// assert_eq!((load.in_flight(), load.latency()), (0, Duration::ZERO));
/// assert_eq!(load.cost(), 1); // never measured: the cheapest there is, so it is tried
/// ```
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
    /// An endpoint never measured, or not for `STALE_AFTER_MS`, costs the least latency there
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
