//! "At most one master; only the master serves", checked where users see it: a client calling
//! each `zoorpc-ha-server`'s own address (as a load balancer or grpcurl holding a connection
//! does), through real pauses (`SIGSTOP`) and an operator's delete of the master node.

use crate::common;

use std::time::{Duration, Instant};

use common::ha_servers::{HaServer, Probe, Prober};
use common::{raw_client, runtime, zk};
use zoorpc_testkit::{ZkProxy, ZkServer, unique_path};

/// How often the prober calls each server.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// A master paused past its session timeout whose link to ZooKeeper stays silent after it
/// resumes (the pause and a network blip together; or a ZooKeeper server's closing of the
/// expired session that never reached it): nothing tells it that it is no longer master but its
/// own clock. It must not answer as master the calls queued at it meanwhile. Ten rounds, the
/// servers taking turns; they log to their output, as servers in production do.
#[test]
fn a_master_paused_past_its_session_timeout_answers_nothing_as_master_after_it_resumes() {
    let path = unique_path("ha-lease");
    let connect = zk().connect_string();
    let rt = runtime();
    let proxies: Vec<ZkProxy> = (0..2)
        .map(|_| {
            rt.block_on(ZkProxy::start(connect.parse().expect("a socket address")))
                .expect("a ZooKeeper proxy")
        })
        .collect();
    let mut servers = vec![HaServer::spawn_with_logs(
        &proxies[0].addr().to_string(),
        &path,
    )];
    servers[0].wait_master(Duration::from_secs(20));
    servers.push(HaServer::spawn_with_logs(
        &proxies[1].addr().to_string(),
        &path,
    ));
    let first = servers[0].address.clone();
    servers[1].wait_standby_of(&first, Duration::from_secs(10));
    let addresses: Vec<String> = servers.iter().map(|s| s.address.clone()).collect();
    let prober = rt.block_on(Prober::start(&addresses, PROBE_EVERY));

    let mut served = Vec::new();
    let mut queued = 0;
    for round in 0..10 {
        let (old, new) = (round % 2, 1 - round % 2);
        let serving = Instant::now();
        assert!(
            rt.block_on(prober.wait_for(Duration::from_secs(10), |p| p.server == old
                && p.sent > serving
                && p.is_master())),
            "round {round}: {} does not answer as master",
            addresses[old]
        );
        // What it says after resuming is what counts: lines from before the pause (a reconnect
        // in the same session: `disconnected`, then `master` again) are passed over.
        servers[old].process.drain_lines();
        servers[old].cursor = servers[old].process.seen_lines().len();
        servers[old].process.pause().expect("pause the master");
        proxies[old].cut();
        let paused = Instant::now();
        // Its session expires (the other taking over says so: nobody designated it or deleted
        // the node); the other answers as master on its own address, while the prober's calls
        // to the paused one queue on its connection.
        servers[new].next_master(Duration::from_secs(20));
        assert!(
            rt.block_on(prober.wait_for(Duration::from_secs(5), |p| p.server == new
                && p.sent > paused
                && p.is_master())),
            "round {round}: the new master never answered as master"
        );
        servers[old]
            .process
            .resume()
            .expect("resume the old master");
        let resumed = Instant::now();
        assert!(
            rt.block_on(prober.wait_for(Duration::from_secs(10), |p| p.server == old
                && p.sent > resumed
                && p.is_refused())),
            "round {round}: the old master does not refuse after resuming"
        );
        // Back in touch with ZooKeeper, it learns its session expired and stands by, never
        // reporting master on the way.
        proxies[old].heal();
        let new_address = addresses[new].clone();
        servers[old].wait_standby_of(&new_address, Duration::from_secs(20));
        let probes = prober.probes();
        queued += probes
            .iter()
            .filter(|p| p.server == old && p.sent > paused && p.sent < resumed)
            .count();
        // Calls sent once the process was stopped (`pause` returns when it is): none may be
        // answered as master after it resumes. (A call it admitted before the stop runs to
        // completion by design, and its answer can come back after the resume: not counted.)
        served.extend(
            probes
                .into_iter()
                .filter(|p| p.server == old && p.is_master() && p.sent > paused)
                .map(|p| (round, p)),
        );
    }
    rt.block_on(prober.stop());
    assert!(
        queued > 50,
        "only {queued} calls were sent to paused masters"
    );
    assert!(
        served.is_empty(),
        "{} calls to a paused master were answered by it as master after it resumed, the other \
         being master since before: first {:?}",
        served.len(),
        served.first()
    );
}

