//! An operator's `zkCli.sh` on the election's own nodes while the master is stalled (cut off
//! from ZooKeeper, its session alive): whatever the hand deletes or writes, the standby does
//! not take over before the master's session timeout has passed since the deletes (the
//! master's lease has surely ended by then), and takes over after it.

use super::*;

use zoorpc::registry::election::participants::{parse_taker, released_record};
use zoorpc::registry::election::{participant_path, participants_path};

/// A master cut off from ZooKeeper through its own proxy ([`CutOffMaster`], its session timeout
/// [`MASTER_TIMEOUT`]), its session kept alive by a twin client (as a master stalled, or
/// starved, while ZooKeeper still hears from it), and a standby of it whose own session timeout
/// ([`SESSION_TIMEOUT`]) is shorter: the wait must come from what it noted of the master.
struct Stalled {
    master: CutOffMaster,
    _twin: zookeeper_client::Client,
    standby: Contender,
    path: String,
    raw: zookeeper_client::Client,
}

impl Stalled {
    async fn start(tag: &str) -> Stalled {
        let path = unique_path(tag);
        let connect = zk().connect_string();
        let master = CutOffMaster::start(&connect, &path).await;
        let standby = Contender::join(&connect, &path, &address(1)).await;
        standby.wait_standby_of(&address(0), SETTLE).await;
        master.proxy.cut();
        // The master's own client cannot reach ZooKeeper: the twin takes its session over
        // and keeps it alive.
        let joining = zookeeper_client::Client::connector()
            .with_session(master.session.client().session().clone())
            .with_session_timeout(MASTER_TIMEOUT)
            .connect(&connect);
        let twin = tokio::time::timeout(SETTLE, joining)
            .await
            .expect("the twin joins the master's session in time")
            .expect("the twin joins the master's session");
        Stalled {
            master,
            _twin: twin,
            standby,
            path,
            raw: raw_client(&connect).await,
        }
    }

    /// Asserts that the standby becomes master, not before [`MASTER_TIMEOUT`] after `deleted`.
    async fn assert_taken_only_after_the_timeout(self, deleted: Instant) {
        assert_taken_only_after_the_timeout(&self.standby.election, deleted).await;
        self.master.proxy.heal();
        drop(self.master.election);
    }

    async fn delete(&self, node: &str) {
        self.raw
            .delete(node, None)
            .await
            .unwrap_or_else(|e| panic!("delete {node}: {e}"));
    }

    async fn set(&self, node: &str, data: &[u8]) {
        self.raw
            .set_data(node, data, None)
            .await
            .unwrap_or_else(|e| panic!("set {node}: {e}"));
    }
}

/// `zkCli.sh deleteall <node>`: the node and every descendant, deepest first, in one multi-op
/// (as `ZKUtil.deleteRecursive` batches them).
async fn delete_all(raw: &zookeeper_client::Client, node: String) {
    let mut order = Vec::new();
    let mut todo = vec![node];
    while let Some(node) = todo.pop() {
        let children = raw
            .list_children(&node)
            .await
            .unwrap_or_else(|e| panic!("list {node}: {e}"));
        todo.extend(children.iter().map(|c| format!("{node}/{c}")));
        order.push(node);
    }
    let mut writer = raw.new_multi_writer();
    for node in order.iter().rev() {
        writer
            .add_delete(node, None)
            .unwrap_or_else(|e| panic!("delete {node}: {e}"));
    }
    writer
        .commit()
        .await
        .unwrap_or_else(|e| panic!("deleteall {order:?}: {e}"));
}

/// `deleteall <path>.participants`, then `delete <path>`: the taker record and both of the
/// master's marks are gone with their parents, which proves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleteall_of_the_participants_is_no_proof_that_the_stalled_master_ended() {
    let s = Stalled::start("op-deleteall").await;
    delete_all(&s.raw, participants_path(&s.path)).await;
    s.delete(&s.path).await;
    let deleted = Instant::now();
    s.assert_taken_only_after_the_timeout(deleted).await;
}

