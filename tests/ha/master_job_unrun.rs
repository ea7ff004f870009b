//! A master that claimed a run and did not start it, and is master again under the same epoch,
//! runs it then: no other process can have run it (a run follows its claim, and every claim is
//! fenced on the epoch, which only a takeover or a repair changes), so skipping it would be a
//! gap with no change of master to explain it.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::zk;
use tokio::sync::watch;
use zoorpc::registry::master_job::{read_record, record_path};
use zoorpc::registry::{MasterElection, MasterJob, Role, Session, SessionConfig};
use zoorpc_testkit::{Request, ZkProxy, unique_path};

/// Long enough that the session outlives the reconnect after the lost reply by far (the client
/// gives up on a silent connection after two fifths of it).
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
const INTERVAL: Duration = Duration::from_millis(100);
/// Generous: the machine may be loaded.
const WAIT: Duration = Duration::from_secs(20);

/// Every run as (epoch, seq), in the order they started.
type Runs = watch::Receiver<Vec<(i64, u64)>>;

async fn wait_runs(runs: &mut Runs, n: usize) {
    let waited = tokio::time::timeout(WAIT, runs.wait_for(|r| r.len() >= n))
        .await
        .map(|seen| seen.is_ok());
    assert!(
        matches!(waited, Ok(true)),
        "fewer than {n} runs within {WAIT:?}: {:?}",
        *runs.borrow()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_reply_was_lost_is_run_by_its_master_under_the_same_epoch() {
    let path = unique_path("job-unrun");
    let zk_addr: SocketAddr = zk().connect_string().parse().expect("a socket address");
    let proxy = ZkProxy::start(zk_addr).await.expect("a ZooKeeper proxy");
    let session = Session::connect(
        SessionConfig::new(proxy.addr().to_string()).session_timeout(SESSION_TIMEOUT),
    )
    .await
    .expect("a session");
    let election = MasterElection::join(&session, &path, "a")
        .await
        .expect("join");
    let epoch = match election.wait_for(WAIT, Role::is_master).await {
        Some(Role::Master { epoch }) => epoch,
        other => panic!("the only contender is not master: {other:?}"),
    };
    let (runs_tx, mut runs) = watch::channel(Vec::new());
    let _job = MasterJob::start(&election, "tick", INTERVAL, move |run| {
        runs_tx.send_modify(|r| r.push((run.epoch, run.seq)));
        async {}
    })
    .expect("the job starts");
    wait_runs(&mut runs, 3).await;

    // The next claim's second write (the record) reaches ZooKeeper; its reply does not. The
    // client gives up on the connection and reconnects in the same session; the contender
    // steps down meanwhile and is master again under the same epoch.
    let mut changes = election.changes();
    let record = record_path(&path, "tick");
    proxy.lose_reply_to_next_naming(Request::Multi, &record);
    let mut stepped_down = false;
    let back = tokio::time::timeout(WAIT, async {
        while let Some(change) = changes.next().await {
            match change.role {
                Role::Master { epoch } if stepped_down => return epoch,
                role if !role.is_master() => stepped_down = true,
                _ => {}
            }
        }
        panic!("the election ended");
    })
    .await
    .unwrap_or_else(|_| panic!("not master again within {WAIT:?}: {}", election.role()));
    assert_eq!(proxy.lost_replies(), 1, "no claim's reply was lost");
    assert_eq!(
        back, epoch,
        "mastership moved: this test needs the same epoch"
    );
    assert_eq!(session.status().generation, 0, "the session was replaced");

    let seen = runs.borrow().len();
    wait_runs(&mut runs, seen + 3).await;
    let ran = runs.borrow().clone();
    assert!(ran.iter().all(|r| r.0 == epoch), "{ran:?}");
    let seqs: Vec<u64> = ran.iter().map(|r| r.1).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "one master under one epoch skipped (or repeated) a run it had claimed"
    );
    let operator = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .expect("a session");
    let claimed = read_record(&operator, &record)
        .await
        .expect("read the record")
        .expect("a record");
    assert!(claimed.seq >= *seqs.last().expect("runs"), "{claimed:?}");
}
