//! The README's snippet, run as a user runs it: two providers of this crate's own service in
//! their own processes, a caller through the balanced channel, SIGTERM to stop a provider.

use std::process::Command;
use std::time::Duration;

use zoorpc_testkit::{ChildProcess, ZkServer};

fn provider(zk: &str) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-outside"));
    cmd.args(["provider", zk]);
    let mut process = ChildProcess::spawn("outside-provider", cmd).expect("spawn provider");
    process
        .wait_for_line("serving http://127.0.0.1:", Duration::from_secs(20))
        .expect("the provider serves");
    process
}

#[test]
fn the_snippet_serves_and_calls_a_service_zoorpc_never_saw() {
    let server = ZkServer::start().expect("ZooKeeper");
    let zk = server.connect_string();
    let mut a = provider(&zk);
    let mut b = provider(&zk);
    let output = Command::new(env!("CARGO_BIN_EXE_zoorpc-outside"))
        .args(["call", &zk, "40"])
        .output()
        .expect("run the caller");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 41, "{stdout}");
    assert!(lines[0].starts_with("first (from 127.0.0.1:"), "{stdout}");
    assert!(lines[1].starts_with("hello 0 (from 127.0.0.1:"), "{stdout}");
    let servers: std::collections::HashSet<&str> = lines
        .iter()
        .filter_map(|l| l.split("(from ").nth(1))
        .collect();
    assert_eq!(servers.len(), 2, "both providers answer: {stdout}");

    for p in [&mut a, &mut b] {
        p.signal(libc::SIGTERM).expect("SIGTERM");
        let status = p
            .wait_exit(Duration::from_secs(15))
            .expect("provider exits");
        assert!(status.success(), "{status:?}");
    }
}
