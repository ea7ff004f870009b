//! Whether a failed attempt is tried again, and where the retries come from: one decision shared
//! by every caller (the balanced channel, `Consumer::call`, the master client).
//!
//! - Never sent ([`Failure::NotSent`]): always tried again elsewhere, outside any budget; the
//!   number of such attempts is bounded by the endpoints there are (each is tried once).
//! - Maybe processed ([`Failure::MaybeSent`]): tried again only with an idempotent policy, at
//!   most `max_attempts` such attempts per call, and only while the [`RetryBudget`] allows, so
//!   a dying fleet does not see its load multiplied.
//! - An application's answer ([`Failure::Application`]): never tried again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::failure::Failure;

/// Retry policy of one call: [`CallPolicy::DEFAULT`] retries only what was never sent,
/// [`CallPolicy::IDEMPOTENT`] also what may have been processed.
///
/// ```
/// use std::time::Duration;
/// use zoorpc_consumer::CallPolicy;
/// assert!(!CallPolicy::default().idempotent);
/// let policy = CallPolicy::IDEMPOTENT.with_attempt_timeout(Duration::from_millis(300));
/// assert!(policy.idempotent);
/// assert_eq!(policy.max_attempts, 5);
/// assert_eq!(policy.attempt_timeout, Duration::from_millis(300));
/// assert!(policy.attempt_timeout_fixed, "set: it bounds attempts within a deadline too");
/// assert!(policy.retryable.contains(tonic::Code::Unavailable));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CallPolicy {
    /// Safe to repeat if the connection broke mid-call (or an attempt timed out), or if the
    /// provider answered a [`retryable`](CallPolicy::retryable) code.
    pub idempotent: bool,
    /// Most attempts that may have reached a provider (each endpoint is tried at most once).
    /// Attempts that were never sent (connection refused, no HTTP/2 greeting, stream refused by a
    /// draining server) do not count: they are bounded by the live list only, so a call fails
    /// for want of a reachable provider only after every endpoint refused it.
    pub max_attempts: usize,
    /// Longest wait for one attempt's response headers (5 s by default). A provider that does
    /// not answer in time (paused, overloaded, cut off) is ejected like one that refused the
    /// connection; the call is retried elsewhere only if idempotent. When the caller sets a
    /// deadline, this default gives way to it (an attempt may use all the time the deadline
    /// leaves) unless it was set ([`CallPolicy::attempt_timeout_fixed`]).
    pub attempt_timeout: Duration,
    /// Whether [`CallPolicy::attempt_timeout`] also bounds each attempt of a call with a
    /// deadline, as a per-attempt limit (Envoy's `per_try_timeout`): set by
    /// [`CallPolicy::with_attempt_timeout`]. `false` (the defaults): a caller's deadline
    /// replaces it.
    pub attempt_timeout_fixed: bool,
    /// The codes that, answered by a provider, an idempotent call retries on another one
    /// (gRFC A6's `retryableStatusCodes`); default `UNAVAILABLE`. A standby's refusal is
    /// retried whatever this says (it was never processed); a failed connection is governed by
    /// [`CallPolicy::idempotent`] alone.
    pub retryable: RetryableCodes,
    /// The pause before each retry of an attempt that may have been processed (gRFC A6's
    /// exponential backoff with jitter). Never-sent attempts go elsewhere at once.
    pub backoff: Backoff,
}

impl CallPolicy {
    /// Retries only calls that were never sent (on every endpoint if need be); attempts of at
    /// most 5 s without a caller's deadline.
    pub const DEFAULT: CallPolicy = CallPolicy {
        idempotent: false,
        max_attempts: 3,
        attempt_timeout: Duration::from_secs(5),
        attempt_timeout_fixed: false,
        retryable: RetryableCodes::UNAVAILABLE,
        backoff: Backoff::DEFAULT,
    };

    /// Also retries calls that may have been processed, up to 5 such attempts (gRPC's limit for
    /// a retry policy) of at most 5 s without a caller's deadline; never-sent attempts do not
    /// count, and the retry budget bounds what retries add to a fleet's load. Five, not three:
    /// providers killed together reset every connection a call was on (seen: three resets in a
    /// row when four of five were SIGKILLed at once).
    pub const IDEMPOTENT: CallPolicy = CallPolicy {
        idempotent: true,
        max_attempts: 5,
        ..CallPolicy::DEFAULT
    };

