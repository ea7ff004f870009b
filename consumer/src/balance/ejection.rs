//! Outlier ejection, as Envoy does it for connection failures: an endpoint that failed is
//! *ejected* (skipped by picking) for a time that doubles with each consecutive ejection; never
//! more than [`EjectionPolicy::max_ejection_percent`] of the endpoints are ejected at once (at
//! least one may always be); when its time is up the endpoint is on *probation*: exactly one
//! request (the probe) goes to it, and only its success brings the endpoint back for everyone
//! (its failure ejects it again, for twice as long).
//!
//! The state is a few atomics per endpoint: reading it on the call path takes no lock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When and for how long endpoints are ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// The first ejection's length; each consecutive one doubles it. Default 1 s.
    pub base: Duration,
    /// The longest ejection. Default 30 s.
    pub max: Duration,
    /// At most this share of the endpoints is ejected at once (at least one may always be).
    /// Default 50.
    pub max_ejection_percent: u8,
    /// A probe that has not reported after this long is abandoned and another may start.
    /// Default 10 s.
    pub probe_timeout: Duration,
}

impl Default for EjectionPolicy {
    fn default() -> Self {
        EjectionPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            max_ejection_percent: 50,
            probe_timeout: Duration::from_secs(10),
        }
    }
}

impl EjectionPolicy {
    /// How many of `len` endpoints may be ejected at once: the policy's share, at least one.
    ///
    /// ```
    /// use zoorpc_consumer::EjectionPolicy;
    /// let policy = EjectionPolicy::default();
    /// assert_eq!((policy.max_ejected(1), policy.max_ejected(5), policy.max_ejected(10)), (1, 2, 5));
    /// let strict = EjectionPolicy { max_ejection_percent: 10, ..policy };
    /// assert_eq!(strict.max_ejected(5), 1);
    /// ```
    pub fn max_ejected(&self, len: usize) -> usize {
        (len * usize::from(self.max_ejection_percent.min(100)) / 100).max(1)
    }

    fn backoff(&self, ejections: u32) -> Duration {
        let factor = 2u32.saturating_pow(ejections.saturating_sub(1).min(16));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Milliseconds since the first use, never 0 (0 means "not set" below).
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// One endpoint's ejection state.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Ejected until this instant (`now_ms`); 0 when never ejected.
    ejected_until_ms: AtomicU64,
    /// Consecutive ejections without a success since: sets the next ejection's length, and a
    /// non-zero value after the ejection ended means "on probation".
    ejections: AtomicU32,
    /// When the probe in flight started (`now_ms`); 0 when none.
    probe_started_ms: AtomicU64,
}

/// What picking may do with an endpoint now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Availability {
    /// Healthy: any number of requests.
    Open,
    /// On probation with no probe in flight: one request may claim the probe.
    Probe,
    /// Ejected, or its probe is in flight.
    Closed,
}

impl Health {
    pub(crate) fn availability(&self, policy: &EjectionPolicy) -> Availability {
        if self.ejections.load(Ordering::Relaxed) == 0 {
            return Availability::Open;
        }
        let now = now_ms();
        if self.ejected_until_ms.load(Ordering::Relaxed) > now {
            return Availability::Closed;
        }
        let probe = self.probe_started_ms.load(Ordering::Relaxed);
        if probe != 0 && now.saturating_sub(probe) < policy.probe_timeout.as_millis() as u64 {
            Availability::Closed
        } else {
            Availability::Probe
        }
    }

    /// Whether picking skips this endpoint for its ejection (a probe in flight aside).
    pub(crate) fn is_ejected(&self) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms()
    }

    /// When the ejection ends (`now_ms`), for failing open to the endpoint back soonest.
    pub(crate) fn ejected_until_ms(&self) -> u64 {
        self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// Claims the probe of an endpoint on probation; `false` if another request has it.
    pub(crate) fn claim_probe(&self, policy: &EjectionPolicy) -> bool {
        let current = self.probe_started_ms.load(Ordering::Relaxed);
        let now = now_ms();
        if current != 0 && now.saturating_sub(current) < policy.probe_timeout.as_millis() as u64 {
            return false;
        }
        self.probe_started_ms
            .compare_exchange(current, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// A success: the endpoint is healthy again.
    pub(crate) fn record_success(&self) {
        if self.ejections.load(Ordering::Relaxed) != 0 {
            self.ejections.store(0, Ordering::Relaxed);
            self.ejected_until_ms.store(0, Ordering::Relaxed);
        }
        self.probe_started_ms.store(0, Ordering::Relaxed);
    }

    /// A connection failure: ejects for the next backoff if `may_eject` (the cap allows it).
    /// Returns the ejection's length, if any.
    pub(crate) fn record_failure(
        &self,
        policy: &EjectionPolicy,
        may_eject: bool,
    ) -> Option<Duration> {
        self.probe_started_ms.store(0, Ordering::Relaxed);
        if !may_eject && !self.is_ejected() {
            return None;
        }
        let ejections = self
            .ejections
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let backoff = policy.backoff(ejections);
        self.ejected_until_ms
            .store(now_ms() + backoff.as_millis() as u64, Ordering::Relaxed);
        Some(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_max_and_the_cap_allows_at_least_one() {
        let p = EjectionPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_secs(1));
        assert_eq!(p.backoff(2), Duration::from_secs(2));
        assert_eq!(p.backoff(6), Duration::from_secs(30));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(30));
        assert_eq!(p.max_ejected(1), 1);
        assert_eq!(p.max_ejected(5), 2);
        assert_eq!(p.max_ejected(10), 5);
    }

    #[test]
    fn one_probe_at_a_time_after_the_ejection_and_success_reopens() {
        let p = EjectionPolicy {
            base: Duration::from_millis(0),
            ..EjectionPolicy::default()
        };
        let h = Health::default();
        assert_eq!(h.availability(&p), Availability::Open);
        assert_eq!(h.record_failure(&p, true), Some(Duration::ZERO));
        assert_eq!(h.availability(&p), Availability::Probe);
        assert!(h.claim_probe(&p));
        assert!(!h.claim_probe(&p), "a second probe while one is in flight");
        assert_eq!(h.availability(&p), Availability::Closed);
        h.record_success();
        assert_eq!(h.availability(&p), Availability::Open);
    }

    #[test]
    fn a_failure_beyond_the_cap_does_not_eject() {
        let p = EjectionPolicy::default();
        let h = Health::default();
        assert_eq!(h.record_failure(&p, false), None);
        assert_eq!(h.availability(&p), Availability::Open);
    }
}
