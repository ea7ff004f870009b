//! `MasterJob`: a job that runs every interval on the master only, with every run claimed in
//! ZooKeeper through a fenced write.
//!
//! Runs are numbered `seq = 1, 2, ...`. Before run `k` executes, the master writes the record
//! `seq=<k> epoch=<e> at_ms=<unix ms>` to the persistent node `<path>.jobs/<name>` with a
//! [`Fence::write`] (one transaction that checks the master node and `<path>.epoch`). Only a
//! successful claim runs the job. A new master reads the record and continues with `k + 1`, due
//! one interval after the recorded claim (at once if that is past).
//!
//! Guarantees:
//! - The job runs only while this contender is master *within its lease* (see
//!   [`crate::election::Mastership`]): checked right before each claim and again right before
//!   each run starts, so a process resumed after a pause longer than the lease starts nothing,
//!   whatever its election task has seen yet. It receives the epoch (and the whole [`Fence`],
//!   to guard its own side effects).
//! - It stops within one interval of losing mastership; in fact at once: a run in progress is
//!   cancelled (dropped at its next await point) the moment the role changes.
//! - A deposed master cannot claim a run: its write fails with [`Error::Fenced`] even if it
//!   believes it is still master (a paused process resuming).
//! - A failover neither runs a `seq` twice (each is claimed once, fenced) nor skips more than
//!   one (only the last claim can be lost: its master died, or lost the claim's reply, before
//!   running it).
//! - Runs do not overlap: the next one is due one interval after the previous claim, or at
//!   once if the previous run overran (missed slots are not caught up).
//!
//! After a wiped ZooKeeper (a new history: epochs start again from small zxids, see
//! [`crate::election`]) the record is gone; a master that ran the job before numbers on from
//! its own last claim (in process, so a master that did not run it before the wipe starts at 1).
//!
//! The interval is at least [`MasterJob::MIN_INTERVAL`] (100 ms): every run is a fenced
//! ZooKeeper write (a transaction through the leader, on disk before it is acknowledged), so a
//! faster schedule would load the ensemble rather than run a job; a job that must act more often
//! loops inside one run. [`MasterJob::start`] refuses a shorter interval with
//! [`Error::InvalidSetting`]. Any longer interval works (it is never added where it could
//! overflow).
//!
//! Times in the record are the claiming process's wall clock; across machines, keep clocks in
//! sync (NTP) or the first run after a failover shifts by the skew (never by more than one
//! interval).
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_registry::Error> {
//! use std::time::Duration;
//! use zoorpc_registry::{MasterElection, MasterJob, Session};
//! let session = Session::connect_to("127.0.0.1:2181").await?;
//! let election = MasterElection::join(&session, "/soa/master/services/Report:1.0.0", "10.0.0.7:9090").await?;
//! let job = MasterJob::start(&election, "report", Duration::from_secs(60), |run| async move {
//!     println!("run epoch={} seq={}", run.epoch, run.seq);
//! })?;
//! # drop(job); Ok(()) }
//! ```

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use crate::election::{Fence, MasterElection, Mastership, Role};
use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;
use crate::session::Session;

/// Pause before retrying after a failed ZooKeeper operation.
const PAUSE: Duration = Duration::from_millis(100);

/// The record node of job `name` at election path `path`: `<path>.jobs/<name>`.
///
/// ```
/// use zoorpc_registry::master_job::record_path;
/// assert_eq!(record_path("/soa/master/services/Report:1", "daily"), "/soa/master/services/Report:1.jobs/daily");
/// ```
pub fn record_path(path: &str, name: &str) -> String {
    format!("{path}.jobs/{name}")
}

/// Checks an election path and a job name (one path segment) before anything starts, so a
/// program refuses them up front; returns the record path.
///
/// ```
/// use zoorpc_registry::master_job::validate_job;
/// assert_eq!(validate_job("/a/m", "report").unwrap(), "/a/m.jobs/report");
/// assert!(validate_job("/a/m", "").is_err());
/// assert!(validate_job("/a/m", "x/y").is_err());
/// assert!(validate_job("/a/m", "..").is_err());
/// assert!(validate_job("relative", "report").is_err());
/// assert!(validate_job("/a/m", "two words").is_err());
/// assert!(validate_job("/a/m", &"x".repeat(256)).is_err());
/// ```
pub fn validate_job(path: &str, name: &str) -> Result<String> {
    validate_path(path)?;
    let record = record_path(path, name);
    validate_path(&record)?;
    if name.contains('/') {
        return Err(Error::InvalidPath {
            path: crate::error::excerpt(&record),
            reason: "the job name must be one path segment (no '/')",
        });
    }
    if name.len() > 255 || name.chars().any(char::is_whitespace) {
        return Err(Error::InvalidPath {
            path: crate::error::excerpt(&record),
            reason: "the job name must be one word of at most 255 bytes (no spaces)",
        });
    }
    Ok(record)
}

/// One run handed to the job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRun {
    /// The master's epoch.
    pub epoch: i64,
    /// The run's number (continues across failovers).
    pub seq: u64,
    /// The master's fencing token, for the job's own writes.
    pub fence: Fence,
}