/// A forged taker record naming another session with a 1 ms timeout, the master's participant
/// node deleted, then the master node: the record is nobody's word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_taker_record_does_not_shorten_the_wait_for_the_stalled_master() {
    let s = Stalled::start("op-forged").await;
    let master = s.master.session.session_id();
    s.set(&participants_path(&s.path), b"0100000000000042 1")
        .await;
    s.delete(&participant_path(&s.path, master)).await;
    s.delete(&s.path).await;
    let deleted = Instant::now();
    s.assert_taken_only_after_the_timeout(deleted).await;
}

/// `set <path>.epoch x` (or the standby's own address), then `delete <path>`: a companion
/// written by a hand is neither a step-down nor a designation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_written_companion_is_no_step_down_of_the_stalled_master() {
    for (round, data) in [b"x".to_vec(), address(1).into_bytes()]
        .into_iter()
        .enumerate()
    {
        let s = Stalled::start(&format!("op-companion-{round}")).await;
        s.set(&companion_path(&s.path), &data).await;
        s.delete(&s.path).await;
        let deleted = Instant::now();
        s.assert_taken_only_after_the_timeout(deleted).await;
    }
}

/// `set <path>.participants "<master> released"`, `set <path>.epoch` (empty, or the standby's
/// own address), then `delete <path>`: each node written once, as the master's step-down writes
/// them, but in three transactions. The standby's takeover in the same round trip as its reads
/// commits (the versions are a step-down's), and the reads show no step-down: it does not
/// serve, gives the node back on the master's behalf (the record names the master again), and
/// waits as for any vacancy nobody announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_step_down_taken_in_one_round_trip_is_given_back_unserved() {
    for (round, designee) in [String::new(), address(1)].into_iter().enumerate() {
        let s = Stalled::start(&format!("op-forged-release-{round}")).await;
        let master = s.master.session.session_id();
        let mut changes = s.standby.election.changes();
        s.set(
            &participants_path(&s.path),
            released_record(master).as_bytes(),
        )
        .await;
        s.set(&companion_path(&s.path), designee.as_bytes()).await;
        s.delete(&s.path).await;
        let deleted = Instant::now();
        // The pipelined takeover committed and was given back: the record names the master.
        let record = participants_path(&s.path);
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let (data, _, written) = s
                .raw
                .get_and_watch_data(&record)
                .await
                .expect("read the record");
            if parse_taker(&data).is_some_and(|(taker, _)| taker == master) {
                break;
            }
            tokio::time::timeout_at(deadline, written.changed())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "round {round}: the record was not given back to the master: {:?}",
                        String::from_utf8_lossy(&data)
                    )
                });
        }
        while let Some(change) = changes.try_next() {
            assert!(
                !change.role.is_master(),
                "round {round}: the standby served a forged step-down: {change:?}"
            );
        }
        s.assert_taken_only_after_the_timeout(deleted).await;
    }
}

/// `delete <path>.epoch`, then `delete <path>`: the standby creates the companion again, and a
/// companion created (by anyone) is no step-down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_companion_is_no_step_down_of_the_stalled_master() {
    let s = Stalled::start("op-no-companion").await;
    s.delete(&companion_path(&s.path)).await;
    s.delete(&s.path).await;
    let deleted = Instant::now();
    s.assert_taken_only_after_the_timeout(deleted).await;
}

/// `deleteall <path>.participants`, `delete <path>`, then `create -e <path> <address>` from
/// the operator's own session, which ends: the node the hand created and its end say nothing
/// of the stalled master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_a_hand_created_in_between_is_no_proof_that_the_stalled_master_ended() {
    let s = Stalled::start("op-hand-node").await;
    delete_all(&s.raw, participants_path(&s.path)).await;
    s.delete(&s.path).await;
    let deleted = Instant::now();
    let hand = raw_client(&zk().connect_string()).await;
    let label = address(7);
    hand.create(
        &s.path,
        label.as_bytes(),
        &zookeeper_client::CreateMode::Ephemeral.with_acls(zookeeper_client::Acls::anyone_all()),
    )
    .await
    .unwrap_or_else(|e| panic!("create {}: {e}", s.path));
    s.standby.wait_standby_of(&label, SETTLE).await;
    drop(hand);
    s.assert_taken_only_after_the_timeout(deleted).await;
}
