//! Outlier ejection, as Envoy's outlier detection does it: an endpoint that fails is *ejected*
//! (skipped by picking) for a time that doubles with each consecutive ejection; never more than
//! [`EjectionPolicy::max_ejection_percent`] of the endpoints are ejected at once (at least one
//! may always be); when its time is up the endpoint is on *probation*: exactly one request (the
//! probe) goes to it, and only its success brings the endpoint back for everyone (its failure
//! ejects it again, for twice as long).
//!
//! Guarantees:
//! - **What ejects.** A connection-level failure ejects at once: the connection refused or
//!   broken, no HTTP/2 greeting, no response headers within the attempt's limit, a standby's
//!   refusal. An answer never does on its own: `UNAVAILABLE` answered by a provider's
//!   application ejects only as the [`EjectionPolicy::consecutive_unavailable`]-th such answer
//!   in a row (5 by default, Envoy's `consecutive_5xx`); any other answer (`OK` or an
//!   application's error) resets that count, and no other code ever ejects.
//! - **One outage, one ejection.** Failures while the endpoint is ejected, and failures of
//!   attempts that started before its latest ejection began (the calls that were in flight when
//!   it stalled), neither extend the ejection nor count as another: they report the outage that
//!   ejection already judged. Concurrent failures of one outage eject once.
//! - **Backoff.** A connection failure's ejection doubles with each *consecutive ejection* (1 s,
//!   2 s, 4 s ... 30 s by default): the next one is the probe's failure (or any failure of an
//!   attempt made on probation). An ejection for `UNAVAILABLE` answers lasts
//!   [`EjectionPolicy::base`] every time (the provider answers: its connection is fine), so a
//!   provider is back within `base` of the end of its dependency's outage. A success (any other
//!   answer) ends the ejection and starts the counts over.
//!
//! The state is a few atomics per endpoint: reading it on the call path takes no lock. Time is
//! tokio's clock (`tokio::time::Instant`, as tower's retry budget and load estimates read it),
//! so a test with a paused clock controls every rule above; nothing here is a safety rule.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::failure::Failure;

/// When and for how long endpoints are ejected: [`EjectionPolicy::DEFAULT`] and the `with_`
/// methods. `#[non_exhaustive]`: a setting added later breaks no one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// How many `UNAVAILABLE` answers in a row (answered by the provider, not a connection
    /// failure) eject it, for `base`, not doubling. Default 5, as Envoy's `consecutive_5xx`;
    /// 0: answers never eject.
    pub consecutive_unavailable: u32,
}

impl Default for EjectionPolicy {
    fn default() -> Self {
        EjectionPolicy::DEFAULT
    }
}

impl EjectionPolicy {
    /// 1 s doubling to 30 s, at most half of the endpoints, probes abandoned after 10 s, five
    /// `UNAVAILABLE` answers in a row.
    pub const DEFAULT: EjectionPolicy = EjectionPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(30),
        max_ejection_percent: 50,
        probe_timeout: Duration::from_secs(10),
        consecutive_unavailable: 5,
    };

    /// This policy with another first ejection length (each consecutive one doubles it).
    pub const fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// This policy with another longest ejection.
    pub const fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// This policy ejecting at most `percent` of the endpoints at once (at least one).
    pub const fn with_max_ejection_percent(mut self, percent: u8) -> Self {
        self.max_ejection_percent = percent;
        self
    }

    /// This policy abandoning a probe that has not reported after `timeout`.
    pub const fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// This policy ejecting after `answers` `UNAVAILABLE` answers in a row (0: never).
    pub const fn with_consecutive_unavailable(mut self, answers: u32) -> Self {
        self.consecutive_unavailable = answers;
        self
    }

    /// How many of `len` endpoints may be ejected at once: the policy's share, at least one.
    ///
    /// ```
    /// use zoorpc_consumer::EjectionPolicy;
    /// let policy = EjectionPolicy::default();
    /// assert_eq!((policy.max_ejected(1), policy.max_ejected(5), policy.max_ejected(10)), (1, 2, 5));
    /// let strict = policy.with_max_ejection_percent(10);
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

/// What ended an attempt badly, as ejection weighs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strike {
    /// A connection-level failure (or a standby's refusal): ejects at once.
    Connection,
    /// `UNAVAILABLE` answered by the provider: ejects only as the policy's
    /// `consecutive_unavailable`-th in a row.
    Unavailable,
}

impl Strike {
    /// The strike of a failed attempt: `answered` when the provider answered (an error status
    /// in response headers). An answer that says the request was never processed (a standby's
    /// refusal) is a connection-level verdict; any other answer is the provider's word.
    pub(crate) fn of(failure: Failure, answered: bool) -> Strike {
        if answered && failure != Failure::NotSent {
            Strike::Unavailable
        } else {
            Strike::Connection
        }
    }
}

/// What an attempt saw of its endpoint's health when it started (see [`Health::started`]): its
/// failure counts only if no ejection began since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttemptStart {
    /// `Health::begun` when the attempt started.
    begun: u32,
}

