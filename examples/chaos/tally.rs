//! Counting, from what users would look at: calls that failed (through the library's consumer),
//! master intervals that overlap by wall clock (from the contenders' own stamped `role` lines,
//! as `tests/ha/ha_rounds.rs` lays out the instants contenders adopted their roles), and job runs
//! whose number was claimed twice (from their `run` lines).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zoorpc::consumer::{CallPolicy, Consumer};

/// Failed calls printed at most (all are counted).
const PRINTED_FAILURES: u64 = 20;

/// Calls made and failed by the loops of one call policy.
#[derive(Default)]
pub struct CallCounts {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls that failed.
    pub failed: AtomicU64,
}

impl CallCounts {
    /// (calls, failed) so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// A steady loop of `SayHello` calls with `policy`, one every `pace`, until `stop` is set; each
/// failure is counted and the first few are printed with the time they happened.
pub fn call_loop(
    consumer: Arc<Consumer>,
    policy: (&'static str, CallPolicy),
    pace: Duration,
    counts: Arc<CallCounts>,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(pace);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let result = consumer.say_hello_with(policy.1, "chaos").await;
            counts.calls.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = result {
                let n = counts.failed.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= PRINTED_FAILURES {
                    println!(
                        "{:>8.3}s call failed ({} policy): {e}",
                        started.elapsed().as_secs_f64(),
                        policy.0
                    );
                }
            }
        }
    })
}

/// One contender's time as master, by the wall clock (unix ms).
#[derive(Clone, Copy, Debug)]
pub struct MasterInterval {
    /// Which contender.
    pub contender: usize,
    /// When it adopted the master role.
    pub start: u64,
    /// When it adopted another role (or was stopped, or found gone, while master).
    pub end: u64,
}

/// The `at_ms=<n>` at the end of a stamped line.
fn stamp(line: &str) -> Option<u64> {
    line.rsplit_once(" at_ms=")?.1.parse().ok()
}

/// Master intervals from one contender's lines; an interval still open at the end of its
/// lines ends at `ended_ms` (when the process was stopped or found gone).
pub fn master_intervals(contender: usize, lines: &[String], ended_ms: u64) -> Vec<MasterInterval> {
    let mut out = Vec::new();
    let mut open: Option<u64> = None;
    for line in lines.iter().filter(|l| l.starts_with("role ")) {
        let Some(at) = stamp(line) else { continue };
        match (line.starts_with("role master "), open) {
            (true, None) => open = Some(at),
            (false, Some(start)) => {
                out.push(MasterInterval {
                    contender,
                    start,
                    end: at,
                });
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        out.push(MasterInterval {
            contender,
            start,
            end: ended_ms.max(start),
        });
    }
    out
}

/// The intervals that began while another contender's interval (begun no later) had not ended:
/// every such start is a moment two contenders believed they were master.
pub fn double_masters(intervals: &[MasterInterval]) -> Vec<(MasterInterval, MasterInterval)> {
    let mut sorted = intervals.to_vec();
    sorted.sort_by_key(|i| i.start);
    let mut doubles = Vec::new();
    for (k, later) in sorted.iter().enumerate() {
        if let Some(earlier) = sorted[..k]
            .iter()
            .find(|earlier| earlier.contender != later.contender && earlier.end > later.start)
        {
            doubles.push((*earlier, *later));
        }
    }
    doubles
}

/// Job runs (`run epoch=<e> seq=<k>` lines) of every contender: (runs, numbers claimed more
/// than once, counting each extra claim).
pub fn job_runs<'a>(lines: impl Iterator<Item = &'a String>) -> (u64, u64, Vec<u64>) {
    let mut claims: HashMap<u64, u64> = HashMap::new();
    let mut runs = 0;
    for line in lines {
        let Some(rest) = line.strip_prefix("run ") else {
            continue;
        };
        let seq = rest
            .split_whitespace()
            .find_map(|w| w.strip_prefix("seq="))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(seq) = seq {
            runs += 1;
            *claims.entry(seq).or_default() += 1;
        }
    }
    let mut twice: Vec<u64> = claims
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(seq, _)| *seq)
        .collect();
    twice.sort_unstable();
    let duplicated = claims.values().map(|n| n.saturating_sub(1)).sum();
    (runs, duplicated, twice)
}

/// Now, in unix ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