/// Waits until the master node exists with a `czxid` above `after`; returns its data and czxid.
async fn wait_new_node(
    raw: &zookeeper_client::Client,
    path: &str,
    after: i64,
    timeout: Duration,
) -> Option<(String, i64)> {
    let found = tokio::time::timeout(timeout, async {
        loop {
            let (stat, watcher) = raw
                .check_and_watch_stat(path)
                .await
                .unwrap_or_else(|e| panic!("watch {path}: {e}"));
            if let Some(stat) = stat
                && stat.czxid > after
            {
                match raw.get_data(path).await {
                    Ok((data, stat)) => {
                        return (String::from_utf8_lossy(&data).into_owned(), stat.czxid);
                    }
                    Err(zookeeper_client::Error::NoNode) => continue,
                    Err(e) => panic!("read {path}: {e}"),
                }
            }
            watcher.changed().await;
        }
    })
    .await;
    found.ok()
}

/// Calls answered as master by `old` that were sent after a call answered as master by another
/// server had come back: the two served as master at overlapping times.
fn served_after_another(probes: &[&Probe], old: usize) -> Vec<(Probe, Probe)> {
    let mut crossings = Vec::new();
    for other in probes.iter().filter(|p| p.server != old && p.is_master()) {
        for late in probes.iter().filter(|p| p.server == old && p.is_master()) {
            if other.received < late.sent {
                crossings.push(((*other).clone(), (*late).clone()));
            }
        }
    }
    crossings
}

#[test]
fn a_holder_stalled_across_a_delete_of_its_node_never_serves_beside_another_master() {
    stalled_across_a_delete("ha-stalled-delete", Also::Nothing);
}

/// The same, with the holder's participant node deleted by hand first (an operator's
/// `delete <path>.participants/<session>`): the proof a standby waits for is gone, yet the
/// holder's end is not proven, so no standby takes over while the stalled holder may still
/// serve within its lease.
#[test]
fn a_holder_whose_participant_node_was_deleted_by_hand_never_serves_beside_another_master() {
    stalled_across_a_delete("ha-stalled-participant", Also::HoldersParticipant);
}

/// The same, with the whole `<path>.participants` tree deleted in one transaction while the
/// holder is stalled (`zkCli.sh deleteall`, which removes the participant nodes, the taker
/// record and both of the holder's marks at once): that removal is no proof of the holder's
/// end either.
#[test]
fn a_holder_stalled_across_a_deleteall_of_the_participants_never_serves_beside_another_master() {
    stalled_across_a_delete("ha-stalled-deleteall", Also::ParticipantsTree);
}

/// What an operator deletes besides the master node, in each round.
#[derive(Clone, Copy, PartialEq)]
enum Also {
    Nothing,
    /// The holder's participant node, before the stall.
    HoldersParticipant,
    /// The whole `<path>.participants` tree, in one transaction, during the stall.
    ParticipantsTree,
}

