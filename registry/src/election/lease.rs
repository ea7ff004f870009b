//! The master's local lease, and [`Mastership`], what a gate asks per request.
//!
//! A master serves only while it has heard from ZooKeeper recently enough that its session
//! cannot have expired yet. "Heard" is a reply to a request of this session (a takeover, a
//! read of the node, a renewal: a multi-op checking our node's version, which goes through the
//! ZooKeeper leader), and the lease counts from the instant that request was *sent*: the server
//! received it later, and receiving it restarted the session's timeout there, so the session
//! lives at least one session timeout past the send. The lease is
//! [`LEASE_NUMERATOR`]/[`LEASE_DENOMINATOR`] (3/5) of the negotiated session timeout: two thirds,
//! less a margin, as Chubby and Kafka size theirs.
//!
//! The lease is measured on this host's boot clock (`CLOCK_BOOTTIME`: monotonic, and it keeps
//! counting while the process is stopped or the host is suspended), so a process resumed after
//! `SIGSTOP` sees that its lease has passed the moment it reads the clock, before any task has
//! run. Assumed: the rates of this clock and of the ZooKeeper servers' clocks differ by less than
//! 5/3 to 1 (real clocks drift by parts per million). Not assumed: anything about how long a
//! request or a reply takes to arrive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::role::{Role, Shared};

/// The lease is this many ...
pub const LEASE_NUMERATOR: u32 = 3;
/// ... fifths of the negotiated session timeout.
pub const LEASE_DENOMINATOR: u32 = 5;

/// The lease a master holds after each reply, for a negotiated session timeout.
///
/// ```
/// use std::time::Duration;
/// use zoorpc_registry::election::lease_for;
/// assert_eq!(lease_for(Duration::from_secs(10)), Duration::from_secs(6));
/// ```
pub fn lease_for(session_timeout: Duration) -> Duration {
    session_timeout * LEASE_NUMERATOR / LEASE_DENOMINATOR
}

/// Nanoseconds on the boot clock (monotonic, counting through stops and suspends).
pub(crate) fn now() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on every Linux
        // since 2.6.39.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        if rc == 0 {
            return (ts.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_nsec as u64);
        }
    }
    fallback_now()
}

/// Elsewhere (or if the boot clock failed): the monotonic clock since the first call.
fn fallback_now() -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(std::time::Instant::now);
    u64::try_from(base.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// The instant a lease ends, on the boot clock; 0 means no lease.
#[derive(Debug, Default)]
pub(crate) struct LeaseEnd(AtomicU64);

impl LeaseEnd {
    /// Extends the lease to `sent + lease` (never shortens it: replies may arrive out of order).
    pub(crate) fn extend(&self, sent: u64, lease: Duration) {
        let end = sent.saturating_add(u64::try_from(lease.as_nanos()).unwrap_or(u64::MAX));
        self.0.fetch_max(end, Ordering::SeqCst);
    }

    /// Ends the lease (a step-down).
    pub(crate) fn clear(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    /// Whether the lease runs now.
    pub(crate) fn holds(&self) -> bool {
        now() < self.0.load(Ordering::SeqCst)
    }

    /// How long the lease still runs (zero once it has ended).
    pub(crate) fn left(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst).saturating_sub(now()))
    }
}

/// Whether this contender may act as master *now*: its role is [`Role::Master`] and its lease
/// runs. What `zoorpc_provider::MasterGate` and [`crate::MasterJob`] ask before
/// they let anything happen. Cheap (two atomic loads and a clock read); cheap to clone.
#[derive(Clone, Debug)]
pub struct Mastership {
    pub(super) shared: Arc<Shared>,
}

impl Mastership {
    /// Whether the contender is master and within its lease.
    pub fn is_master(&self) -> bool {
        self.shared.master.load(Ordering::SeqCst) && self.shared.lease.holds()
    }

    /// The role as a gate must read it: the published role, except that a master whose lease
    /// has ended is [`Role::Disconnected`] (it has not heard from ZooKeeper in time).
    pub fn role(&self) -> Role {
        self.shared.effective_role()
    }
}

impl Shared {
    /// The published role, with a master past its lease reported as disconnected.
    pub(crate) fn effective_role(&self) -> Role {
        let role = self.role.borrow().clone();
        if role.is_master() && !self.lease.holds() {
            Role::Disconnected
        } else {
            role
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_counts_from_the_send_and_never_shrinks() {
        let lease = LeaseEnd::default();
        assert!(!lease.holds(), "no lease before the first reply");
        let sent = now();
        lease.extend(sent, Duration::from_secs(60));
        assert!(lease.holds());
        // A late reply to an older request does not shorten it.
        lease.extend(sent.saturating_sub(1_000_000_000), Duration::from_secs(1));
        assert!(lease.left() > Duration::from_secs(59));
        // A reply to a request sent longer ago than the lease gives nothing.
        let long_ago = now().saturating_sub(2_000_000_000);
        let stale = LeaseEnd::default();
        stale.extend(long_ago, Duration::from_secs(1));
        assert!(!stale.holds());
        assert_eq!(stale.left(), Duration::ZERO);
        lease.clear();
        assert!(!lease.holds());
    }

    #[test]
    fn the_boot_clock_moves_forward() {
        let (a, b) = (now(), now());
        assert!(a > 0 && b >= a);
    }
}
