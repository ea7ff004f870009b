//! Participant nodes under an operator's hand and a master started again on its own port:
//! a deleted participant node is created again at once (by a standby, so it can be designated;
//! by a master, so its standbys can take over fast when it dies); a holder whose participant
//! node is missing but who is the last taker on record is one of ours (a designee waits for
//! its handover instead of deposing it); a master killed and started again on its port takes
//! over from its dead session at once; `zoorpc master` tells apart two contenders with one
//! address by their sessions.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::ha_servers::HaServer;
use common::{raw_client, run_command, zk};
use zoorpc::registry::election::{participant_path, participants_path};
use zoorpc::registry::{MasterElection, Role, Session, SessionConfig};
use zoorpc_testkit::{ChildProcess, unique_path};

/// The programs' default: a fast takeover is measured against it.
const SESSION_TIMEOUT_MS: u64 = 10_000;

/// A `zoorpc-ha-server` on `port` (0: any) with the programs' default session timeout.
fn server_on(path: &str, port: u16) -> HaServer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args(["--zk", &zk().connect_string(), "--path", path])
        .args(["--port", &port.to_string()])
        .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()]);
    let process = ChildProcess::spawn("ha-server", cmd).expect("spawn ha server");
    HaServer::listening(process, "127.0.0.1", Duration::from_secs(20))
}

fn server(path: &str) -> HaServer {
    server_on(path, 0)
}

/// The participant nodes of `path`: (session, data).
async fn participants(client: &zookeeper_client::Client, path: &str) -> Vec<(i64, String)> {
    let parent = participants_path(path);
    let names = client.list_children(&parent).await.unwrap_or_default();
    let mut out = Vec::new();
    for name in names {
        let Ok(session) = u64::from_str_radix(&name, 16) else {
            continue;
        };
        if let Ok((data, _)) = client.get_data(&format!("{parent}/{name}")).await {
            out.push((session as i64, String::from_utf8_lossy(&data).into_owned()));
        }
    }
    out
}

/// The session of the participant whose data names `address`; panics if there is none.
async fn session_of(client: &zookeeper_client::Client, path: &str, address: &str) -> i64 {
    let all = participants(client, path).await;
    all.iter()
        .find(|(_, data)| data.split_whitespace().next() == Some(address))
        .map(|(session, _)| *session)
        .unwrap_or_else(|| panic!("no participant node for {address}: {all:?}"))
}

/// Waits until the participant node of `session` exists (watching it), at most `timeout`.
async fn wait_exists(
    client: &zookeeper_client::Client,
    node: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (stat, watcher) = client
            .check_and_watch_stat(node)
            .await
            .map_err(|e| e.to_string())?;
        if stat.is_some() {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, watcher.changed())
            .await
            .is_err()
        {
            return Err(format!("{node} was not created again within {timeout:?}"));
        }
    }
}

fn zoorpc(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args(args).arg("--zk").arg(zk().connect_string());
    run_command(cmd, Duration::from_secs(30))
}

/// A standby whose participant node an operator deleted creates it again at once, so it can be
/// designated (`zoorpc designate` checks the address against the participant nodes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standbys_deleted_participant_node_is_created_again_at_once() {
    let path = unique_path("part-standby");
    let mut a = server(&path);
    a.wait_master(Duration::from_secs(20));
    let mut b = server(&path);
    b.wait_standby_of(&a.address, Duration::from_secs(10));
    let client = raw_client(&zk().connect_string()).await;
    let node = participant_path(&path, session_of(&client, &path, &b.address).await);

    client.delete(&node, None).await.expect("delete B's node");
    wait_exists(&client, &node, Duration::from_secs(5))
        .await
        .expect("the standby creates its participant node again");
    let (code, out, err) =
        tokio::task::block_in_place(|| zoorpc(&["designate", &path, &b.address]));
    assert_eq!(code, Some(0), "{out} {err}");
    tokio::task::block_in_place(|| b.next_master(Duration::from_secs(10)));
}

