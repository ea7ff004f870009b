//! A vacancy left by the end of its holder's session, taken as soon as that end is proven,
//! whatever else changes among the participants meanwhile; never on what a hand deleted.

use super::*;

use zoorpc::registry::election::participant_path;

/// How soon after the master's session ended a contender must be master: well under
/// `MASTER_TIMEOUT`, the wait of a vacancy whose holder's end is not proven.
const TAKEN_WITHIN: Duration = Duration::from_secs(3);

/// Asserts that `election` becomes master within [`TAKEN_WITHIN`] of `since`, when the
/// master's session ended (or, cut off, the contender could first hear of it).
async fn assert_taken_at_once(election: &MasterElection, since: Instant) {
    let role = election.wait_for(MASTER_TIMEOUT * 2, Role::is_master).await;
    let after = since.elapsed();
    assert!(
        role.is_some(),
        "{} is not master {after:?} after the master's session ended: {}",
        election.address(),
        election.role()
    );
    assert!(
        after <= TAKEN_WITHIN,
        "{} took over {after:?} after the master's session ended (within {TAKEN_WITHIN:?} \
         expected): it waited out the ended session's timeout ({MASTER_TIMEOUT:?}) again",
        election.address()
    );
}

/// The master's session ends (ZooKeeper closes it, removing its master node and its participant
/// node in one transaction) while the master hears nothing (a paused or cut-off process), and a
/// contender joins right after (a process restarted on its port, as in `bench takeover`): its
/// participant node's creation is the last change among the participants, after the one that
/// removed the master's. Nobody deleted anything by hand, so the newcomer takes over at once,
/// not one more session timeout later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vacancy_left_by_an_expiry_is_taken_at_once_by_a_contender_that_joins_after_it() {
    let path = unique_path("expiry-joined");
    let connect = zk().connect_string();
    let a = CutOffMaster::start(&connect, &path).await;
    // Cut off: A hears nothing of its session's end, and does not join again in a new one.
    a.proxy.cut();
    expire_session(&connect, a.session.client().session().clone())
        .await
        .expect("expire the master's session");
    let expired = Instant::now();

    let b = Contender::join(&connect, &path, &address(1)).await;
    assert_taken_at_once(&b.election, expired).await;
}

/// The same, the last change among the participants being another one's end: a standby cut
/// off from ZooKeeper while the master's session ends, then another participant's (a process
/// killed earlier, whose session ZooKeeper closes in the same moment, as in `bench takeover`).
/// Back in touch, the standby takes over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vacancy_left_by_an_expiry_is_taken_at_once_though_another_participant_left_after_it() {
    let path = unique_path("expiry-left");
    let connect = zk().connect_string();
    let a = CutOffMaster::start(&connect, &path).await;
    let b_proxy = ZkProxy::start(connect.parse().expect("a socket address"))
        .await
        .expect("a ZooKeeper proxy");
    let b_session = session(&b_proxy.addr().to_string(), MASTER_TIMEOUT).await;
    let b = MasterElection::join(&b_session, &path, &address(1))
        .await
        .expect("join");
    assert!(
        b.wait_for(SETTLE, |r| *r == Role::Standby { master: address(0) })
            .await
            .is_some(),
        "b does not stand by: {}",
        b.role()
    );
    // Another participant, in its own session (a process killed earlier, its session not
    // ended yet): a raw client holding a participant node, so nothing joins again after.
    let c = raw_client(&connect).await;
    let c_node = participant_path(&path, c.session_id().0);
    c.create(
        &c_node,
        address(2).as_bytes(),
        &zookeeper_client::CreateMode::Ephemeral.with_acls(zookeeper_client::Acls::anyone_all()),
    )
    .await
    .unwrap_or_else(|e| panic!("create {c_node}: {e}"));

    a.proxy.cut();
    b_proxy.cut();
    expire_session(&connect, a.session.client().session().clone())
        .await
        .expect("expire the master's session");
    expire_session(&connect, c.session().clone())
        .await
        .expect("expire the other participant's session");
    // Timed from the moment the standby can hear of both ends (expiring a session takes a
    // varying number of attempts: its own client races to keep it).
    b_proxy.heal();
    let healed = Instant::now();

    assert_taken_at_once(&b, healed).await;
}

/// What a hand does is no proof: the stalled master's participant node, its taker's two marks
/// and its master node deleted one by one (`zkCli.sh delete`), the master alive but cut off. A
/// contender joining then waits the master's session timeout out before it takes over (the
/// master's lease has ended by then), never at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vacancy_whose_takers_nodes_were_deleted_by_hand_is_taken_only_after_its_timeout() {
    let path = unique_path("hand-deleted");
    let connect = zk().connect_string();
    let a = CutOffMaster::start(&connect, &path).await;
    let a_id = a.session.session_id();
    a.proxy.cut();
    let raw = raw_client(&connect).await;
    let mark = |n: u8| format!("{path}.participants/takers/{a_id:016x}-{n}/mark");
    for node in [
        participant_path(&path, a_id),
        mark(1),
        mark(2),
        path.clone(),
    ] {
        raw.delete(&node, None)
            .await
            .unwrap_or_else(|e| panic!("delete {node}: {e}"));
    }
    let deleted = Instant::now();

    let b = Contender::join(&connect, &path, &address(1)).await;
    assert_taken_only_after_the_timeout(&b.election, deleted).await;
    drop(a.election);
}