/// What `<path>.jobs/<name>` holds: the last claimed run.
///
/// ```
/// use zoorpc_registry::JobRecord;
/// let record = JobRecord::parse("seq=12 epoch=4294967301 at_ms=1700000000000").unwrap();
/// assert_eq!(record.seq, 12);
/// assert_eq!(record.encode(), "seq=12 epoch=4294967301 at_ms=1700000000000");
/// assert_eq!(JobRecord::parse("not a record"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// The run's number.
    pub seq: u64,
    /// The epoch of the master that claimed it.
    pub epoch: i64,
    /// When it was claimed, milliseconds since the UNIX epoch.
    pub at_ms: i64,
}

impl JobRecord {
    /// `seq=<k> epoch=<e> at_ms=<ms>`.
    pub fn encode(&self) -> String {
        format!("seq={} epoch={} at_ms={}", self.seq, self.epoch, self.at_ms)
    }

    /// Parses [`JobRecord::encode`]'s format; `None` if it is not that.
    pub fn parse(text: &str) -> Option<JobRecord> {
        let (mut seq, mut epoch, mut at_ms) = (None, None, None);
        for field in text.split_whitespace() {
            match field.split_once('=')? {
                ("seq", v) => seq = v.parse().ok(),
                ("epoch", v) => epoch = v.parse().ok(),
                ("at_ms", v) => at_ms = v.parse().ok(),
                _ => {}
            }
        }
        Some(JobRecord {
            seq: seq?,
            epoch: epoch?,
            at_ms: at_ms?,
        })
    }
}

/// Reads the record of the last claimed run; `None` if no run was ever claimed (or the record
/// is unreadable, which is logged).
pub async fn read_record(session: &Session, record: &str) -> Result<Option<JobRecord>> {
    let record = validate_path(record)?;
    match session.client().get_data(record).await {
        Ok((data, _)) => {
            let parsed = std::str::from_utf8(&data).ok().and_then(JobRecord::parse);
            if parsed.is_none() && !data.is_empty() {
                warn!(
                    record,
                    "the job record is not `seq=<k> epoch=<e> at_ms=<ms>`; starting again from seq 1"
                );
            }
            Ok(parsed)
        }
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(Error::zk("read", record, e)),
    }
}

/// A job running on the master only. Dropping it stops the job.
#[derive(Debug)]
pub struct MasterJob {
    record: String,
    task: JoinHandle<()>,
}

impl Drop for MasterJob {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MasterJob {
    /// The shortest interval [`MasterJob::start`] accepts: each run costs a fenced ZooKeeper
    /// write.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

    /// Runs `job` every `interval` (at least [`MasterJob::MIN_INTERVAL`]) while `election`'s
    /// contender is master. `name` (one path segment) names the record node
    /// `<path>.jobs/<name>`.
    pub fn start<F, Fut>(
        election: &MasterElection,
        name: &str,
        interval: Duration,
        job: F,
    ) -> Result<MasterJob>
    where
        F: FnMut(JobRun) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if interval < Self::MIN_INTERVAL {
            return Err(Error::InvalidSetting {
                setting: "job interval",
                value: format!("{interval:?}"),
                reason: format!(
                    "it must be at least {:?}: every run is a fenced ZooKeeper write; \
                     a job that must act more often can loop inside one run",
                    Self::MIN_INTERVAL
                ),
            });
        }
        let record = validate_job(election.path(), name)?;
        let schedule = Schedule {
            session: election.session().clone(),
            roles: election.subscribe(),
            mastership: election.mastership(),
            path: election.path().to_owned(),
            address: election.address().to_owned(),
            record: record.clone(),
            interval,
            last_claimed: 0,
        };
        let task = tokio::spawn(schedule.run(job));
        Ok(MasterJob { record, task })
    }

