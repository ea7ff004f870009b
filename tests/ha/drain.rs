//! A master's admitted requests never outlive its hand-over: the old master's last answer as
//! master comes back before the new master's first, checked where users see it (a client
//! calling each `zoorpc-ha-server`'s own address) through a designation during a pause and a
//! resign (SIGTERM) with slow requests in flight.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ha_servers::{HaServer, Probe, Prober};
use common::{run_command, runtime, zk};
use zoorpc::registry::{MasterElection, MasterJob, Session, SessionConfig};
use zoorpc_testkit::{ZkProxy, unique_path};

/// How often the prober calls each server (the defect's report called every 5 ms).
const PROBE_EVERY: Duration = Duration::from_millis(5);

/// The programs' default session timeout: a lease (6 s) much longer than the pauses and the
/// slow requests below, so the old master is master, within its lease, when it resumes.
const SESSION_TIMEOUT_MS: u64 = 10_000;

/// Whether `server` answers as master a call sent after `since` (waiting at most 10 s).
fn answered_as_master(
    rt: &tokio::runtime::Runtime,
    prober: &Prober,
    server: usize,
    since: Instant,
) -> bool {
    rt.block_on(prober.wait_for(Duration::from_secs(10), |p| {
        p.server == server && p.sent > since && p.is_master()
    }))
}

/// Calls answered as master by `old` and received after the first call answered as master by
/// another server (`new`) came back: the old master still answering as master while the new one
/// already does.
fn answered_after_the_new_master(probes: &[Probe], old: usize, since: Instant) -> Vec<Probe> {
    let Some(first) = probes
        .iter()
        .filter(|p| p.server != old && p.is_master() && p.sent > since)
        .map(|p| p.received)
        .min()
    else {
        return Vec::new();
    };
    probes
        .iter()
        .filter(|p| p.server == old && p.is_master() && p.received > first)
        .cloned()
        .collect()
}

/// A `zoorpc-ha-server` with the programs' session timeout, talking to ZooKeeper at
/// `connect`.
fn spawn(connect: &str, path: &str, extra: &[&str]) -> HaServer {
    HaServer::spawn_with_timeout(connect, path, SESSION_TIMEOUT_MS, extra)
}

/// `zoorpc designate <path> <address>`, as an operator runs it.
fn designate(connect: &str, path: &str, address: &str) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args(["designate", "--zk", connect, path, address]);
    let (code, out, err) = run_command(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(0), "designate {address}: {out} {err}");
}

/// The master paused (SIGSTOP) and designated away meanwhile (`zoorpc designate`), then resumed:
/// it is master within its lease until its campaign reads the designation, so it admits the
/// calls queued at it and those that keep coming; its handler is slow (1 s), so they are still
/// running when it hands over. (Its link to ZooKeeper stays silent from the pause until one of
/// those calls was answered, so that it does admit them before it hears of the designation: on
/// a quiet machine that order comes from the scheduler alone.) Its designee, whose handler
/// answers at once, must answer as master only after the old master's last answer as master.
#[test]
fn a_master_designated_away_during_a_pause_answers_nothing_as_master_after_its_designee() {
    let path = unique_path("ha-drain-designate");
    let connect = zk().connect_string();
    let rt = runtime();
    let proxy = rt
        .block_on(ZkProxy::start(connect.parse().expect("a socket address")))
        .expect("a ZooKeeper proxy");
    // Master-only jobs too, as in the report (their runs are ZooKeeper writes at each resume).
    let job = ["--job-interval-ms", "200"];
    let mut old = spawn(
        &proxy.addr().to_string(),
        &path,
        &[&job[..], &["--delay-ms", "1000"]].concat(),
    );
    old.wait_master(Duration::from_secs(20));
    let mut new = spawn(&connect, &path, &job);
    new.wait_standby_of(&old.address, Duration::from_secs(10));
    let addresses = vec![old.address.clone(), new.address.clone()];
    let prober = rt.block_on(Prober::start(&addresses, PROBE_EVERY));

    let mut rounds = Vec::new();
    for round in 0..3 {
        let serving = Instant::now();
        assert!(
            answered_as_master(&rt, &prober, 0, serving),
            "round {round}: {} does not answer as master",
            addresses[0]
        );
        old.process.pause().expect("pause the master");
        proxy.cut();
        let paused = Instant::now();
        designate(&connect, &path, &addresses[1]);
        // The stall itself (the fault), long enough for calls to queue at the paused master.
        std::thread::sleep(Duration::from_millis(800).saturating_sub(paused.elapsed()));
        old.process.resume().expect("resume the master");
        let resumed = Instant::now();
        assert!(
            rt.block_on(prober.wait_for(Duration::from_secs(10), |p| p.server == 0
                && p.sent > paused
                && p.sent < resumed
                && p.is_master())),
            "round {round}: no call queued at the paused master was answered by it as master"
        );
        proxy.heal();
        new.next_master(Duration::from_secs(20));
        assert!(
            answered_as_master(&rt, &prober, 1, paused),
            "round {round}: the designee never answered as master"
        );
        old.wait_standby_of(&addresses[1], Duration::from_secs(20));
        // Mastership back to the slow server for the next round (the designee answers at once:
        // nothing of it is in flight long).
        let back = Instant::now();
        designate(&connect, &path, &addresses[0]);
        old.next_master(Duration::from_secs(20));
        rounds.push((serving, paused, back));
    }
    // Every call sent is answered (or timed out) once the prober stops.
    let probes = rt.block_on(prober.stop());
    let mut late = Vec::new();
    for (round, &(serving, paused, back)) in rounds.iter().enumerate() {
        let window: Vec<Probe> = probes
            .iter()
            .filter(|p| p.sent > serving && p.sent < back)
            .cloned()
            .collect();
        late.extend(
            answered_after_the_new_master(&window, 0, paused)
                .into_iter()
                .map(|p| (round, p)),
        );
    }
    assert!(
        late.is_empty(),
        "{} calls were answered by the old master as master after its designee's first answer: \
         first {:?}",
        late.len(),
        late.first()
    );
}

