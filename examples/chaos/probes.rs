//! What clients of the HA servers see, and the two counts made from it.
//!
//! - The prober calls every HA server at its *own* address (as grpcurl, a load balancer or a
//!   client holding a connection would), a few calls in flight per server. An answer proves that
//!   the server served as master at some instant between the call's send and its reply, under
//!   the epoch the answer names (`zoorpc-epoch`).
//! - `overlapping_masters`: answers under an epoch older than one another server had already
//!   answered under (that answer's reply came before this call was sent). Epochs only grow
//!   and each names one term of one holder, so such an answer proves a deposed master served
//!   while a newer master existed: two servers answered as master over overlapping time.
//! - `liveness_misses`: faults after whose end no server answered as master within the session
//!   timeout and a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zoorpc::proto::{HelloRequest, HelloServiceClient};

/// The metadata the HA server program names its epoch in.
const EPOCH: &str = zoorpc::apps::ha_server::EPOCH_METADATA;

/// Calls in flight per server, at most.
const MAX_IN_FLIGHT: u64 = 400;
/// Pause between two calls of one probe.
const PROBE_PACE: Duration = Duration::from_millis(5);
/// How long a probe waits for an answer (a paused server answers late, or never).
const PROBE_TIMEOUT: Duration = Duration::from_millis(1_500);

/// One answer of a server called at its own address.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    /// Which HA server.
    pub server: usize,
    /// When the call was sent.
    pub sent: Instant,
    /// When its answer arrived.
    pub replied: Instant,
    /// The epoch it was answered under (`None`: no longer master when the handler ran).
    pub epoch: Option<i64>,
}

/// Every answer so far.
#[derive(Default)]
pub struct Probes {
    answers: Mutex<Vec<Answer>>,
    /// Calls that got no answer as master (refused as standby, failed, timed out).
    pub unanswered: AtomicU64,
}

impl Probes {
    fn push(&self, answer: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(answer);
    }

    /// Whether some server answered as master after `since`.
    pub fn answered_since(&self, since: Instant) -> bool {
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        answers.iter().rev().any(|a| a.sent >= since)
    }

    /// A copy of every answer.
    pub fn answers(&self) -> Vec<Answer> {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A probe of the server `server` at `address` (`host:port`): a call every few milliseconds,
/// each in flight on its own (at most [`MAX_IN_FLIGHT`]), so calls keep arriving at a paused
/// server as they would from many clients, until `stop`.
pub fn probe(
    server: usize,
    address: String,
    probes: Arc<Probes>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{address}")) {
            Ok(endpoint) => endpoint
                .connect_timeout(Duration::from_millis(200))
                .timeout(PROBE_TIMEOUT)
                .tcp_nodelay(true),
            Err(e) => {
                println!("cannot probe {address}: {e}");
                return;
            }
        };
        let client = HelloServiceClient::new(endpoint.connect_lazy());
        let in_flight = Arc::new(AtomicU64::new(0));
        let mut ticker = tokio::time::interval(PROBE_PACE);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (client, probes, in_flight) = (client.clone(), probes.clone(), in_flight.clone());
            tokio::spawn(probe_once(server, client, probes, in_flight));
        }
    })
}

