//! What a master admitted, and waiting for it before the node is released.
//!
//! A gate asks [`Mastership::admit`] per request: it counts the request in flight *before* it
//! reads the role and the lease (both `SeqCst`), and the count drops when the [`Admission`] is
//! dropped (the answer is complete, or was abandoned). A step-down that releases the node (a
//! hand-over, a resign) first publishes a role that is not master, then waits for the count to
//! reach zero, then releases. Either a gate's increment comes before the releaser's read of the
//! count (which then waits for that request), or the releaser's store of the role comes before
//! the gate's read of it (which then refuses): in `SeqCst`'s single order, no request is admitted
//! as master that the release does not wait for. Nothing in flight: the release does not wait
//! at all.
//!
//! Not for ever: a request still running one lease (3/5 of the session timeout) after the
//! step-down is left running and the node is released anyway, with a warning. That is the
//! bound a master that lost ZooKeeper instead would give: its admitted requests run on while
//! its lease ends and its session expires. Side effects that must not outlive mastership are
//! guarded with the [`Fence`](super::Fence).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::lease::Mastership;
use super::role::Shared;

/// The requests (and master-job runs) admitted as master and not finished yet.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    count: AtomicUsize,
    /// Notified when `count` drops to zero.
    drained: Notify,
}

/// One request (or job run) admitted as master: counted in flight until dropped. Keep it
/// until the answer is complete (for a stream: its last message); a master releasing its node
/// waits for it (see [`Mastership::admit`]).
#[derive(Debug)]
#[must_use = "the admission ends when dropped"]
pub struct Admission {
    shared: Arc<Shared>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let flight = &self.shared.in_flight;
        if flight.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            flight.drained.notify_waiters();
        }
    }
}

impl Mastership {
    /// Admits one request as master, or `None` if this contender is not master within its
    /// lease now (as [`Mastership::is_master`]). A master hands over or resigns only once every
    /// admission it gave is dropped (at most one lease after its step-down): hold it until the
    /// request's answer is complete.
    pub fn admit(&self) -> Option<Admission> {
        // Counted before the role is read: a step-down that stores its role after this sees
        // the count; one that stored it before is seen here.
        self.shared.in_flight.count.fetch_add(1, Ordering::SeqCst);
        let admission = Admission {
            shared: self.shared.clone(),
        };
        self.is_master().then_some(admission)
    }

    /// How many admissions are held now (requests admitted as master and not finished).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.count.load(Ordering::SeqCst)
    }
}

impl Shared {
    /// Waits until no admission is held, at most `bound`; returns how many are still held
    /// (0: drained). Call only after publishing a role that is not master, so nothing new is
    /// admitted meanwhile. Returns at once, without yielding, when nothing is in flight.
    pub(super) async fn drained(&self, bound: Duration) -> usize {
        let flight = &self.in_flight;
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = flight.drained.notified();
            tokio::pin!(notified);
            // Registered before the count is read: a drop to zero in between still wakes us.
            notified.as_mut().enable();
            let left = flight.count.load(Ordering::SeqCst);
            if left == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return flight.count.load(Ordering::SeqCst);
            }
        }
    }
}

/// Before releasing the node (a hand-over, a resign), with a role that is not master already
/// published: waits for the admissions held, at most one lease (`lease`), saying so.
pub(super) async fn before_release(shared: &Shared, lease: Duration, path: &str) {
    let held = shared.in_flight.count.load(Ordering::SeqCst);
    if held == 0 {
        return;
    }
    tracing::info!(
        path,
        in_flight = held,
        "stepped down; waiting for the requests admitted as master to finish before releasing the master node"
    );
    let left = shared.drained(lease).await;
    if left > 0 {
        tracing::warn!(path, in_flight = left, waited = ?lease, "requests admitted as master are still running one lease after the step-down; releasing the master node anyway (their answers may overlap the next master's: guard side effects with the Fence)");
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::election::Role;

    fn poll<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn a_release_waits_for_every_admission_and_not_at_all_without_one() {
        let shared = Arc::new(Shared::new());
        let mastership = Mastership {
            shared: shared.clone(),
        };
        assert!(mastership.admit().is_none(), "admitted before master");
        assert_eq!(mastership.in_flight(), 0, "a refusal stays counted");
        shared.publish(Role::Master { epoch: 1 });
        shared
            .lease
            .extend(super::super::lease::now(), Duration::from_secs(60));
        let admission = mastership.admit().expect("admitted as master");
        shared.publish(Role::Standby {
            master: "127.0.0.1:1".into(),
        });
        assert!(mastership.admit().is_none(), "admitted after the step-down");
        assert_eq!(mastership.in_flight(), 1);
        let lease = Duration::from_secs(60);
        let mut release = std::pin::pin!(before_release(&shared, lease, "/p"));
        assert!(
            poll(release.as_mut()).is_pending(),
            "released with a request in flight"
        );
        drop(admission);
        tokio::time::timeout(Duration::from_secs(10), release)
            .await
            .expect("released once the admission was dropped");
        // Nothing in flight: ready at the first poll, no wait and no yield.
        let mut release = std::pin::pin!(before_release(&shared, lease, "/p"));
        assert!(poll(release.as_mut()).is_ready());
    }

    #[tokio::test]
    async fn a_request_that_never_ends_is_waited_for_one_lease_only() {
        let shared = Arc::new(Shared::new());
        let mastership = Mastership {
            shared: shared.clone(),
        };
        shared.publish(Role::Master { epoch: 1 });
        shared
            .lease
            .extend(super::super::lease::now(), Duration::from_secs(60));
        let _hung = mastership.admit().expect("admitted as master");
        shared.publish(Role::Left);
        let lease = Duration::from_millis(300);
        let started = tokio::time::Instant::now();
        tokio::time::timeout(
            Duration::from_secs(30),
            before_release(&shared, lease, "/p"),
        )
        .await
        .expect("the release went ahead after one lease");
        assert!(started.elapsed() >= lease, "{:?}", started.elapsed());
        assert_eq!(
            mastership.in_flight(),
            1,
            "the hung request is still counted"
        );
    }
}
