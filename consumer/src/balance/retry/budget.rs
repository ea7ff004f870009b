//! Finagle's retry budget: what retries may add to a fleet's load. Its window runs on tokio's
//! clock (`tokio::time::Instant`, as tower's own budget), so a paused clock controls it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

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

    /// On tokio's paused clock: requests and retries count for `ttl`, then fall out of the
    /// window; the floor is per second of the window.
    #[tokio::test(start_paused = true)]
    async fn requests_and_retries_leave_the_window_after_its_ttl() {
        let budget = RetryBudget::new(50, 0, Duration::from_secs(10));
        for _ in 0..10 {
            budget.deposit();
        }
        tokio::time::advance(Duration::from_secs(9)).await;
        // Half of the 10 requests, still in the window: four taken, one left...
        assert!((0..4).all(|_| budget.try_withdraw()));
        tokio::time::advance(Duration::from_secs(1)).await;
        // ...until the requests leave the window.
        assert!(!budget.try_withdraw(), "the requests left the window");
        tokio::time::advance(Duration::from_secs(9)).await;
        budget.deposit();
        budget.deposit();
        assert!(budget.try_withdraw(), "the old retries left it too");
        assert!(!budget.try_withdraw());
    }
}