    /// This policy with a per-attempt timeout that holds whatever the caller's deadline (a
    /// method slower than 5 s called without a deadline needs a longer one; a short one makes
    /// retries fit in a deadline).
    pub const fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self.attempt_timeout_fixed = true;
        self
    }

    /// This policy with another wait for calls without a deadline; a caller's deadline still
    /// replaces it.
    pub const fn with_default_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self.attempt_timeout_fixed = false;
        self
    }

    /// This policy retrying answers with these codes (when idempotent).
    ///
    /// ```
    /// use tonic::Code;
    /// use zoorpc_consumer::{CallPolicy, RetryableCodes};
    /// let policy = CallPolicy::IDEMPOTENT
    ///     .with_retryable(RetryableCodes::of(&[Code::Unavailable, Code::ResourceExhausted]));
    /// assert!(policy.retryable.contains(Code::ResourceExhausted));
    /// assert!(!policy.retryable.contains(Code::Internal));
    /// ```
    pub const fn with_retryable(mut self, codes: RetryableCodes) -> Self {
        self.retryable = codes;
        self
    }

    /// This policy with another backoff between retries.
    pub const fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy::DEFAULT
    }
}

/// A set of gRPC status codes (a retry policy's retryable ones).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RetryableCodes(u32);

impl RetryableCodes {
    /// No code: answers are never retried.
    pub const NONE: RetryableCodes = RetryableCodes(0);
    /// `UNAVAILABLE` only (the default, as gRFC A6's example).
    pub const UNAVAILABLE: RetryableCodes = RetryableCodes::of(&[tonic::Code::Unavailable]);

    /// The set of `codes`.
    pub const fn of(codes: &[tonic::Code]) -> RetryableCodes {
        let mut bits = 0;
        let mut i = 0;
        while i < codes.len() {
            bits |= 1 << (codes[i] as u32);
            i += 1;
        }
        RetryableCodes(bits)
    }

    /// Whether `code` is in the set.
    pub const fn contains(self, code: tonic::Code) -> bool {
        self.0 & (1 << (code as u32)) != 0
    }
}

impl std::fmt::Debug for RetryableCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let codes = (0..=16)
            .map(tonic::Code::from_i32)
            .filter(|code| self.contains(*code));
        f.debug_set().entries(codes).finish()
    }
}

/// gRFC A6's exponential backoff: the `n`-th retry of a maybe-processed attempt waits a random
/// time in `[0, min(initial * multiplier^(n-1), max)]` (full jitter, so retries of calls that
/// failed together spread out), within the caller's deadline.
///
/// ```
/// use std::time::Duration;
/// use zoorpc_consumer::balance::Backoff;
/// let backoff = Backoff::DEFAULT;
/// assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(3), Duration::from_millis(400));
/// assert_eq!(backoff.ceiling(10), Duration::from_secs(1));
/// assert!(backoff.pause(2) <= Duration::from_millis(200));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The ceiling of the first retry's pause. Default 100 ms.
    pub initial: Duration,
    /// The largest ceiling. Default 1 s.
    pub max: Duration,
    /// How much the ceiling grows with each retry. Default 2.
    pub multiplier: f64,
}

impl Backoff {
    /// gRFC A6's example: 100 ms, doubling, at most 1 s.
    pub const DEFAULT: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        multiplier: 2.0,
    };

    /// No pause between retries.
    pub const NONE: Backoff = Backoff {
        initial: Duration::ZERO,
        max: Duration::ZERO,
        multiplier: 1.0,
    };

    /// The longest pause before the `retry`-th retry (from 1).
    pub fn ceiling(&self, retry: usize) -> Duration {
        let exponent = retry.saturating_sub(1).min(64) as i32;
        let grown = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let max = self.max.as_secs_f64();
        if grown.is_finite() && grown < max {
            Duration::from_secs_f64(grown.max(0.0))
        } else {
            self.max
        }
    }

    /// The pause before the `retry`-th retry: random, up to [`Backoff::ceiling`].
    pub fn pause(&self, retry: usize) -> Duration {
        let ceiling = self.ceiling(retry);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        ceiling.mul_f64(rand::random::<f64>())
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Try another endpoint.
    Retry,
    /// Give up: the failure stands.
    Stop,
    /// Give up because the retry budget is spent.
    BudgetSpent,
}