    /// The record node, `<path>.jobs/<name>`.
    pub fn record_path(&self) -> &str {
        &self.record
    }

    /// Stops the job (a run in progress is cancelled).
    pub fn stop(self) {
        drop(self);
    }
}

struct Schedule {
    session: Session,
    roles: watch::Receiver<Role>,
    /// Asked right before each claim and each run: master *within the lease* (a process
    /// resumed after a pause sees its lease ended before the election's task has run).
    mastership: Mastership,
    path: String,
    address: String,
    record: String,
    interval: Duration,
    /// The last `seq` this process claimed: a floor for the next one, should the record go
    /// back (a wiped ZooKeeper, a record deleted by hand).
    last_claimed: u64,
}

impl Schedule {
    async fn run<F, Fut>(mut self, mut job: F)
    where
        F: FnMut(JobRun) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        'terms: loop {
            // Wait to be master.
            let epoch = loop {
                match *self.roles.borrow_and_update() {
                    Role::Master { epoch } => break epoch,
                    Role::Left => return,
                    _ => {}
                }
                if self.roles.changed().await.is_err() {
                    return;
                }
            };
            let fence = Fence {
                path: self.path.clone(),
                address: self.address.clone(),
                epoch,
            };
            // Continue where the last master left off.
            let last = match read_record(&self.session, &self.record).await {
                Ok(last) => last,
                Err(e) => {
                    debug!(error = %e, "cannot read the job record; retrying");
                    self.pause_unless_deposed(epoch, PAUSE).await;
                    continue 'terms;
                }
            };
            let recorded = last.map_or(0, |r| r.seq);
            if recorded < self.last_claimed {
                warn!(
                    record = %self.record,
                    recorded,
                    claimed = self.last_claimed,
                    "the job record went back (ZooKeeper's data wiped, or the record deleted or edited by hand); numbering on from this process's last claim"
                );
            }
            let mut seq = recorded.max(self.last_claimed) + 1;
            let mut due = match last {
                Some(r) => later(Instant::now(), until(r.at_ms, self.interval, now_ms())),
                None => Instant::now(),
            };
            info!(record = %self.record, epoch, seq, "master: job schedule resumed");
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = deposed(&mut self.roles, epoch) => continue 'terms,
                }
                if !self.mastership.is_master() {
                    self.outside_lease(epoch, seq).await;
                    continue 'terms;
                }
                let claim = JobRecord {
                    seq,
                    epoch,
                    at_ms: now_ms(),
                };
                let claimed_at = Instant::now();
                match fence
                    .write(&self.session, &self.record, claim.encode().as_bytes())
                    .await
                {
                    Ok(()) => self.last_claimed = seq,
                    Err(e @ Error::Fenced { .. }) => {
                        // The election reports the change (a new master, or a new epoch once
                        // it repaired its companion); the error says what ZooKeeper shows.
                        info!(epoch, seq, error = %e, "claim refused");
                        self.pause_unless_deposed(epoch, self.interval).await;
                        continue 'terms;
                    }
                    Err(e) => {
                        // Perhaps applied (a lost reply): reading the record again decides.
                        debug!(error = %e, seq, "claim failed; retrying");
                        self.pause_unless_deposed(epoch, PAUSE).await;
                        continue 'terms;
                    }
                }
                if !self.mastership.is_master() {
                    // Claimed, but the lease ended since (a pause): the run is skipped, as a
                    // run cancelled by a failover is.
                    self.outside_lease(epoch, seq).await;
                    continue 'terms;
                }
                let run = JobRun {
                    epoch,
                    seq,
                    fence: fence.clone(),
                };
                tokio::select! {
                    _ = job(run) => {}
                    _ = deposed(&mut self.roles, epoch) => {
                        warn!(epoch, seq, "mastership lost during a run; the run was cancelled");
                        continue 'terms;
                    }
                }
                seq += 1;
                due = later(claimed_at, self.interval);
            }
        }
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