/// One probe call of `server`, its answer (with the epoch it carried) or its failure counted.
async fn probe_once(
    server: usize,
    mut client: HelloServiceClient<tonic::transport::Channel>,
    probes: Arc<Probes>,
    in_flight: Arc<AtomicU64>,
) {
    let sent = Instant::now();
    let result = client
        .say_hello(HelloRequest {
            name: "probe".into(),
        })
        .await;
    in_flight.fetch_sub(1, Ordering::Relaxed);
    match result {
        Ok(response) => {
            let epoch = response
                .metadata()
                .get(EPOCH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            probes.push(Answer {
                server,
                sent,
                replied: Instant::now(),
                epoch,
            });
        }
        Err(_) => {
            probes.unanswered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The answers that prove two masters: each answered under an epoch older than one another
/// server's answer (replied before this call was sent) carried, with that newer answer.
pub fn overlapping(answers: &[Answer]) -> Vec<(Answer, Answer)> {
    let mut by_reply: Vec<&Answer> = answers.iter().filter(|a| a.epoch.is_some()).collect();
    by_reply.sort_by_key(|a| a.replied);
    // The answer with the highest epoch among the first k replies, for every k.
    let mut newest: Vec<&Answer> = Vec::with_capacity(by_reply.len());
    for answer in &by_reply {
        let best = match newest.last() {
            Some(best) if best.epoch >= answer.epoch => *best,
            _ => *answer,
        };
        newest.push(best);
    }
    let mut found = Vec::new();
    for answer in answers {
        let Some(epoch) = answer.epoch else { continue };
        let before = by_reply.partition_point(|a| a.replied < answer.sent);
        if before == 0 {
            continue;
        }
        let newer = newest[before - 1];
        if newer.epoch.is_some_and(|e| e > epoch) && newer.server != answer.server {
            found.push((*answer, *newer));
        }
    }
    found
}

/// What the HA servers' job runs show (`run epoch=<e> seq=<k>` lines).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JobSeqs {
    /// Runs.
    pub runs: u64,
    /// Extra runs of a seq already run (must be 0: a seq is claimed once, fenced).
    pub duplicated: u64,
    /// Seqs never run between 1 and the highest, at a change of master: the claim of a master
    /// deposed (or dead) between claiming and running (at most once per change, by design).
    pub skipped: Vec<u64>,
    /// Seqs never run whose nearest runs below and above have one epoch: the same master skipped
    /// its own claim (must be 0: only that master can have claimed them, an epoch being one
    /// master's term, and it runs a claim it did not start when master again under that epoch).
    pub unexplained: Vec<u64>,
}

/// `(seq, epoch)` of a `run epoch=<e> seq=<k> ...` line.
pub fn parse_run(line: &str) -> Option<(u64, i64)> {
    let rest = line.strip_prefix("run ")?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse::<i64>().ok())
    };
    Some((u64::try_from(field("seq=")?).ok()?, field("epoch=")?))
}

/// The evidence for a skipped `seq`: the nearest runs below and above it, each as `<server> ran
/// <k> under epoch <e>` (`runs`: who ran which seq under which epoch).
pub fn neighbours(runs: &[(String, u64, i64)], seq: u64) -> String {
    let below = runs.iter().filter(|r| r.1 < seq).max_by_key(|r| r.1);
    let above = runs.iter().filter(|r| r.1 > seq).min_by_key(|r| r.1);
    let show = |run: Option<&(String, u64, i64)>| match run {
        Some((server, k, epoch)) => format!("{server} ran {k} under epoch {epoch}"),
        None => "no run".to_owned(),
    };
    format!("below: {}; above: {}", show(below), show(above))
}

/// Reads the runs from `lines` and sorts the skipped seqs into explained and unexplained.
pub fn job_seqs<'a>(lines: impl Iterator<Item = &'a String>) -> JobSeqs {
    let mut runs: Vec<(u64, i64)> = lines.filter_map(|l| parse_run(l)).collect();
    let mut out = JobSeqs {
        runs: runs.len() as u64,
        ..JobSeqs::default()
    };
    runs.sort_unstable();
    runs.dedup_by_key(|r| r.0);
    out.duplicated = out.runs - runs.len() as u64;
    let mut below: Option<(u64, i64)> = None;
    for &(seq, epoch) in &runs {
        let (last, last_epoch) = below.unwrap_or((0, epoch));
        for gap in last + 1..seq {
            if last > 0 && last_epoch == epoch {
                out.unexplained.push(gap);
            } else {
                out.skipped.push(gap);
            }
        }
        below = Some((seq, epoch));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_at_a_change_of_master_are_told_from_skips_by_one_master() {
        let lines: Vec<String> = [
            "run epoch=5 seq=1",
            "run epoch=5 seq=2",
            "run epoch=9 seq=4",
            "run epoch=9 seq=6",
            "run epoch=9 seq=6",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect();
        let seqs = job_seqs(lines.iter());
        assert_eq!(seqs.runs, 5);
        assert_eq!(seqs.duplicated, 1);
        assert_eq!(seqs.skipped, vec![3]);
        assert_eq!(seqs.unexplained, vec![5]);
        let who: Vec<(String, u64, i64)> = lines
            .iter()
            .filter_map(|l| parse_run(l))
            .map(|(seq, epoch)| (format!("ha-{}", epoch % 2), seq, epoch))
            .collect();
        assert_eq!(
            neighbours(&who, 5),
            "below: ha-1 ran 4 under epoch 9; above: ha-1 ran 6 under epoch 9"
        );
        assert_eq!(
            neighbours(&who, 7),
            "below: ha-1 ran 6 under epoch 9; above: no run"
        );
    }
}

/// Calls made and failed by one kind of client loop.
#[derive(Default)]
pub struct Counts {
    pub calls: AtomicU64,
    pub failed: AtomicU64,
}

impl Counts {
    pub fn get(&self) -> (u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
