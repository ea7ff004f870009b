//! Master-only jobs end to end: runs only on the master, numbered continuously across
//! failovers, claimed in ZooKeeper with fenced writes, stopped when mastership is lost.

use crate::common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::zk;
use tokio::sync::watch;
use zoorpc::registry::master_job::{read_record, record_path};
use zoorpc::registry::{JobRun, MasterElection, MasterJob, Role, Session, SessionConfig};
use zoorpc_testkit::ZkProxy;
use zoorpc_testkit::unique_path;

const SESSION_TIMEOUT: Duration = Duration::from_millis(1000);
const INTERVAL: Duration = Duration::from_millis(100);

/// One run as the job saw it: which contender, the run, when it started.
#[derive(Clone, Debug)]
struct Ran {
    who: &'static str,
    epoch: i64,
    seq: u64,
    at: Instant,
}

#[derive(Clone)]
struct Runs {
    runs: Arc<Mutex<Vec<Ran>>>,
    count: Arc<watch::Sender<usize>>,
}

impl Runs {
    fn new() -> Runs {
        Runs {
            runs: Arc::default(),
            count: Arc::new(watch::channel(0).0),
        }
    }

    fn record(&self, who: &'static str, run: &JobRun) {
        let mut runs = self.runs.lock().unwrap();
        runs.push(Ran {
            who,
            epoch: run.epoch,
            seq: run.seq,
            at: Instant::now(),
        });
        self.count.send_replace(runs.len());
    }

    fn all(&self) -> Vec<Ran> {
        self.runs.lock().unwrap().clone()
    }

