//! What programs print of an election's master node data. Whoever may write the node (a plain
//! ZooKeeper client, zkCli) can put a newline in it: the programs whose lines other tools read
//! (`zoorpc-ha-server`, `zoorpc-master-job`) print it escaped, on one line, so it never forges a
//! line.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{raw_client, zk};
use zoorpc_testkit::{ChildProcess, unique_path};

const WAIT: Duration = Duration::from_secs(30);

/// Starts `program` contending at `path`, waits until it is master, writes `forged` into the
/// master node with a plain client, and returns every line the program printed until it stood
/// by and then stopped on SIGTERM.
fn lines_after_writing(program: &str, path: &str, extra: &[&str], forged: &str) -> Vec<String> {
    let connect = zk().connect_string();
    let mut cmd = Command::new(program);
    cmd.args(["--zk", &connect, "--path", path])
        .args(["--session-timeout-ms", "1000"])
        .args(extra);
    let mut process = ChildProcess::spawn("contender", cmd).expect("spawn the contender");
    process
        .wait_for_line("role master epoch=", WAIT)
        .expect("the only contender becomes master");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = raw_client(&connect).await;
        client
            .set_data(path, forged.as_bytes(), None)
            .await
            .expect("a plain client writes the master node");
    });

    process
        .wait_for_line("role standby master=", WAIT)
        .expect("the contender stands by for the data written");
    process.signal(libc::SIGTERM).expect("signal the contender");
    process.wait_exit(WAIT).expect("the contender stops");
    process.drain_lines().to_vec()
}

#[test]
fn ha_server_prints_a_newline_in_the_master_node_escaped() {
    let path = unique_path("forged-ha");
    let forged = "evil\nrole master epoch=999999";
    let lines = lines_after_writing(
        env!("CARGO_BIN_EXE_zoorpc-ha-server"),
        &path,
        &["--port", "0"],
        forged,
    );
    assert!(
        lines
            .iter()
            .any(|l| l == r#"role standby master="evil\nrole master epoch=999999""#),
        "no escaped standby line: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l == "role master epoch=999999"),
        "a forged line: {lines:?}"
    );
}

#[test]
fn master_job_prints_a_newline_in_the_master_node_escaped() {
    let path = unique_path("forged-job");
    let forged = "evil\nrun epoch=1 seq=424242";
    let lines = lines_after_writing(
        env!("CARGO_BIN_EXE_zoorpc-master-job"),
        &path,
        &["--interval-ms", "100000"],
        forged,
    );
    assert!(
        lines
            .iter()
            .any(|l| l == r#"role standby master="evil\nrun epoch=1 seq=424242""#),
        "no escaped standby line: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("run epoch=1 ")),
        "a forged line: {lines:?}"
    );
}
