//! The programs other tools drive: their exact output lines and exit codes.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{spawn_provider, zk};
use zoorpc::registry::testing::{ChildProcess, unique_path};

fn client(connect: &str, base: &str, calls: u32) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
    cmd.args(["--zk", connect, "--base-path", base]).args([
        "--calls",
        &calls.to_string(),
        "--interval-ms",
        "5",
    ]);
    ChildProcess::spawn("client", cmd).unwrap()
}

#[test]
fn client_prints_one_line_per_call_and_a_summary() {
    let base = unique_path("client-lines");
    let connect = zk().connect_string();
    let providers = [
        spawn_provider(&connect, &base, 0, &[]),
        spawn_provider(&connect, &base, 0, &[]),
    ];
    let mut c = client(&connect, &base, 40);
    let last = c.wait_for_line("calls=", Duration::from_secs(30)).unwrap();
    assert_eq!(last, "calls=40 ok=40 failed=0");
    let lines = c.seen_lines().to_vec();
    assert_eq!(lines.len(), 41, "{lines:?}");
    for line in &lines[..40] {
        let url = line.strip_prefix("ok ").unwrap_or_else(|| panic!("{line}"));
        assert!(providers.iter().any(|p| p.url == url), "{line}");
    }
    for p in &providers {
        assert!(
            lines.iter().any(|l| l == &format!("ok {}", p.url)),
            "{} never answered",
            p.url
        );
    }
    assert!(c.wait_exit(Duration::from_secs(5)).unwrap().success());
}

#[test]
fn client_without_providers_prints_err_lines() {
    let base = unique_path("client-empty");
    let mut c = client(&zk().connect_string(), &base, 2);
    let last = c.wait_for_line("calls=", Duration::from_secs(30)).unwrap();
    assert_eq!(last, "calls=2 ok=0 failed=2");
    let lines = c.seen_lines().to_vec();
    for line in &lines[..2] {
        assert!(
            line.starts_with("err no providers registered under "),
            "{line}"
        );
    }
}

#[test]
fn provider_stops_on_ctrl_c_after_deregistering() {
    let base = unique_path("sigint");
    let mut p = spawn_provider(&zk().connect_string(), &base, 0, &[]);
    assert!(p.node.starts_with(&format!("{base}/provider")));
    assert!(p.url.starts_with("http://127.0.0.1:"));
    p.process.signal(libc::SIGINT).unwrap();
    assert!(
        p.process
            .wait_exit(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    let lines = p.process.drain_lines().to_vec();
    assert_eq!(
        lines[1..],
        [
            format!("stopping {}", p.node),
            format!("deregistered {}", p.node),
            "stopped".to_owned()
        ]
    );
}

#[test]
fn a_second_ctrl_c_ends_a_provider_at_once() {
    let base = unique_path("sigint-twice");
    // A long drain grace: the stop would take a minute.
    let mut p = spawn_provider(
        &zk().connect_string(),
        &base,
        0,
        &["--drain-grace-ms", "60000"],
    );
    p.process.signal(libc::SIGINT).unwrap();
    p.process
        .wait_for_line("stopping ", Duration::from_secs(10))
        .unwrap();
    p.process.signal(libc::SIGINT).unwrap();
    let status = p.process.wait_exit(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(130));
}

#[test]
fn provider_reports_a_taken_port_and_bad_flags() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .args(["--zk", &zk().connect_string(), "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("already in use"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .args(["--zk", "127.0.0.1:2181", "--prot", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown flag --prot") && err.contains("usage: provider"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--zk HOST:PORT is required"));
}

#[test]
fn zookeeper_program_serves_the_other_programs_and_stops_on_ctrl_c() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-zookeeper"));
    cmd.args(["--port", "0"]);
    let mut server = ChildProcess::spawn("zookeeper", cmd).unwrap();
    let line = server
        .wait_for_line("zookeeper ", Duration::from_secs(40))
        .unwrap();
    let connect = line.strip_prefix("zookeeper ").unwrap().to_owned();
    assert!(connect.starts_with("127.0.0.1:"), "{line}");

    // What the README's "by hand" steps do against it.
    let base = unique_path("by-hand");
    let p = spawn_provider(&connect, &base, 0, &[]);
    let mut c = client(&connect, &base, 3);
    let last = c.wait_for_line("calls=", Duration::from_secs(30)).unwrap();
    assert_eq!(last, "calls=3 ok=3 failed=0");
    assert_eq!(c.seen_lines()[0], format!("ok {}", p.url));
    drop(p);

    server.signal(libc::SIGINT).unwrap();
    assert!(server.wait_exit(Duration::from_secs(15)).unwrap().success());
    assert_eq!(
        server.drain_lines().last().map(String::as_str),
        Some("stopped")
    );
    assert!(
        std::net::TcpStream::connect(&connect).is_err(),
        "ZooKeeper still answers on {connect}"
    );

    // A taken port: refused with a message that says so, before anything starts.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-zookeeper"))
        .args(["--port", &port])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("in use"),
        "{stderr}"
    );
}
