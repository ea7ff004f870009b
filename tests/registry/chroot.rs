//! A chroot in the connect string (`--zk HOST:PORT/app`) is created when missing: also when an
//! operator deletes it (`deleteall /app`) under running providers and HA servers, which then
//! come back registered and electing on their own, with a line naming the chroot.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{raw_client, zk};
use zookeeper_client as zkc;
use zoorpc::consumer::Consumer;
use zoorpc_testkit::{ChildProcess, unique_path};

/// `program --zk CONNECT ARGS...` with its stderr (its log) in `log`.
fn spawn(program: &str, connect: &str, args: &[&str], log: &std::path::Path) -> ChildProcess {
    let mut cmd = Command::new(program);
    cmd.args([
        "--zk",
        connect,
        "--port",
        "0",
        "--session-timeout-ms",
        "1500",
    ])
    .args(args)
    .stderr(Stdio::from(std::fs::File::create(log).expect("log file")));
    ChildProcess::spawn(program, cmd).expect("spawn")
}

/// Deletes `path` and everything under it, as zkCli's `deleteall`, while the processes under
/// it create nodes again: the tree read, then deleted in one multi-op (so the processes cannot
/// slip a node in between the deletes), again until one commits.
async fn delete_all(client: &zkc::Client, path: &str) {
    for _ in 0..100 {
        let mut tree = vec![path.to_owned()];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i].clone();
            for child in client.list_children(&parent).await.unwrap_or_default() {
                tree.push(format!("{parent}/{child}"));
            }
            i += 1;
        }
        let mut multi = client.new_multi_writer();
        for node in tree.iter().rev() {
            multi.add_delete(node, None).expect("delete op");
        }
        if multi.commit().await.is_ok() {
            return;
        }
    }
    panic!("{path} changed under every attempt to delete it");
}

/// Waits (at most `timeout`) until `path` holds `data`.
async fn wait_data(client: &zkc::Client, path: &str, data: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let (found, watcher) = match client.get_and_watch_data(path).await {
            Ok((found, _, watcher)) => (Some(found), watcher),
            Err(zkc::Error::NoNode) => match client.check_and_watch_stat(path).await {
                Ok((_, watcher)) => (None, watcher),
                Err(e) => panic!("watching {path}: {e}"),
            },
            Err(e) => panic!("reading {path}: {e}"),
        };
        if found.as_deref() == Some(data.as_bytes()) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, watcher.changed()).await.is_err() {
            return false;
        }
    }
}

/// Waits (at most 30 s) until a child of `base` holds `url`.
async fn wait_registered(client: &zkc::Client, base: &str, url: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for child in client.list_children(base).await.unwrap_or_default() {
            if wait_data(client, &format!("{base}/{child}"), url, Duration::ZERO).await {
                return true;
            }
        }
        let watcher = match client.get_and_watch_children(base).await {
            Ok((_, _, watcher)) => watcher,
            Err(_) => match client.check_and_watch_stat(base).await {
                Ok((_, watcher)) => watcher,
                Err(e) => panic!("watching {base}: {e}"),
            },
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), watcher.changed()).await;
    }
    false
}

/// A provider (base path `/registry`) and an HA server (master at `ELECTION`) on `connect`,
/// their logs in `logs`: the processes, the provider's URL and the HA server's address.
fn start_both(
    connect: &str,
    logs: &std::path::Path,
) -> (ChildProcess, String, ChildProcess, String) {
    let mut provider = spawn(
        env!("CARGO_BIN_EXE_zoorpc-provider"),
        connect,
        &["--base-path", "/registry"],
        &logs.join("provider"),
    );
    let line = provider
        .wait_for_line("registered ", Duration::from_secs(20))
        .expect("provider registers");
    let url = line.split_whitespace().nth(2).expect("url").to_owned();
    let mut ha = spawn(
        env!("CARGO_BIN_EXE_zoorpc-ha-server"),
        connect,
        &["--path", ELECTION],
        &logs.join("ha"),
    );
    let line = ha
        .wait_for_line("listening ", Duration::from_secs(20))
        .expect("HA server listens");
    let ha_addr = line.split_whitespace().nth(1).expect("address").to_owned();
    ha.wait_for_line("role master", Duration::from_secs(20))
        .expect("HA server is master");
    (provider, url, ha, ha_addr)
}

const ELECTION: &str = "/soa/master/services/Hello:1.0.0";

#[test]
fn a_deleted_chroot_is_created_again_and_providers_and_ha_servers_come_back() {
    let chroot = unique_path("chroot");
    let connect = format!("{}{chroot}", zk().connect_string());
    let logs = tempfile::tempdir().expect("temp dir");
    let (_provider, url, mut ha, ha_addr) = start_both(&connect, logs.path());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let consumer = Consumer::connect(&connect, "/registry")
            .await
            .expect("consumer");
        let called = consumer.say_hello("before").await.expect("call");
        assert_eq!(called.url.as_str(), url);
        let client = raw_client(&zk().connect_string()).await;
        delete_all(&client, &chroot).await;
        // Both come back on their own: the provider's node and the master node, in the chroot.
        let base = format!("{chroot}/registry");
        assert!(
            wait_registered(&client, &base, &url).await,
            "the provider never registered again"
        );
        let master = format!("{chroot}{ELECTION}");
        assert!(
            wait_data(&client, &master, &ha_addr, Duration::from_secs(30)).await,
            "the HA server never held {master} again: {}",
            std::fs::read_to_string(logs.path().join("ha")).unwrap_or_default()
        );
        let listed = consumer
            .wait_until(Duration::from_secs(20), |urls| {
                urls.iter().any(|u| u.as_str() == url)
            })
            .await;
        assert!(listed, "the consumer never listed the provider again");
        let called = consumer.say_hello("after").await.expect("call");
        assert_eq!(called.url.as_str(), url);
    });
    ha.wait_for_line("role master", Duration::from_secs(20))
        .expect("the HA server is master again");
    // The line says what happened to what: the chroot, not the paths under it.
    let logs = ["provider", "ha"]
        .map(|name| std::fs::read_to_string(logs.path().join(name)).unwrap_or_default());
    let named = format!("the chroot {chroot} of the ZooKeeper connect string was missing");
    assert!(
        logs.iter().any(|log| log.contains(&named)),
        "no line names the chroot:\n{}\n{}",
        logs[0],
        logs[1]
    );
    // Nodes deleted while they were being made fail a few requests during the deletion; the
    // chroot missing afterwards failed every retry, for ever (150 lines in 30 s).
    for log in &logs {
        assert!(log.matches("node not exists").count() < 10, "{log}");
    }
}
