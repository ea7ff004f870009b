//! A master-only job's numbering survives an operator deleting its record
//! (`<path>.jobs/<name>`) before mastership moves: the new master reads the floor
//! (`<path>.floor/<name>`) and numbers on, never running a `seq` an earlier master ran.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::zk;
use tokio::sync::watch;
use zoorpc::registry::master_job::{floor_path, read_record, record_path};
use zoorpc::registry::{MasterElection, MasterJob, Role, Session, SessionConfig};
use zoorpc_testkit::unique_path;

const INTERVAL: Duration = Duration::from_millis(100);

/// Every run as (contender, seq), and a count to wait on.
#[derive(Clone)]
struct Runs {
    runs: Arc<Mutex<Vec<(&'static str, u64)>>>,
    count: Arc<watch::Sender<usize>>,
}

impl Runs {
    fn start(election: &MasterElection, who: &'static str, runs: &Runs) -> MasterJob {
        let runs = runs.clone();
        MasterJob::start(election, "tick", INTERVAL, move |run| {
            let mut all = runs.runs.lock().unwrap();
            all.push((who, run.seq));
            runs.count.send_replace(all.len());
            async {}
        })
        .unwrap()
    }

    fn of(&self, who: &str) -> Vec<u64> {
        let all = self.runs.lock().unwrap();
        all.iter().filter(|r| r.0 == who).map(|r| r.1).collect()
    }

    async fn wait_runs(&self, who: &str, n: usize) {
        let mut count = self.count.subscribe();
        tokio::time::timeout(Duration::from_secs(10), async {
            while self.of(who).len() < n {
                count.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{who} did not run {n} times within 10 s"));
    }
}

async fn contender(path: &str, who: &'static str) -> (Session, MasterElection) {
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let election = MasterElection::join(&session, path, who).await.unwrap();
    (session, election)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_deleted_by_hand_before_a_failover_does_not_restart_the_numbering() {
    let path = unique_path("job-floor");
    let runs = Runs {
        runs: Arc::default(),
        count: Arc::new(watch::channel(0).0),
    };
    let (_a_session, a) = contender(&path, "a").await;
    assert!(a.is_master());
    let a_job = Runs::start(&a, "a", &runs);
    let (_b_session, b) = contender(&path, "b").await;
    let _b_job = Runs::start(&b, "b", &runs);
    runs.wait_runs("a", 4).await;

    // A stops its job (no claim can re-create the record), the operator deletes the record,
    // then mastership moves to B.
    drop(a_job);
    let operator = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let record = record_path(&path, "tick");
    operator.client().delete(&record, None).await.unwrap();
    a.resign().await.unwrap();
    b.wait_for(Duration::from_secs(5), Role::is_master)
        .await
        .expect("b master after a resigned");
    runs.wait_runs("b", 2).await;

    let (ran_a, ran_b) = (runs.of("a"), runs.of("b"));
    let last_a = *ran_a.iter().max().unwrap();
    assert!(
        ran_b.iter().all(|&seq| seq > last_a),
        "b ran seqs an earlier master ran: a {ran_a:?}, b {ran_b:?}"
    );
    assert_eq!(
        ran_b[0],
        last_a + 1,
        "b skipped runs: a {ran_a:?}, b {ran_b:?}"
    );
    // Both nodes hold B's claims again.
    let floor = read_record(&operator, &floor_path(&path, "tick"))
        .await
        .unwrap()
        .expect("a floor");
    let recorded = read_record(&operator, &record)
        .await
        .unwrap()
        .expect("a record");
    assert!(floor.seq >= recorded.seq && recorded.seq > last_a);
}
