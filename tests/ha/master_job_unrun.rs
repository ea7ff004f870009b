//! A master that claimed a run and did not start it, and is master again under the same epoch,
//! runs it then: no other process can have run it (a run follows its claim, and every claim is
//! fenced on the epoch, which only a takeover or a repair changes), so skipping it would be a
//! gap with no change of master to explain it. Two ways there: the reply to the claim is lost
//! (the client reconnects in the same session), or the contender stalls between the claim and
//! the run past its lease (as a `SIGSTOP` or CPU starvation stalls a process).

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::zk;
use tokio::sync::{oneshot, watch};
use zoorpc::registry::election::lease_for;
use zoorpc::registry::master_job::{read_record, record_path};
use zoorpc::registry::{MasterElection, MasterJob, Role, RoleChanges, Session, SessionConfig};
use zoorpc_testkit::{Request, ZkProxy, unique_path};

/// Long enough that the session outlives the reconnect after the lost reply by far (the client
/// gives up on a silent connection after two fifths of it).
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
const INTERVAL: Duration = Duration::from_millis(100);
/// Generous: the machine may be loaded.
const WAIT: Duration = Duration::from_secs(20);

/// Every run as (epoch, seq), in the order they started.
type Runs = watch::Receiver<Vec<(i64, u64)>>;

/// A contender (session through its own proxy) running the job `tick`, master.
struct Master {
    proxy: ZkProxy,
    session: Session,
    election: MasterElection,
    _job: MasterJob,
    runs: Runs,
    epoch: i64,
    record: String,
}

impl Master {
    /// The proxy and session are created on the calling runtime; the election and the job on
    /// `contender` (the calling one if `None`).
    async fn start(name: &str, contender: Option<&tokio::runtime::Handle>) -> Master {
        let path = unique_path(name);
        let zk_addr: SocketAddr = zk().connect_string().parse().expect("a socket address");
        let proxy = ZkProxy::start(zk_addr).await.expect("a ZooKeeper proxy");
        let session = Session::connect(
            SessionConfig::new(proxy.addr().to_string()).session_timeout(SESSION_TIMEOUT),
        )
        .await
        .expect("a session");
        let join = {
            let (session, path) = (session.clone(), path.clone());
            async move {
                let election = MasterElection::join(&session, &path, "a")
                    .await
                    .expect("join");
                let (runs_tx, runs) = watch::channel(Vec::new());
                let job = MasterJob::start(&election, "tick", INTERVAL, move |run| {
                    runs_tx.send_modify(|r| r.push((run.epoch, run.seq)));
                    async {}
                })
                .expect("the job starts");
                (election, job, runs)
            }
        };
        let (election, job, mut runs) = match contender {
            Some(handle) => handle.spawn(join).await.expect("joined"),
            None => join.await,
        };
        let epoch = match election.wait_for(WAIT, Role::is_master).await {
            Some(Role::Master { epoch }) => epoch,
            other => panic!("the only contender is not master: {other:?}"),
        };
        wait_runs(&mut runs, 3).await;
        Master {
            proxy,
            session,
            election,
            _job: job,
            runs,
            epoch,
            record: record_path(&path, "tick"),
        }
    }

    /// Waits until the contender has stepped down and is master again, under the same epoch,
    /// then for three more runs; asserts that every run was under that epoch, numbered on
    /// without a gap or a repeat, and that the record holds the last.
    async fn assert_back_without_a_gap(&mut self, mut changes: RoleChanges) {
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
        .unwrap_or_else(|_| panic!("not master again within {WAIT:?}: {}", self.election.role()));
        assert_eq!(
            back, self.epoch,
            "mastership moved: this test needs one epoch"
        );
        assert_eq!(
            self.session.status().generation,
            0,
            "the session was replaced"
        );

        let seen = self.runs.borrow().len();
        wait_runs(&mut self.runs, seen + 3).await;
        let ran = self.runs.borrow().clone();
        assert!(ran.iter().all(|r| r.0 == self.epoch), "{ran:?}");
        let seqs: Vec<u64> = ran.iter().map(|r| r.1).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "one master under one epoch skipped (or repeated) a run it had claimed"
        );
        let operator = Session::connect(SessionConfig::new(zk().connect_string()))
            .await
            .expect("a session");
        let claimed = read_record(&operator, &self.record)
            .await
            .expect("read the record")
            .expect("a record");
        assert!(claimed.seq >= *seqs.last().expect("runs"), "{claimed:?}");
    }
}

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
    common::init_logging();
    let mut master = Master::start("job-unrun-lost", None).await;
    // The next claim's second write (the record) reaches ZooKeeper; its reply does not. The
    // client gives up on the connection and reconnects in the same session; the contender
    // steps down meanwhile and is master again under the same epoch.
    let changes = master.election.changes();
    master
        .proxy
        .lose_reply_to_next_naming(Request::Multi, &master.record);
    master.assert_back_without_a_gap(changes).await;
    assert_eq!(master.proxy.lost_replies(), 1, "no claim's reply was lost");
}

/// The election and the job run on a runtime of one thread, which one task can stall as a
/// stopped or starved process is stalled; ZooKeeper's client (the connection, its pings) runs
/// on another, so the connection and the session live through the stall and only the lease
/// ends. The stall starts while the claim's record write is on its way (its reply held by the
/// proxy until the stall has begun).
#[test]
fn a_run_claimed_right_before_a_stall_past_the_lease_is_run_after_it_under_the_same_epoch() {
    common::init_logging();
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a runtime")
    };
    let (io, contender) = (runtime("zk-io"), runtime("contender"));
    io.block_on(async {
        let mut master = Master::start("job-unrun-stall", Some(contender.handle())).await;
        let changes = master.election.changes();
        master
            .proxy
            .hold_replies_from_next_naming(Request::Multi, &master.record);
        let held = tokio::time::timeout(WAIT, master.proxy.wait_holding()).await;
        assert!(held.is_ok(), "no claim within {WAIT:?}");
        // The fault itself, not a wait for a state: past the lease (which a renewal sent a
        // quarter lease before the stall at the earliest still covers), under the session
        // timeout.
        let stall = lease_for(SESSION_TIMEOUT) + lease_for(SESSION_TIMEOUT) / 4;
        let (stalled_tx, stalled) = oneshot::channel();
        contender.spawn(async move {
            let _ = stalled_tx.send(());
            std::thread::sleep(stall);
        });
        stalled.await.expect("the stall began");
        master.proxy.release();
        master.assert_back_without_a_gap(changes).await;
    });
}