/// A master whose participant node an operator deleted while it was paused creates it again
/// when it runs, and a standby that found it missing waits for it to come back: when the master
/// then dies, its refused port proves it gone and the standby takes over at once, not after the
/// session timeout (a holder without a participant node is never deposed on refusals).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masters_deleted_participant_node_is_created_again_and_the_fast_takeover_still_works() {
    let path = unique_path("part-master");
    let mut a = server(&path);
    a.wait_master(Duration::from_secs(20));
    let client = raw_client(&zk().connect_string()).await;
    let node = participant_path(&path, session_of(&client, &path, &a.address).await);

    a.process.pause().expect("SIGSTOP A");
    client.delete(&node, None).await.expect("delete A's node");
    // C joins while A's participant node is missing: A is not declared served.
    let mut c = server(&path);
    tokio::task::block_in_place(|| c.wait_standby_of(&a.address, Duration::from_secs(10)));
    a.process.resume().expect("SIGCONT A");
    wait_exists(&client, &node, Duration::from_secs(5))
        .await
        .expect("the master creates its participant node again");

    let killed = Instant::now();
    a.process.kill();
    tokio::task::block_in_place(|| c.next_master(Duration::from_secs(20)));
    let took = killed.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "took over after {took:?} (session timeout {SESSION_TIMEOUT_MS} ms)"
    );
}

/// A holder of ours whose participant node is missing is still ours when it is the last taker
/// on record (`<path>.participants`'s data): designated away while paused, it is waited for
/// (it hands over when it runs again), never deposed as a foreign holder would be. It is
/// within its lease: deposing it would make two masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_designee_waits_for_a_paused_holder_whose_participant_node_was_deleted() {
    let path = unique_path("part-designee");
    let mut a = server(&path);
    a.wait_master(Duration::from_secs(20));
    let mut b = server(&path);
    b.wait_standby_of(&a.address, Duration::from_secs(10));
    let client = raw_client(&zk().connect_string()).await;
    let node = participant_path(&path, session_of(&client, &path, &a.address).await);

    a.process.pause().expect("SIGSTOP A");
    let paused = Instant::now();
    client.delete(&node, None).await.expect("delete A's node");
    // An operator's `zkCli set <path> <B>`.
    client
        .set_data(&path, b.address.as_bytes(), None)
        .await
        .expect("designate B");
    let early = tokio::task::block_in_place(|| b.next_line("role master ", Duration::from_secs(2)));
    assert_eq!(
        early,
        None,
        "B took over {:?} into A's pause (its lease: 3/5 of {SESSION_TIMEOUT_MS} ms)",
        paused.elapsed()
    );
    a.process.resume().expect("SIGCONT A");
    tokio::task::block_in_place(|| b.next_master(Duration::from_secs(10)));
}

/// A master killed and started again on its port at once: the new process listens on the
/// address its dead session's node names, so that session's process is gone (two cannot
/// listen on one address) and it takes over at once, not after the old session's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_and_started_again_on_its_port_takes_over_at_once() {
    let path = unique_path("part-restart");
    let mut a = server(&path);
    let first = a.wait_master(Duration::from_secs(20));
    let port: u16 = a
        .address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("a port");

    a.process.kill();
    let killed = Instant::now();
    let mut again = tokio::task::block_in_place(|| server_on(&path, port));
    assert_eq!(again.address, a.address);
    let epoch = tokio::task::block_in_place(|| again.next_master(Duration::from_secs(20)));
    let took = killed.elapsed();
    assert!(epoch > first);
    assert!(
        took < Duration::from_millis(3000),
        "master again after {took:?} (session timeout {SESSION_TIMEOUT_MS} ms)"
    );
}

/// Two contenders with one address (a master's old session, not ended yet, and its new one):
/// `zoorpc master` shows the standby with its session, apart from the master's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_tells_apart_a_standby_with_the_masters_address_by_its_session() {
    let path = unique_path("part-same-address");
    let address = "127.0.0.1:1";
    let connect = || Session::connect(SessionConfig::new(zk().connect_string()));
    let (one, two) = (connect().await.unwrap(), connect().await.unwrap());
    let holder = MasterElection::join(&one, &path, address).await.unwrap();
    assert!(holder.is_master());
    let other = MasterElection::join(&two, &path, address).await.unwrap();
    assert_eq!(other.role(), Role::Electing);

    let (code, out, err) = tokio::task::block_in_place(|| zoorpc(&["master", &path]));
    assert_eq!(code, Some(0), "{err}");
    let mine = format!("{:#x}", one.client().session_id().0);
    let theirs = format!("{:#x}", two.client().session_id().0);
    assert!(
        out.starts_with(&format!("master {address} epoch="))
            && out.contains(&format!(
                "session={mine} standbys={address}[session={theirs}]"
            )),
        "{out}"
    );
    let (code, out, err) = tokio::task::block_in_place(|| zoorpc(&["master", &path, "--json"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("\"standby_sessions\":[\"{theirs}\"]")),
        "{out}"
    );
    holder.resign().await.unwrap();
}
