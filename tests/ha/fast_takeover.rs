//! The fast takeover: a standby that can prove its master's process is gone (the master's own
//! `host:port` refusing connections) takes over at once, in one multi-op that writes a new
//! epoch; a paused master (connections accepted, never answered) is left to its session; of
//! standbys racing for the same proof exactly one wins.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::zk;
use zoorpc::registry::election::FastTakeover;
use zoorpc::registry::{
    ElectionOptions, Error, Fence, MasterElection, Role, Session, SessionConfig,
};
use zoorpc_testkit::{ChildProcess, unique_path};

/// The programs' default session timeout: what takeover times are measured against.
const SESSION_TIMEOUT_MS: u64 = 10_000;

/// A `zoorpc-ha-server` process and its advertised address.
struct Server {
    process: ChildProcess,
    address: String,
}

impl Server {
    fn spawn(path: &str, session_timeout_ms: u64) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
        cmd.args([
            "--zk",
            &zk().connect_string(),
            "--path",
            path,
            "--port",
            "0",
        ])
        .args(["--session-timeout-ms", &session_timeout_ms.to_string()]);
        let mut process = ChildProcess::spawn("ha-server", cmd).expect("spawn ha server");
        let line = process
            .wait_for_line("listening ", Duration::from_secs(20))
            .expect("ha server listens");
        let address = line["listening ".len()..].to_owned();
        Server { process, address }
    }

    /// Waits for its next `role master epoch=<n>` line; the epoch.
    fn wait_master(&mut self, timeout: Duration) -> Option<i64> {
        let line = self.process.wait_for_line("role master ", timeout).ok()?;
        line.rsplit_once("epoch=")?.1.parse().ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_master_is_replaced_at_once_and_its_fence_fails() {
    let path = unique_path("fast-kill");
    let mut a = Server::spawn(&path, SESSION_TIMEOUT_MS);
    let epoch_a = a
        .wait_master(Duration::from_secs(10))
        .expect("the first server is master");
    let mut b = Server::spawn(&path, SESSION_TIMEOUT_MS);
    b.process
        .wait_for_line("role standby ", Duration::from_secs(10))
        .expect("the second server stands by");

    let killed = Instant::now();
    a.process.kill();
    let epoch_b = tokio::task::block_in_place(|| b.wait_master(Duration::from_secs(8)))
        .expect("the standby took over");
    let took = killed.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "took over after {took:?} (session timeout {SESSION_TIMEOUT_MS} ms)"
    );
    assert!(epoch_b > epoch_a);

    // The dead master's fence (from its own `role master` line) fails at once.
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let fence = Fence {
        path: path.clone(),
        address: a.address.clone(),
        epoch: epoch_a,
    };
    let written = fence
        .write(&session, &format!("{path}.out/report"), b"late")
        .await;
    assert!(
        matches!(written, Err(Error::Fenced { .. })),
        "the dead master's fenced write: {written:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigstopped_master_is_not_taken_over_before_its_session_expires() {
    let path = unique_path("fast-stop");
    let session_timeout = Duration::from_millis(4_000);
    let mut a = Server::spawn(&path, session_timeout.as_millis() as u64);
    a.wait_master(Duration::from_secs(10))
        .expect("the first server is master");
    let mut b = Server::spawn(&path, session_timeout.as_millis() as u64);
    b.process
        .wait_for_line("role standby ", Duration::from_secs(10))
        .expect("the second server stands by");

    a.process.pause().expect("SIGSTOP");
    let paused = Instant::now();
    // Connections to the paused master are accepted by its kernel: no proof, no takeover
    // before ZooKeeper expires its session.
    let early = tokio::task::block_in_place(|| b.wait_master(session_timeout * 3 / 4));
    assert_eq!(
        early,
        None,
        "the standby took over {:?} into a pause (session timeout {session_timeout:?})",
        paused.elapsed()
    );
    let later = tokio::task::block_in_place(|| b.wait_master(Duration::from_secs(20)));
    assert!(later.is_some(), "the standby never took over");
    assert!(paused.elapsed() >= session_timeout * 3 / 4);
    a.process.resume().expect("SIGCONT");
}

/// A contender whose address a listener of this test serves, with the fast takeover on.
struct Contender {
    _session: Session,
    election: MasterElection,
    listener: Option<std::net::TcpListener>,
}

async fn contender(path: &str) -> Contender {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let options = ElectionOptions {
        fast_takeover: FastTakeover::on(),
        ..ElectionOptions::default()
    };
    let election = MasterElection::join_with(&session, path, &address, options)
        .await
        .unwrap();
    Contender {
        _session: session,
        election,
        listener: Some(listener),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standbys_racing_on_the_same_proof_exactly_one_wins() {
    for round in 0..10 {
        let path = unique_path("fast-race");
        let mut master = contender(&path).await;
        assert!(master.election.is_master());
        let standbys = [contender(&path).await, contender(&path).await];
        let epoch = master.election.role().epoch().unwrap();
        let mut changes: Vec<_> = standbys.iter().map(|s| s.election.changes()).collect();
        // The master's port stops listening (its session lives on): both standbys see the
        // refusals and race.
        drop(master.listener.take());
        let wait = Duration::from_secs(5);
        tokio::select! {
            _ = standbys[0].election.wait_for(wait, Role::is_master) => {}
            _ = standbys[1].election.wait_for(wait, Role::is_master) => {}
        }
        let winners: Vec<(String, i64)> = standbys
            .iter()
            .filter_map(|s| {
                let epoch = s.election.role().epoch()?;
                Some((s.election.address().to_owned(), epoch))
            })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert!(winners[0].1 > epoch);
        // The loser names the winner; the deposed master steps down.
        let winner = winners[0].0.clone();
        for standby in &standbys {
            if standby.election.address() != winner {
                let named = standby
                    .election
                    .wait_for(Duration::from_secs(5), |r| {
                        *r == Role::Standby {
                            master: winner.clone(),
                        }
                    })
                    .await;
                assert!(
                    named.is_some(),
                    "round {round}: {}",
                    standby.election.role()
                );
            }
        }
        let stepped_down = master
            .election
            .wait_for(Duration::from_secs(5), |r| !r.is_master())
            .await;
        assert!(
            stepped_down.is_some(),
            "round {round}: the old master kept its role"
        );
        // Over the whole round, one standby ever reported master.
        let ever_master = changes
            .iter_mut()
            .map(|c| std::iter::from_fn(|| c.try_next()).any(|ch| ch.role.is_master()))
            .filter(|&was| was)
            .count();
        assert_eq!(ever_master, 1, "round {round}");
    }
}

/// Holders that never declared their address served are never deposed on refusals, however
/// long their address refuses: a foreign holder (seed 004's rule: an `EPHEMERAL` node holding an
/// address that is a label, no participant node) and a bare `MasterElection` of ours (fast
/// takeover off). Each is replaced once its session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_that_did_not_declare_their_address_served_are_never_deposed_on_refusals() {
    // Nothing listens on port 1 of loopback: every connect there is refused.
    let label = "127.0.0.1:1";

    // A foreign holder.
    let path = unique_path("fast-foreign");
    let foreign = common::raw_client(&zk().connect_string()).await;
    let persistent =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    let parent = path.rsplit_once('/').unwrap().0;
    let mut prefix = String::new();
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        prefix = format!("{prefix}/{part}");
        match foreign.create(&prefix, b"", &persistent).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(e) => panic!("create {prefix}: {e}"),
        }
    }
    let ephemeral =
        zookeeper_client::CreateMode::Ephemeral.with_acls(zookeeper_client::Acls::anyone_all());
    foreign
        .create(&path, label.as_bytes(), &ephemeral)
        .await
        .unwrap();
    let mut server = Server::spawn(&path, SESSION_TIMEOUT_MS);
    let master = tokio::task::block_in_place(|| server.wait_master(Duration::from_secs(2)));
    assert_eq!(master, None, "a foreign holder was deposed on refusals");
    drop(foreign);
    tokio::task::block_in_place(|| server.wait_master(Duration::from_secs(20)))
        .expect("taken over once the foreign session ended");

    // One of ours that did not declare its address served (fast takeover off).
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let path = unique_path("fast-undeclared");
    let bare = MasterElection::join(&session, &path, label).await.unwrap();
    assert!(bare.is_master());
    let mut server = Server::spawn(&path, SESSION_TIMEOUT_MS);
    let master = tokio::task::block_in_place(|| server.wait_master(Duration::from_secs(2)));
    assert_eq!(master, None, "an undeclared holder was deposed on refusals");
    assert!(bare.is_master());
    bare.resign().await.unwrap();
    tokio::task::block_in_place(|| server.wait_master(Duration::from_secs(10)))
        .expect("taken over once it resigned");
}