/// Rounds of: the holder stalled (SIGSTOP, 300 ms) across a delete of its master node (and,
/// with `also`, of other nodes of the election); a prober calling each server at its own
/// address must never see two serve as master at overlapping times.
fn stalled_across_a_delete(tag: &str, also: Also) {
    let path = unique_path(tag);
    let connect = zk().connect_string();
    let mut servers = vec![HaServer::spawn(&connect, &path, &[])];
    servers[0].wait_master(Duration::from_secs(20));
    servers.push(HaServer::spawn(&connect, &path, &[]));
    let first = servers[0].address.clone();
    servers[1].wait_standby_of(&first, Duration::from_secs(10));
    let addresses: Vec<String> = servers.iter().map(|s| s.address.clone()).collect();
    let rt = runtime();
    let raw = rt.block_on(raw_client(&connect));
    let prober = rt.block_on(Prober::start(&addresses, PROBE_EVERY));

    let mut rounds = Vec::new();
    let (mut holder_address, mut czxid) = rt
        .block_on(wait_new_node(&raw, &path, 0, Duration::from_secs(5)))
        .expect("a master node");
    for round in 0..10 {
        let holder = addresses
            .iter()
            .position(|a| *a == holder_address)
            .unwrap_or_else(|| panic!("round {round}: the node names {holder_address}"));
        let serving = Instant::now();
        assert!(
            rt.block_on(
                prober.wait_for(Duration::from_secs(10), |p| p.server == holder
                    && p.is_master()
                    && p.sent > serving)
            ),
            "round {round}: the holder {holder_address} does not answer as master"
        );
        if also == Also::HoldersParticipant {
            delete_holders_participant(&rt, &raw, &path, round);
        }
        let start = Instant::now();
        servers[holder].process.pause().expect("pause the holder");
        if also == Also::ParticipantsTree {
            rt.block_on(delete_all(&raw, &format!("{path}.participants")))
                .unwrap_or_else(|e| panic!("round {round}: deleteall {path}.participants: {e}"));
        }
        // `zkCli.sh delete <path>` while the holder is stalled.
        match rt.block_on(raw.delete(&path, None)) {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => panic!("round {round}: delete {path}: {e}"),
        }
        // The stall itself (the fault), not a wait for a state.
        std::thread::sleep(Duration::from_millis(300));
        servers[holder].process.resume().expect("resume the holder");
        (holder_address, czxid) = rt
            .block_on(wait_new_node(&raw, &path, czxid, Duration::from_secs(30)))
            .unwrap_or_else(|| panic!("round {round}: nobody took the node"));
        rounds.push((start, holder));
    }
    let end = Instant::now();
    let probes = rt.block_on(prober.stop());

    let mut crossings = Vec::new();
    for (i, &(start, holder)) in rounds.iter().enumerate() {
        let until = rounds.get(i + 1).map_or(end, |r| r.0);
        let window: Vec<&Probe> = probes
            .iter()
            .filter(|p| p.sent >= start && p.sent < until)
            .collect();
        for (other, late) in served_after_another(&window, holder) {
            crossings.push((i, other, late));
        }
    }
    let rounds_with_two = {
        let mut r: Vec<usize> = crossings.iter().map(|c| c.0).collect();
        r.dedup();
        r
    };
    assert!(
        crossings.is_empty(),
        "two servers answered as master at overlapping times in rounds {rounds_with_two:?} of 10; \
         first: {:?}",
        crossings.first()
    );
}

/// Deletes the participant node of the session holding the master node at `path`.
fn delete_holders_participant(
    rt: &tokio::runtime::Runtime,
    raw: &zookeeper_client::Client,
    path: &str,
    round: usize,
) {
    let (_, stat) = rt
        .block_on(raw.get_data(path))
        .unwrap_or_else(|e| panic!("round {round}: read {path}: {e}"));
    let participant = format!("{path}.participants/{:016x}", stat.ephemeral_owner);
    rt.block_on(raw.delete(&participant, None))
        .unwrap_or_else(|e| panic!("round {round}: delete {participant}: {e}"));
}

