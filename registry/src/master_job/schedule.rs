//! The task behind a [`MasterJob`](super::MasterJob): wait to be master, continue from the
//! record (or the floor), claim each run with fenced writes, run it, stop when deposed.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::JobRun;
use super::next::{self, Claims};
use super::record::{JobRecord, read_record};
use crate::election::{Fence, Mastership, Role};
use crate::error::Error;
use crate::session::Session;

/// Pause before retrying after a failed ZooKeeper operation.
const PAUSE: Duration = Duration::from_millis(100);

pub(super) struct Schedule {
    pub(super) session: Session,
    pub(super) roles: watch::Receiver<Role>,
    /// Asked right before each claim and each run: master *within the lease* (a process
    /// resumed after a pause sees its lease ended before the election's task has run).
    pub(super) mastership: Mastership,
    pub(super) path: String,
    pub(super) address: String,
    /// `<path>.jobs/<name>`: the last claimed run.
    pub(super) record: String,
    /// `<path>.floor/<name>`: the same claim, written first.
    pub(super) floor: String,
    pub(super) interval: Duration,
    /// What this schedule claimed and started (see `next.rs`).
    pub(super) claims: Claims,
}

/// Why a claim did not go through.
enum Refused {
    /// Fenced: this contender is not the master of its epoch any more.
    Fenced,
    /// Failed (perhaps applied: a lost reply); read the record again.
    Failed,
}

impl Schedule {
    pub(super) async fn run<F, Fut>(mut self, mut job: F)
    where
        F: FnMut(JobRun) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        while let Some(epoch) = self.master_epoch().await {
            self.term(epoch, &mut job).await;
        }
    }

    /// Waits to be master: its epoch, or `None` once the contender left (or the election is
    /// gone).
    async fn master_epoch(&mut self) -> Option<i64> {
        loop {
            match *self.roles.borrow_and_update() {
                Role::Master { epoch } => return Some(epoch),
                Role::Left => return None,
                _ => {}
            }
            if self.roles.changed().await.is_err() {
                return None;
            }
        }
    }

    /// One term as master under `epoch`: runs the schedule until deposed, fenced, or outside
    /// the lease; the caller then waits to be master again.
    async fn term<F, Fut>(&mut self, epoch: i64, job: &mut F)
    where
        F: FnMut(JobRun) -> Fut,
        Fut: Future<Output = ()>,
    {
        let fence = Fence {
            path: self.path.clone(),
            address: self.address.clone(),
            epoch,
        };
        // Continue where the last master left off.
        let Some((mut seq, mut due)) = self.resume(epoch).await else {
            self.pause_unless_deposed(epoch, PAUSE).await;
            return;
        };
        info!(record = %self.record, epoch, seq, "master: job schedule resumed");
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = deposed(&mut self.roles, epoch) => return,
            }
            if !self.mastership.is_master() {
                self.outside_lease(epoch, seq).await;
                return;
            }
            let claimed_at = Instant::now();
            if !self.claim_and_run(&fence, seq, job).await {
                return;
            }
            seq += 1;
            due = later(claimed_at, self.interval);
        }
    }

    /// Claims run `seq` and runs it, while still master within the lease; `false` when the term
    /// is over (fenced, a failed claim, the lease ended, or deposed during the run).
    async fn claim_and_run<F, Fut>(&mut self, fence: &Fence, seq: u64, job: &mut F) -> bool
    where
        F: FnMut(JobRun) -> Fut,
        Fut: Future<Output = ()>,
    {
        let epoch = fence.epoch;
        // Before the claim is sent: from now until the run starts, a claim of ours may be
        // there that nobody ran.
        self.claims.unstarted = Some((epoch, seq));
        match self.claim(fence, seq).await {
            Ok(()) => self.claims.last = seq,
            Err(Refused::Fenced) => {
                self.pause_unless_deposed(epoch, self.interval).await;
                return false;
            }
            Err(Refused::Failed) => {
                self.pause_unless_deposed(epoch, PAUSE).await;
                return false;
            }
        }
        // Admitted as a gate admits a request: a hand-over or resign waits for this run to
        // end (it is cancelled at once by the step-down) before it releases the node.
        let Some(admission) = self.mastership.admit() else {
            // Claimed, but the lease ended since (a pause): not run now; run when master again
            // under this epoch (`next.rs`), skipped only if mastership moves meanwhile.
            self.outside_lease(epoch, seq).await;
            return false;
        };
        let run = JobRun {
            epoch,
            seq,
            fence: fence.clone(),
        };
        // Started from here on (the job's closure is called): never run again.
        self.claims.unstarted = None;
        // Biased: a run admitted is polled at least once, so a run that started is one the
        // job saw, not one dropped before its first poll.
        let finished = tokio::select! {
            biased;
            _ = job(run) => true,
            _ = deposed(&mut self.roles, epoch) => {
                warn!(epoch, seq, "mastership lost during a run; the run was cancelled");
                false
            }
        };
        // The run (its future) is gone: the release may go ahead.
        drop(admission);
        finished
    }

    /// The next `seq` and when it is due, from the record, the floor and this process's last
    /// claim; `None` if they cannot be read now.
    async fn resume(&mut self, epoch: i64) -> Option<(u64, Instant)> {
        let (record, floor) = tokio::join!(
            read_record(&self.session, &self.record),
            read_record(&self.session, &self.floor)
        );
        let (record, floor) = match (record, floor) {
            (Ok(record), Ok(floor)) => (record, floor),
            (Err(e), _) | (_, Err(e)) => {
                debug!(error = %e, "cannot read the job record or its floor; retrying");
                return None;
            }
        };
        let recorded = record.map_or(0, |r| r.seq);
        let floored = floor.map_or(0, |r| r.seq);
        let start = next::start(epoch, record, floor, self.claims);
        if start.unstarted {
            info!(record = %self.record, epoch, seq = start.seq, "master again under the same epoch: running the run this process claimed (or tried to) and did not start");
        } else if recorded < floored {
            warn!(record = %self.record, recorded, floor = floored, "the job record is behind its floor (deleted or edited by hand, or its last write was lost); numbering on from the floor");
        }
        if recorded.max(floored) < self.claims.last {
            warn!(record = %self.record, recorded, claimed = self.claims.last, "the job record and its floor went back (ZooKeeper's data wiped?); numbering on from this process's last claim");
        }
        let due = match start.last {
            Some(r) if !start.unstarted => {
                later(Instant::now(), until(r.at_ms, self.interval, now_ms()))
            }
            _ => Instant::now(),
        };
        Some((start.seq, due))
    }

    /// Claims run `seq`: the floor first, then the record, each a fenced write. A floor ahead
    /// of its record skips at most that one run; a record never runs ahead of its floor.
    async fn claim(&self, fence: &Fence, seq: u64) -> Result<(), Refused> {
        let claim = JobRecord {
            seq,
            epoch: fence.epoch,
            at_ms: now_ms(),
        };
        for target in [&self.floor, &self.record] {
            match fence
                .write(&self.session, target, claim.encode().as_bytes())
                .await
            {
                Ok(()) => {}
                Err(e @ Error::Fenced { .. }) => {
                    // The election reports the change (a new master, or a new epoch once it
                    // repaired its companion); the error says what ZooKeeper shows.
                    info!(epoch = fence.epoch, seq, error = %e, "claim refused");
                    return Err(Refused::Fenced);
                }
                Err(e) => {
                    debug!(error = %e, seq, "claim failed; retrying");
                    return Err(Refused::Failed);
                }
            }
        }
        Ok(())
    }

    /// The role still says master but the lease has ended: the election reports it (or renews)
    /// shortly; wait for that rather than run.
    async fn outside_lease(&mut self, epoch: i64, seq: u64) {
        info!(
            epoch,
            seq, "the master's lease has ended; not running until it is master again"
        );
        self.pause_unless_deposed(epoch, PAUSE).await;
    }

    async fn pause_unless_deposed(&mut self, epoch: i64, pause: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = deposed(&mut self.roles, epoch) => {}
        }
    }
}