/// One endpoint's ejection state.
#[derive(Debug)]
pub(crate) struct Health {
    /// The instant the milliseconds below count from (the endpoint's creation).
    epoch: Instant,
    /// Ejected until this instant (`now_ms`); 0 when never ejected.
    ejected_until_ms: AtomicU64,
    /// Consecutive ejections without a success since: sets the next ejection's length, and a
    /// non-zero value after the ejection ended means "on probation".
    ejections: AtomicU32,
    /// Ejections ever begun (only grows, wrapping): an attempt notes it when it starts, and its
    /// failure is already judged if another ejection began since. Also what makes concurrent
    /// failures eject once: the one that moves it on ejects.
    begun: AtomicU32,
    /// `UNAVAILABLE` answers in a row since the last other answer or ejection.
    unavailable_in_a_row: AtomicU32,
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

impl Default for Health {
    fn default() -> Self {
        Health {
            epoch: Instant::now(),
            ejected_until_ms: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            begun: AtomicU32::new(0),
            unavailable_in_a_row: AtomicU32::new(0),
            probe_started_ms: AtomicU64::new(0),
        }
    }
}

impl Health {
    /// Milliseconds since `epoch`, never 0 (0 means "not set").
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    pub(crate) fn availability(&self, policy: &EjectionPolicy) -> Availability {
        if self.ejections.load(Ordering::Relaxed) == 0 {
            return Availability::Open;
        }
        let now = self.now_ms();
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
        self.ejected_until_ms.load(Ordering::Relaxed) > self.now_ms()
    }

    /// When the ejection ends (`None`: never ejected), for failing open to the endpoint back
    /// soonest.
    pub(crate) fn ejected_until(&self) -> Option<Instant> {
        match self.ejected_until_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms)),
        }
    }

    /// Noted by an attempt as it starts, given back with its failure ([`Health::record_failure`]).
    pub(crate) fn started(&self) -> AttemptStart {
        AttemptStart {
            begun: self.begun.load(Ordering::Acquire),
        }
    }

    /// Claims the probe of an endpoint on probation; `false` if another request has it.
    pub(crate) fn claim_probe(&self, policy: &EjectionPolicy) -> bool {
        let current = self.probe_started_ms.load(Ordering::Relaxed);
        let now = self.now_ms();
        if current != 0 && now.saturating_sub(current) < policy.probe_timeout.as_millis() as u64 {
            return false;
        }
        self.probe_started_ms
            .compare_exchange(current, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// An answer (other than `UNAVAILABLE`): the endpoint is healthy again. Writes nothing when
    /// there is nothing to clear (the common case, on every call).
    pub(crate) fn record_success(&self) {
        if self.ejections.load(Ordering::Relaxed) != 0 {
            self.ejections.store(0, Ordering::Relaxed);
            self.ejected_until_ms.store(0, Ordering::Relaxed);
        }
        if self.unavailable_in_a_row.load(Ordering::Relaxed) != 0 {
            self.unavailable_in_a_row.store(0, Ordering::Relaxed);
        }
        if self.probe_started_ms.load(Ordering::Relaxed) != 0 {
            self.probe_started_ms.store(0, Ordering::Relaxed);
        }
    }

    /// A failure of an attempt that started at `started`: ejects for the next backoff when it
    /// is news (the endpoint is not ejected and no ejection began since the attempt started),
    /// the strike is enough (see [`Strike`]) and `may_eject` (the cap allows it). Returns the
    /// ejection's length when this failure began one.
    pub(crate) fn record_failure(
        &self,
        policy: &EjectionPolicy,
        may_eject: bool,
        started: AttemptStart,
        strike: Strike,
    ) -> Option<Duration> {
        if self.is_ejected() || self.begun.load(Ordering::Acquire) != started.begun {
            return None;
        }
        // On probation any fresh failure is the probe's verdict; before, an answer needs company.
        if strike == Strike::Unavailable && self.ejections.load(Ordering::Relaxed) == 0 {
            let in_a_row = self
                .unavailable_in_a_row
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            if policy.consecutive_unavailable == 0 || in_a_row < policy.consecutive_unavailable {
                return None;
            }
        }
        self.probe_started_ms.store(0, Ordering::Relaxed);
        if !may_eject {
            return None;
        }
        // Of concurrent failures of one outage, the one that moves `begun` on ejects.
        if self
            .begun
            .compare_exchange(
                started.begun,
                started.begun.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return None;
        }
        self.unavailable_in_a_row.store(0, Ordering::Relaxed);
        let ejections = self
            .ejections
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        // An endpoint that answers has a working connection: its answers' ejection stays short,
        // so it is back within `base` of its dependency's recovery.
        let backoff = match strike {
            Strike::Connection => policy.backoff(ejections),
            Strike::Unavailable => policy.base.min(policy.max),
        };
        self.ejected_until_ms.store(
            self.now_ms() + backoff.as_millis() as u64,
            Ordering::Relaxed,
        );
        Some(backoff)
    }
}

#[cfg(test)]
mod tests;