/// The master resigns (SIGTERM) with slow requests in flight (its handler takes 1 s; the
/// standby's answers at once): the standby answers as master only after the old master's last
/// answer.
#[test]
fn a_resigning_master_with_slow_requests_in_flight_hands_over_only_after_they_are_answered() {
    let path = unique_path("ha-drain-resign");
    let connect = zk().connect_string();
    let mut slow = spawn(&connect, &path, &["--delay-ms", "1000"]);
    slow.wait_master(Duration::from_secs(20));
    let mut fast = spawn(&connect, &path, &[]);
    fast.wait_standby_of(&slow.address, Duration::from_secs(10));
    let addresses = vec![slow.address.clone(), fast.address.clone()];
    let rt = runtime();
    let prober = rt.block_on(Prober::start(&addresses, PROBE_EVERY));
    // Calls have been reaching the slow master for a whole second: about 200 are in flight.
    let started = Instant::now();
    assert!(
        answered_as_master(&rt, &prober, 0, started),
        "the slow master does not answer as master"
    );
    slow.process
        .signal(libc::SIGTERM)
        .expect("SIGTERM the master");
    let stopped = Instant::now();
    fast.next_master(Duration::from_secs(20));
    assert!(
        answered_as_master(&rt, &prober, 1, stopped),
        "the standby never answered as master"
    );
    slow.process
        .wait_exit(Duration::from_secs(20))
        .expect("the old master exits");
    let probes = rt.block_on(prober.stop());
    // Requests were in flight at the resign, and the old master answered them as master.
    let in_flight = probes
        .iter()
        .filter(|p| p.server == 0 && p.is_master() && p.sent < stopped && p.received > stopped)
        .count();
    assert!(
        in_flight > 0,
        "no request in flight at the resign was answered"
    );
    let late = answered_after_the_new_master(&probes, 0, stopped);
    assert!(
        late.is_empty(),
        "{} of {in_flight} calls in flight at the resign were answered by the old master after \
         the new master's first answer: first {:?}",
        late.len(),
        late.first()
    );
}

/// A session of its own and a contender in it with `address`.
async fn contender(connect: &str, path: &str, address: &str) -> (Session, MasterElection) {
    let session = Session::connect(SessionConfig::new(connect))
        .await
        .expect("a session");
    let election = MasterElection::join(&session, path, address)
        .await
        .expect("join");
    (session, election)
}

/// Records when it is dropped: the end of a job run.
struct EndOfRun(Arc<Mutex<Option<Instant>>>);

impl Drop for EndOfRun {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
}

/// A master-job run in progress when its master is designated away (a run that blocks its
/// thread between awaits, so its cancellation takes a while) ends before the designee is
/// master: the hand-over waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_job_run_in_progress_ends_before_its_master_hands_over() {
    let path = unique_path("ha-drain-job");
    let connect = zk().connect_string();
    let (_session_a, a) = contender(&connect, &path, "127.0.0.1:1").await;
    assert!(a.is_master());
    let (session_b, b) = contender(&connect, &path, "127.0.0.1:2").await;
    let mut b_changes = b.changes();
    let ended = Arc::new(Mutex::new(None));
    let (started_tx, mut started) = tokio::sync::watch::channel(false);
    let run_ended = ended.clone();
    let _job = MasterJob::start(&a, "drain", Duration::from_millis(100), move |_run| {
        let (ended, started) = (run_ended.clone(), started_tx.clone());
        async move {
            let _end = EndOfRun(ended);
            started.send_replace(true);
            loop {
                // Work that does not yield for a while: a cancellation waits for it.
                std::thread::sleep(Duration::from_millis(100));
                tokio::task::yield_now().await;
            }
        }
    })
    .expect("a job");
    tokio::time::timeout(Duration::from_secs(10), started.wait_for(|s| *s))
        .await
        .expect("the job runs")
        .expect("the job runs");
    zoorpc::registry::designate(&session_b, &path, "127.0.0.1:2")
        .await
        .expect("designate");
    let took_over = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(change) = b_changes.next().await {
            if change.role.is_master() {
                return change.at;
            }
        }
        panic!("the designee left");
    })
    .await
    .expect("the designee takes over");
    let ended = *ended.lock().unwrap_or_else(|p| p.into_inner());
    assert!(
        ended.is_some_and(|ended| ended < took_over),
        "the designee was master while the old master's job run was still running (the run \
         ended at {ended:?}, the designee master at {took_over:?})"
    );
}
