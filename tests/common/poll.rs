//! Waiting for a state nothing announces (a counter, a scraped metric, a file a background task
//! writes, a program's output, a process's exit): look again every [`POLL`] until it holds or
//! the time is up. Where there is an event (a ZooKeeper watch, a watch channel, a process's
//! line), wait on the event instead.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// How often a state is looked at again.
pub const POLL: Duration = Duration::from_millis(20);

/// Looks at `check` every [`POLL`] until it returns `Ok`, at most `within`: that value, or the
/// last value `check` observed (its `Err`) when the time is up.
pub async fn poll_until<T, E, Fut>(within: Duration, mut check: impl FnMut() -> Fut) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `check` returns `Ok` (its value), at most `within`; then fails the test naming
/// `what` it waited for and the last value `check` observed (its `Err`).
pub async fn eventually<T, E: Debug, Fut>(
    what: &str,
    within: Duration,
    check: impl FnMut() -> Fut,
) -> T
where
    Fut: Future<Output = Result<T, E>>,
{
    match poll_until(within, check).await {
        Ok(value) => value,
        Err(last) => not_within(what, within, last),
    }
}

/// [`eventually`] with a `check` that blocks (runs a program, scrapes a page), for a test
/// without a runtime or a helper that may be called from one: it sleeps its thread between
/// looks.
pub fn eventually_blocking<T, E: Debug>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        let last = match check() {
            Ok(value) => return value,
            Err(last) => last,
        };
        if std::time::Instant::now() >= deadline {
            not_within(what, within, last);
        }
        std::thread::sleep(POLL);
    }
}

fn not_within(what: &str, within: Duration, last: impl Debug) -> ! {
    panic!("{what}: not within {within:?}; last seen: {last:?}")
}
