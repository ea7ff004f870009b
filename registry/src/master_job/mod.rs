//! `MasterJob`: a job that runs every interval on the master only, with every run claimed in
//! ZooKeeper through a fenced write.
//!
//! Runs are numbered `seq = 1, 2, ...`. Before run `k` executes, the master writes the claim
//! `seq=<k> epoch=<e> at_ms=<unix ms>` to two persistent nodes, each with a [`Fence::write`]
//! (one transaction that checks the master node and `<path>.epoch`): first the *floor*
//! `<path>.floor/<name>`, then the *record* `<path>.jobs/<name>`. Only a claim written to both
//! runs the job. A new master reads both and continues with `k + 1` for the higher `k`, due one
//! interval after that claim (at once if that is past).
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
//! - A `seq` runs at most once: each is claimed once, fenced, and only the schedule that
//!   claimed it runs it.
//! - Only a change of master skips a `seq`, at most one per change: the last claim of a master
//!   deposed (or dead) before it started that run. A master that claimed a run and did not start
//!   it (the claim's reply was lost, or its lease ended between the claim and the run) and is
//!   master again *under the same epoch* runs it then, at once: the epoch proves that no other
//!   contender was master meanwhile, so nobody else can have run it (the argument is in
//!   `next.rs`; it rests on the epoch and the fenced claims, never on timing).
//! - Runs do not overlap: the next one is due one interval after the previous claim, or at
//!   once if the previous run overran (missed slots are not caught up).
//!
//! - An operator deleting (or editing back) the record or the floor, not both, changes nothing:
//!   every contender reads both, and the floor is written first, so it is never behind a run.
//!   To start the numbering again on purpose, delete both while no master runs the job.
//!
//! What is still lost: after a wiped ZooKeeper (a new history: epochs start again from small
//! zxids, see [`crate::election`]), or both nodes deleted by hand, the claims are gone; a master
//! that ran the job before numbers on from its own last claim (kept in its process), and one
//! that did not (a standby, or any process started after) starts again at 1. Keep a job's own
//! results idempotent, or key them by something that survives the wipe, if that matters.
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

mod next;
mod record;
mod schedule;

pub use record::{JobRecord, floor_path, read_record, record_path, validate_job};

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::election::{Fence, MasterElection};
use crate::error::{Error, Result};
use schedule::Schedule;

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
            floor: floor_path(election.path(), name),
            interval,
            claims: Default::default(),
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