    /// Waits until `who` has run `n` more times than it had at the call.
    async fn wait_more(&self, who: &str, n: usize, timeout: Duration) {
        let of = |runs: &Runs| runs.all().iter().filter(|r| r.who == who).count();
        let target = of(self) + n;
        let mut count = self.count.subscribe();
        tokio::time::timeout(timeout, async {
            while of(self) < target {
                count.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{who} did not run {n} more times within {timeout:?}"));
    }
}

/// A contender whose session goes through its own proxy, so it can be partitioned.
struct Contender {
    proxy: ZkProxy,
    election: MasterElection,
    _job: MasterJob,
}

impl Contender {
    async fn join(zk: SocketAddr, path: &str, who: &'static str, runs: &Runs) -> Contender {
        let proxy = ZkProxy::start(zk).await.unwrap();
        let session = Session::connect(
            SessionConfig::new(proxy.addr().to_string()).session_timeout(SESSION_TIMEOUT),
        )
        .await
        .unwrap();
        let election = MasterElection::join(&session, path, who).await.unwrap();
        let runs = runs.clone();
        let job = MasterJob::start(&election, "tick", INTERVAL, move |run| {
            runs.record(who, &run);
            async {}
        })
        .unwrap();
        Contender {
            proxy,
            election,
            _job: job,
        }
    }

    async fn wait_master(&self, timeout: Duration) -> i64 {
        match self.election.wait_for(timeout, Role::is_master).await {
            Some(Role::Master { epoch }) => epoch,
            other => panic!("{} not master: {other:?}", self.election.address()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_runs_on_the_master_only_and_failovers_neither_repeat_nor_skip_more_than_one() {
    let path = unique_path("job");
    let zk_addr: SocketAddr = zk().connect_string().parse().unwrap();
    let runs = Runs::new();
    let a = Contender::join(zk_addr, &path, "a", &runs).await;
    let epoch_a = a.wait_master(Duration::from_secs(3)).await;
    let b = Contender::join(zk_addr, &path, "b", &runs).await;
    assert_eq!(b.election.role(), Role::Standby { master: "a".into() });
    runs.wait_more("a", 5, Duration::from_secs(5)).await;

    // Failover 1: a graceful resign.
    let a_left = Instant::now();
    a.election.resign().await.unwrap();
    let epoch_b = b.wait_master(Duration::from_secs(3)).await;
    assert!(epoch_b > epoch_a);
    runs.wait_more("b", 5, Duration::from_secs(5)).await;

    // Failover 2: B is cut off from ZooKeeper; its session expires; C takes over.
    let c = Contender::join(zk_addr, &path, "c", &runs).await;
    let mut b_changes = b.election.changes();
    b.proxy.cut();
    let epoch_c = c.wait_master(Duration::from_secs(5)).await;
    assert!(epoch_c > epoch_b);
    runs.wait_more("c", 5, Duration::from_secs(5)).await;
    let b_stepped_down = std::iter::from_fn(|| b_changes.try_next())
        .find(|ch| !ch.role.is_master())
        .expect("b stepped down")
        .at;

    let all = runs.all();
    // Each contender ran under its own epoch only, and not after it lost mastership (one
    // interval of slack: a run may have been claimed just before).
    for ran in &all {
        let (epoch, lost) = match ran.who {
            "a" => (epoch_a, Some(a_left)),
            "b" => (epoch_b, Some(b_stepped_down)),
            _ => (epoch_c, None),
        };
        assert_eq!(ran.epoch, epoch, "{ran:?}");
        if let Some(lost) = lost {
            assert!(
                ran.at <= lost + INTERVAL,
                "{ran:?} ran {:?} after losing mastership",
                ran.at - lost
            );
        }
    }
    // Numbered on across both failovers: never repeated, at most one skipped at a failover.
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(seqs[0], 1, "{seqs:?}");
    for (pair, who) in seqs.windows(2).zip(all.windows(2)) {
        let step = pair[1] as i64 - pair[0] as i64;
        if who[0].who == who[1].who {
            assert_eq!(step, 1, "{seqs:?}");
        } else {
            assert!(step == 1 || step == 2, "failover {seqs:?}");
        }
    }
    // Runs stay about an interval apart across a failover too (not run at once twice).
    for pair in all.windows(2) {
        if pair[0].who != pair[1].who {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= INTERVAL / 2, "{pair:?} only {gap:?} apart");
        }
    }
    // The record holds the last claimed run.
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let record = read_record(&session, &record_path(&path, "tick"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.epoch, epoch_c);
    assert!(record.seq >= all.last().unwrap().seq);
    b.proxy.heal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_progress_is_cancelled_when_mastership_is_lost() {
    let path = unique_path("job-cancel");
    let zk_addr: SocketAddr = zk().connect_string().parse().unwrap();
    let proxy = ZkProxy::start(zk_addr).await.unwrap();
    let session = Session::connect(
        SessionConfig::new(proxy.addr().to_string()).session_timeout(SESSION_TIMEOUT),
    )
    .await
    .unwrap();
    let a = MasterElection::join(&session, &path, "a").await.unwrap();
    assert!(a.is_master());

    /// Records when it is dropped: the job's future was cancelled.
    struct Guard(watch::Sender<Option<Instant>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.send_replace(Some(Instant::now()));
        }
    }
    let (started_tx, mut started) = watch::channel(None::<u64>);
    let (dropped_tx, mut dropped) = watch::channel(None::<Instant>);
    let dropped_tx = Arc::new(dropped_tx);
    let _job = MasterJob::start(&a, "slow", INTERVAL, move |run| {
        let guard = Guard(watch::Sender::clone(&dropped_tx));
        started_tx.send_replace(Some(run.seq));
        async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    })
    .unwrap();
    started
        .wait_for(|s| s.is_some())
        .await
        .expect("the run started");
    let mut changes = a.changes();

    proxy.cut();
    let lost = loop {
        let change = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a steps down when cut off")
            .unwrap();
        if !change.role.is_master() {
            break change.at;
        }
    };
    let cancelled = *tokio::time::timeout(INTERVAL, dropped.wait_for(|d| d.is_some()))
        .await
        .expect("the run was not cancelled within one interval")
        .unwrap();
    let cancelled = cancelled.unwrap();
    assert!(cancelled >= lost);
    assert!(cancelled - lost <= INTERVAL, "{:?}", cancelled - lost);
    proxy.heal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_keeps_running_when_the_election_companion_is_deleted_or_recreated() {
    let path = unique_path("job-tampered");
    let companion = zoorpc::registry::election::companion_path(&path);
    let zk_addr: SocketAddr = zk().connect_string().parse().unwrap();
    let runs = Runs::new();
    let a = Contender::join(zk_addr, &path, "a", &runs).await;
    let first = a.wait_master(Duration::from_secs(3)).await;
    runs.wait_more("a", 3, Duration::from_secs(5)).await;
    let raw = zookeeper_client::Client::connect(&zk().connect_string())
        .await
        .unwrap();

    raw.delete(&companion, None).await.unwrap();
    runs.wait_more("a", 3, Duration::from_secs(5)).await;
    let second = a.election.role().epoch().expect("a is master");
    assert!(second > first, "epoch {second} <= {first}");

    // Re-created by hand.
    raw.delete(&companion, None).await.unwrap();
    let created = raw
        .create(
            &companion,
            b"",
            &zookeeper_client::CreateMode::Persistent
                .with_acls(zookeeper_client::Acls::anyone_all()),
        )
        .await;
    assert!(
        matches!(created, Ok(_) | Err(zookeeper_client::Error::NodeExists)),
        "{created:?}"
    );
    runs.wait_more("a", 3, Duration::from_secs(5)).await;
    let third = a.election.role().epoch().expect("a is master");
    assert!(third > second, "epoch {third} <= {second}");

    // Numbered on without repeats; each run under the epoch that was current.
    let all = runs.all();
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(
        all.iter()
            .all(|r| [first, second, third].contains(&r.epoch)),
        "{all:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_wiped_zookeeper_the_running_master_numbers_its_runs_on() {
    use zoorpc_testkit::ZkServer;
    let mut server = ZkServer::start().expect("own ZooKeeper");
    let path = unique_path("job-wiped");
    let runs = Runs::new();
    let session = Session::connect(
        SessionConfig::new(server.connect_string()).session_timeout(SESSION_TIMEOUT),
    )
    .await
    .unwrap();
    let election = MasterElection::join(&session, &path, "a").await.unwrap();
    let before = election.role().epoch().expect("a is master");
    let recorder = runs.clone();
    let _job = MasterJob::start(&election, "tick", INTERVAL, move |run| {
        recorder.record("a", &run);
        async {}
    })
    .unwrap();
    runs.wait_more("a", 5, Duration::from_secs(5)).await;

    // The ensemble loses its data: same address, empty data directory.
    server.kill();
    let data = server.dir().join("data");
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let wiped_at = runs.all().len();
    server.restart().expect("restart");

    // A new session, master again (a new history: a smaller epoch), and the runs go on.
    runs.wait_more("a", 3, Duration::from_secs(30)).await;
    let all = runs.all();
    // Epochs are zxids of the new history: they start again low (here as low as before).
    let after = all.last().unwrap().epoch;
    assert!(
        after <= before + 2,
        "epoch {after} after the wipe, {before} before"
    );
    assert_ne!(session.status().generation, 0, "no new session: not wiped?");
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "seq went back after the wipe (at run {wiped_at}): {seqs:?}"
    );
}

/// A job interval under `MasterJob::MIN_INTERVAL` is refused (zero used to run about 400 fenced
/// writes a second); the floor itself is accepted.
#[tokio::test]
async fn job_intervals_below_the_floor_are_refused() {
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let path = format!("{}/Job:1.0.0", unique_path("job-floor"));
    let election = MasterElection::join(&session, &path, "a").await.unwrap();
    for interval in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(99),
    ] {
        let err = MasterJob::start(&election, "floor", interval, |_| async {}).unwrap_err();
        assert!(
            matches!(
                err,
                zoorpc::registry::Error::InvalidSetting {
                    setting: "job interval",
                    ..
                }
            ),
            "{interval:?}: {err}"
        );
        assert!(err.to_string().contains("at least 100ms"), "{err}");
    }
    let job = MasterJob::start(&election, "floor", MasterJob::MIN_INTERVAL, |_| async {});
    assert!(job.is_ok());
}