/// How long from `now_ms` until one interval after `at_ms` (never more than one interval: a
/// clock ahead of ours must not stall the schedule).
fn until(at_ms: i64, interval: Duration, now_ms: i64) -> Duration {
    let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    let left = at_ms.saturating_add(interval_ms).saturating_sub(now_ms);
    Duration::from_millis(u64::try_from(left).unwrap_or(0)).min(interval)
}

/// `at + wait`, or a century from `at` when that would overflow (an interval of `Duration::MAX`
/// means "not in this process's lifetime", not a panic).
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .or_else(|| at.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(at)
}

/// Returns once the role is no longer `Master { epoch }`.
async fn deposed(roles: &mut watch::Receiver<Role>, epoch: i64) {
    loop {
        if *roles.borrow_and_update() != (Role::Master { epoch }) {
            return;
        }
        if roles.changed().await.is_err() {
            return;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = JobRecord {
            seq: 42,
            epoch: 4_294_967_300,
            at_ms: 1_700_000_000_000,
        };
        assert_eq!(r.encode(), "seq=42 epoch=4294967300 at_ms=1700000000000");
        assert_eq!(JobRecord::parse(&r.encode()), Some(r));
        assert_eq!(JobRecord::parse("garbage"), None);
        assert_eq!(JobRecord::parse("seq=1 epoch=2"), None);
    }

    #[test]
    fn huge_intervals_neither_wrap_nor_overflow() {
        let now = 1_700_000_000_000;
        let second = Duration::from_secs(1);
        assert_eq!(until(now - 400, second, now), Duration::from_millis(600));
        assert_eq!(until(now - 4_000, second, now), Duration::ZERO);
        assert_eq!(until(now + 60_000, second, now), second);
        // u64::MAX ms used to become -1 ms through `as i64`: due at once, every time.
        let huge = Duration::from_millis(u64::MAX);
        assert_eq!(
            until(now, huge, now),
            Duration::from_millis(i64::MAX as u64 - now as u64)
        );
        assert_eq!(
            until(now, Duration::MAX, now),
            Duration::from_millis(i64::MAX as u64 - now as u64)
        );
        let at = Instant::now();
        assert!(later(at, Duration::MAX) > at + Duration::from_secs(3600 * 24 * 365));
        assert_eq!(later(at, second), at + second);
    }
}