/// Decides after an attempt failed with `failure`, when `maybe_sent` attempts of this call (this
/// one included) may have reached a provider. Only a maybe-sent retry takes from `budget`.
///
/// ```
/// use std::time::Duration;
/// use zoorpc_consumer::balance::{CallPolicy, Decision, Failure, RetryBudget, decide};
/// // A budget of no retries beyond 0 % of the requests: maybe-sent retries are refused.
/// let budget = RetryBudget::new(0, 0, Duration::from_secs(10));
/// let idempotent = CallPolicy::IDEMPOTENT;
/// assert_eq!(decide(Failure::NotSent, &CallPolicy::DEFAULT, 0, &budget), Decision::Retry);
/// assert_eq!(decide(Failure::Application, &idempotent, 1, &budget), Decision::Stop);
/// assert_eq!(decide(Failure::MaybeSent, &CallPolicy::DEFAULT, 1, &budget), Decision::Stop);
/// assert_eq!(decide(Failure::MaybeSent, &idempotent, 1, &budget), Decision::BudgetSpent);
/// let generous = RetryBudget::default();
/// assert_eq!(decide(Failure::MaybeSent, &idempotent, 1, &generous), Decision::Retry);
/// assert_eq!(decide(Failure::MaybeSent, &idempotent, 5, &generous), Decision::Stop);
/// ```
pub fn decide(
    failure: Failure,
    policy: &CallPolicy,
    maybe_sent: usize,
    budget: &RetryBudget,
) -> Decision {
    match failure {
        Failure::NotSent => Decision::Retry,
        Failure::Application => Decision::Stop,
        Failure::MaybeSent if !policy.idempotent || maybe_sent >= policy.max_attempts.max(1) => {
            Decision::Stop
        }
        Failure::MaybeSent if budget.try_withdraw() => Decision::Retry,
        Failure::MaybeSent => Decision::BudgetSpent,
    }
}

/// Finagle's retry budget: retries may add at most `percent` of the requests, plus
/// `min_per_second` (so a quiet client can still retry), counted over the last `ttl`.
/// Thread-safe; one budget is shared by every channel of a consumer.
///
/// ```
/// use std::time::Duration;
/// use zoorpc_consumer::RetryBudget;
/// // 50 % of the requests, no minimum: 4 requests allow 2 retries.
/// let budget = RetryBudget::new(50, 0, Duration::from_secs(10));
/// assert!(!budget.try_withdraw());
/// for _ in 0..4 {
///     budget.deposit();
/// }
/// assert!(budget.try_withdraw());
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw());
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    percent: u32,
    min_per_second: u32,
    ttl: Duration,
    /// Seconds are counted from here.
    start: Instant,
    /// Requests, [`SHARDS`] rows of one slot per second of the window: the second in the high
    /// 32 bits, its count in the low 32 ([`EMPTY`] before first use). Every call deposits, so
    /// this takes no lock (one lock shared by all callers was a point where the threads of a
    /// busy consumer queued), and each thread counts in its own row, every slot on its own cache
    /// line, so the cores do not pass one counter back and forth on every call.
    requests: Box<[Slot]>,
    /// Retries, one slot per second of the window: (second, retries). Only retries lock it.
    retries: Mutex<Vec<(u64, u64)>>,
}

/// Rows of request counters (threads are spread over them).
const SHARDS: usize = 8;

/// One request counter, alone on its cache line.
#[derive(Debug)]
#[repr(align(64))]
struct Slot(AtomicU64);

/// The row of request counters the calling thread deposits in.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// A request slot never used.
const EMPTY: u64 = u64::MAX;
/// The largest second a slot can name (32 bits; `u32::MAX` is [`EMPTY`]'s).
const LAST_SECOND: u64 = u32::MAX as u64 - 1;
const COUNT_MASK: u64 = u32::MAX as u64;

