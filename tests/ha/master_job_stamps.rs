//! `master_job --timestamps true`: role and run lines end with ` at_ms=<unix ms>`, the wall
//! clock instant the role was adopted or the run began (the chaos example lays contenders'
//! master intervals side by side with them); without the flag the lines are as before.

use crate::common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::zk;
use zoorpc_testkit::{ChildProcess, unique_path};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn master_job(path: &str, extra: &[&str]) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-master-job"));
    cmd.args(["--zk", &zk().connect_string(), "--path", path])
        .args(["--interval-ms", "100", "--session-timeout-ms", "2000"])
        .args(extra);
    ChildProcess::spawn("master-job", cmd).unwrap()
}

/// The stamp at the end of `line`, which must be `<start> at_ms=<n>`.
fn stamp(line: &str, start: &str) -> u64 {
    let (head, at) = line
        .rsplit_once(" at_ms=")
        .unwrap_or_else(|| panic!("no at_ms in {line:?}"));
    assert!(head.starts_with(start), "{line:?}");
    at.parse()
        .unwrap_or_else(|e| panic!("bad at_ms in {line:?}: {e}"))
}

#[test]
fn timestamps_end_role_and_run_lines_with_the_wall_clock_and_are_off_by_default() {
    let wait = Duration::from_secs(20);
    let before = now_ms();
    let mut stamped = master_job(&unique_path("stamps"), &["--timestamps", "true"]);
    let role = stamped.wait_for_line("role ", wait).unwrap();
    let run = stamped.wait_for_line("run ", wait).unwrap();
    let after = now_ms();
    let adopted = stamp(&role, "role master epoch=");
    let ran = stamp(&run, "run epoch=");
    assert!(
        before <= adopted && adopted <= ran && ran <= after,
        "spawned at {before}, master at {adopted}, ran at {ran}, read by {after}"
    );

    let mut plain = master_job(&unique_path("no-stamps"), &[]);
    let role = plain.wait_for_line("role ", wait).unwrap();
    let run = plain.wait_for_line("run ", wait).unwrap();
    assert!(
        !role.contains("at_ms") && !run.contains("at_ms"),
        "{role:?} {run:?}"
    );
    assert!(
        run.starts_with("run epoch=") && run.ends_with(" seq=1"),
        "{run:?}"
    );

    let mut bad = master_job(&unique_path("bad-stamps"), &["--timestamps", "maybe"]);
    let status = bad.wait_exit(wait).unwrap();
    assert_eq!(status.code(), Some(2));
}
