//! What programs print of an election's master node data. Whoever may write the node (a plain
//! ZooKeeper client, zkCli) can put a newline in it: the programs whose lines other tools read
//! (`zoorpc-ha-server`, `zoorpc-master-job`, `zoorpc master`) print it escaped, on one line, so
//! it never forges a line. A contender's name that is not `host:port` (the master-job program's
//! own default, `job-<pid>`) is shown by `zoorpc master` as a name, not as bad data.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{raw_client, run_command, zk};
use zookeeper_client as zkc;
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

fn zoorpc_master(path: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args(["master", path, "--zk", &zk().connect_string()])
        .env_remove("ZOORPC_ZK")
        .env_remove("ZOORPC_ZK_AUTH_FILE");
    let (code, out, err) = run_command(cmd, WAIT);
    assert_eq!(code, Some(0), "{err}");
    out
}

#[test]
fn master_shows_the_master_jobs_default_name_as_a_name_and_a_newline_as_bad_data() {
    let path = unique_path("job-name");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-master-job"));
    cmd.args(["--zk", &zk().connect_string(), "--path", &path])
        .args(["--session-timeout-ms", "1000", "--interval-ms", "100000"]);
    let mut job = ChildProcess::spawn("master-job", cmd).expect("spawn the master job");
    job.wait_for_line("role master epoch=", WAIT)
        .expect("the only contender becomes master");
    let out = zoorpc_master(&path);
    let name = format!("job-{}", job.pid());
    assert!(
        out.starts_with(&format!(
            "master {name} (a name, not an address: no gRPC client can call it) epoch="
        )),
        "{out}"
    );

    drop(job);

    // Data that is not even a name, held by a plain client's ephemeral node.
    let path = format!("{}/Hello:1.0.0", unique_path("bad-data"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _holder = runtime.block_on(async {
        let client = raw_client(&zk().connect_string()).await;
        let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        client
            .mkdir(&format!("{path}.epoch"), &persistent)
            .await
            .expect("the election's companion");
        let ephemeral = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::anyone_all());
        client
            .create(&path, b"evil\nmaster 127.0.0.1:1", &ephemeral)
            .await
            .expect("a plain client holds the master node");
        client
    });
    let out = zoorpc_master(&path);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with(r#"master BAD DATA "evil\nmaster 127.0.0.1:1" (not host:port"#),
        "{out}"
    );
}