impl Default for RetryBudget {
    /// 20 % of requests plus 10 retries a second, over 10 s (Finagle's defaults).
    fn default() -> Self {
        RetryBudget::new(20, 10, Duration::from_secs(10))
    }
}

impl RetryBudget {
    /// A budget of `percent` % of the requests plus `min_per_second`, counted over `ttl`
    /// (rounded to whole seconds, at least one).
    pub fn new(percent: u32, min_per_second: u32, ttl: Duration) -> Self {
        let seconds = ttl.as_secs().clamp(1, 3600) as usize;
        RetryBudget {
            percent,
            min_per_second,
            ttl: Duration::from_secs(seconds as u64),
            start: Instant::now(),
            requests: (0..seconds * SHARDS)
                .map(|_| Slot(AtomicU64::new(EMPTY)))
                .collect(),
            retries: Mutex::new(vec![(u64::MAX, 0); seconds]),
        }
    }

    /// The current second of the window's clock.
    fn second(&self) -> u64 {
        self.start.elapsed().as_secs().min(LAST_SECOND)
    }

    /// Counts one request (each call's first attempt).
    pub fn deposit(&self) {
        let second = self.second();
        let seconds = self.requests.len() / SHARDS;
        let slot = &self.requests[shard() * seconds + (second % seconds as u64) as usize].0;
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let next = if current != EMPTY && current >> 32 == second {
                if current & COUNT_MASK == COUNT_MASK {
                    return;
                }
                current + 1
            } else {
                (second << 32) | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes one retry from the budget if there is one left.
    pub fn try_withdraw(&self) -> bool {
        let mut retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.second();
        let horizon = now.saturating_sub(self.ttl.as_secs() - 1);
        let in_window = |second: u64| second >= horizon && second <= now;
        let requests: u64 = self
            .requests
            .iter()
            .map(|slot| slot.0.load(Ordering::Relaxed))
            .filter(|&slot| slot != EMPTY && in_window(slot >> 32))
            .map(|slot| slot & COUNT_MASK)
            .sum();
        let retried: u64 = retries
            .iter()
            .filter(|s| s.0 != u64::MAX && in_window(s.0))
            .map(|s| s.1)
            .sum();
        let allowed = requests * u64::from(self.percent) / 100
            + u64::from(self.min_per_second) * self.ttl.as_secs();
        if retried >= allowed {
            return false;
        }
        let len = retries.len() as u64;
        let slot = &mut retries[(now % len) as usize];
        if slot.0 != now {
            *slot = (now, 0);
        }
        slot.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_a_share_of_requests_plus_a_floor() {
        let budget = RetryBudget::new(20, 0, Duration::from_secs(10));
        assert!(!budget.try_withdraw(), "no requests, no floor: nothing");
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 20);
        let floor = RetryBudget::new(0, 10, Duration::from_secs(1));
        assert_eq!((0..100).filter(|_| floor.try_withdraw()).count(), 10);
    }

    #[test]
    fn deposits_from_many_threads_all_count() {
        let budget = RetryBudget::new(100, 0, Duration::from_secs(60));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..1000).for_each(|_| budget.deposit()));
            }
        });
        let granted = (0..5000).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 4000, "100 % of 4,000 requests");
    }

    #[test]
    fn decisions() {
        let budget = RetryBudget::default();
        let default = CallPolicy::DEFAULT;
        let idempotent = CallPolicy::IDEMPOTENT;
        assert_eq!(
            decide(Failure::NotSent, &default, 0, &budget),
            Decision::Retry
        );
        assert_eq!(
            decide(Failure::MaybeSent, &default, 1, &budget),
            Decision::Stop
        );
        assert_eq!(
            decide(Failure::MaybeSent, &idempotent, 1, &budget),
            Decision::Retry
        );
        assert_eq!(
            decide(Failure::MaybeSent, &idempotent, 5, &budget),
            Decision::Stop
        );
        assert_eq!(
            decide(Failure::Application, &idempotent, 1, &budget),
            Decision::Stop
        );
        let spent = RetryBudget::new(0, 0, Duration::from_secs(1));
        assert_eq!(
            decide(Failure::MaybeSent, &idempotent, 1, &spent),
            Decision::BudgetSpent
        );
    }
}
