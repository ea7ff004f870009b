//! What one call may retry ([`CallPolicy`]): whether it is idempotent, how many attempts, how
//! long each waits, which answered codes are retried ([`RetryableCodes`]) and the pause before
//! each retry ([`Backoff`]).

use std::time::Duration;

/// Retry policy of one call: [`CallPolicy::DEFAULT`] retries only what was never sent,
/// [`CallPolicy::IDEMPOTENT`] also what may have been processed; the `with_` methods change one
/// setting. `#[non_exhaustive]`: a setting added later breaks no one.
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
#[non_exhaustive]
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
    /// gRPC's wait-for-ready: a call that finds no provider to try (none registered yet, or
    /// every one it tried refused it unseen) waits for a new one until the caller's deadline
    /// (without one, for [`CallPolicy::attempt_timeout`]: nothing waits without bound), then
    /// ends `DEADLINE_EXCEEDED` (`UNAVAILABLE` without a deadline). `false` (the default): it
    /// fails at once with `UNAVAILABLE` naming the base path.
    pub wait_for_ready: bool,
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
        wait_for_ready: false,
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

    /// This policy allowing `attempts` attempts that may have reached a provider (see
    /// [`CallPolicy::max_attempts`]).
    ///
    /// ```
    /// use zoorpc_consumer::CallPolicy;
    /// assert_eq!(CallPolicy::IDEMPOTENT.with_max_attempts(20).max_attempts, 20);
    /// ```
    pub const fn with_max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = attempts;
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

    /// This policy waiting for a provider when it finds none (see
    /// [`CallPolicy::wait_for_ready`]).
    ///
    /// ```
    /// use zoorpc_consumer::CallPolicy;
    /// assert!(!CallPolicy::DEFAULT.wait_for_ready);
    /// assert!(CallPolicy::DEFAULT.with_wait_for_ready().wait_for_ready);
    /// ```
    pub const fn with_wait_for_ready(mut self) -> Self {
        self.wait_for_ready = true;
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
/// use zoorpc_consumer::Backoff;
/// let backoff = Backoff::DEFAULT;
/// assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(3), Duration::from_millis(400));
/// assert_eq!(backoff.ceiling(10), Duration::from_secs(1));
/// assert!(backoff.pause(2) <= Duration::from_millis(200));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
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

    /// Pauses of at most `initial` before the first retry, doubling up to `max`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zoorpc_consumer::Backoff;
    /// let backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(400));
    /// assert_eq!(backoff.ceiling(2), Duration::from_millis(100));
    /// assert_eq!(backoff.with_multiplier(3.0).ceiling(2), Duration::from_millis(150));
    /// ```
    pub const fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            multiplier: 2.0,
        }
    }

    /// This backoff growing by `multiplier` with each retry (at least 1).
    pub const fn with_multiplier(mut self, multiplier: f64) -> Backoff {
        self.multiplier = multiplier;
        self
    }

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