/// Deletes `root` and every node under it in one transaction, as `zkCli.sh deleteall` does.
async fn delete_all(
    raw: &zookeeper_client::Client,
    root: &str,
) -> Result<(), zookeeper_client::Error> {
    let mut nodes = vec![root.to_owned()];
    let mut i = 0;
    while let Some(node) = nodes.get(i).cloned() {
        for child in raw.list_children(&node).await? {
            nodes.push(format!("{node}/{child}"));
        }
        i += 1;
    }
    let mut writer = raw.new_multi_writer();
    // Children before their parents: the reverse of the breadth-first listing.
    for node in nodes.iter().rev() {
        writer.add_delete(node, None)?;
    }
    writer.commit().await.map(|_| ()).map_err(|e| match e {
        zookeeper_client::MultiWriteError::OperationFailed { source, .. } => source,
        other => zookeeper_client::Error::UnexpectedError(other.to_string()),
    })
}

/// After one ZooKeeper wipe the master's epoch goes back (a new history, warned about once);
/// later takeovers in the new history compare with its epochs and warn no more.
#[test]
fn a_wiped_zookeeper_is_warned_about_once_not_at_every_later_takeover() {
    let mut zk = ZkServer::start().expect("a ZooKeeper of this test's own");
    let connect = zk.connect_string();
    let path = unique_path("ha-wiped");
    let mut a = HaServer::spawn_with_logs(&connect, &path);
    a.wait_master(Duration::from_secs(20));
    let rt = runtime();
    // A history of some length, then a takeover at its end: the epoch before the wipe is large.
    rt.block_on(async {
        let raw = raw_client(&connect).await;
        let open = zookeeper_client::CreateMode::Persistent
            .with_acls(zookeeper_client::Acls::anyone_all());
        for i in 0..100 {
            raw.create(&format!("{path}-history-{i}"), b"", &open)
                .await
                .expect("a write before the wipe");
        }
        raw.delete(&path, None)
            .await
            .expect("delete the master node");
    });
    let before = a.next_master(Duration::from_secs(10));
    zk.wipe_and_restart().expect("wipe ZooKeeper");
    let mut epoch = a.next_master(Duration::from_secs(30));
    assert!(
        epoch < before,
        "epoch {epoch} after the wipe, {before} before"
    );
    let raw = rt.block_on(raw_client(&connect));
    for round in 0..3 {
        // `zkCli.sh delete <path>`: A takes its node back under a newer epoch of the new history.
        match rt.block_on(raw.delete(&path, None)) {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => panic!("round {round}: delete {path}: {e}"),
        }
        let again = a.next_master(Duration::from_secs(10));
        assert!(again > epoch, "round {round}: epoch {again} after {epoch}");
        epoch = again;
    }
    let warnings = a
        .process
        .drain_lines()
        .iter()
        .filter(|l| l.contains("the epoch went back"))
        .count();
    assert_eq!(warnings, 1, "{:#?}", a.process.seen_lines());
}

/// `zoorpc master` with the holder designated away but paused (so it cannot hand over yet):
/// the designee is not named as master, the holder is.
#[test]
fn master_never_names_a_designee_that_has_not_taken_over_as_master() {
    let path = unique_path("ha-pending");
    let connect = zk().connect_string();
    let mut a = HaServer::spawn(&connect, &path, &[]);
    a.wait_master(Duration::from_secs(20));
    let mut b = HaServer::spawn(&connect, &path, &[]);
    b.wait_standby_of(&a.address, Duration::from_secs(10));
    let zoorpc = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zoorpc"));
        cmd.args(args).arg("--zk").arg(&connect);
        common::run_command(cmd, Duration::from_secs(30))
    };
    let (code, out, err) = zoorpc(&["master", &path]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("standbys={}", b.address)), "{out}");

    a.process.pause().expect("pause A");
    let (code, out, err) = zoorpc(&["designate", &path, &b.address]);
    assert_eq!(code, Some(0), "{out} {err}");
    let (code, out, err) = zoorpc(&["master", &path]);
    a.process.resume().expect("resume A");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(&format!(
            "no master yet at {path}: designated {}, not yet taken over, since ",
            b.address
        )) && out.contains(&format!("still held by {}", a.address)),
        "{out}"
    );

    b.next_master(Duration::from_secs(10));
    let (code, out, err) = zoorpc(&["master", &path]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(&format!("master {} epoch=", b.address)),
        "{out}"
    );
}
