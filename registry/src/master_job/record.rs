//! Where a job's runs are recorded, and how: the record `<path>.jobs/<name>` and the floor
//! `<path>.floor/<name>`, both holding a [`JobRecord`].

use tracing::warn;
use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;
use crate::session::Session;

/// The record node of job `name` at election path `path`: `<path>.jobs/<name>`.
///
/// ```
/// use zoorpc_registry::master_job::record_path;
/// assert_eq!(record_path("/soa/master/services/Report:1", "daily"), "/soa/master/services/Report:1.jobs/daily");
/// ```
pub fn record_path(path: &str, name: &str) -> String {
    format!("{path}.jobs/{name}")
}

/// The floor node of job `name` at election path `path`: `<path>.floor/<name>`, a copy of each
/// claim written (fenced) *before* the record, so the highest `seq` ever claimed survives the
/// record's deletion by hand (and the record survives the floor's).
///
/// ```
/// use zoorpc_registry::master_job::floor_path;
/// assert_eq!(floor_path("/soa/master/services/Report:1", "daily"), "/soa/master/services/Report:1.floor/daily");
/// ```
pub fn floor_path(path: &str, name: &str) -> String {
    format!("{path}.floor/{name}")
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
    validate_path(&floor_path(path, name))?;
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
