//! Every flag of every program, given garbage: one clear `error:` line, a
//! non-zero exit, no panic, nothing left behind (no znode, no temp file).
//!
//! The flags are read from each program's own `--help`, so a flag added later is swept too.
//! Each program is started with valid arguments (it would run) plus one garbage value in place
//! of one of them: a value accepted where it should not be shows up as a program that keeps
//! running, registers, or prints a second line.

mod program;
mod repeated;
mod sweep;

use std::process::Command;
use std::time::Duration;

use crate::common::{raw_client, run_command_bounded};

#[test]
fn every_flag_of_every_program_refuses_garbage_with_one_line_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // The programs' temp dir: whatever they leave there is left behind.
    let tmp = tempfile::tempdir().unwrap();
    let valid = sweep::Valid::new("garbage-sweep", dir.path());
    let programs = sweep::programs(&valid);
    let positional = sweep::positional(&valid);
    let cases = sweep::cases(&programs, &positional);
    eprintln!("{} cases", cases.len());
    let problems = sweep::run_all(&cases, tmp.path());
    assert_none_misbehaved(&problems, cases.len());

    // Nothing left behind: no node under the sweep's root, no new temp entry.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let raw = runtime.block_on(raw_client(&valid.connect));
    let left = runtime.block_on(raw.check_stat(&valid.root)).unwrap();
    assert!(left.is_none(), "the sweep left {} in ZooKeeper", valid.root);
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert!(left.is_empty(), "the sweep left temp entries: {left:?}");
}

/// Fails naming every problem, if there is one, among `cases` cases.
fn assert_none_misbehaved(problems: &[String], cases: usize) {
    assert!(
        problems.is_empty(),
        "{} of {cases} cases misbehaved:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn short_value(value: &str) -> String {
    if value.len() > 40 {
        format!("{}... ({} bytes)", &value[..20], value.len())
    } else {
        value.to_owned()
    }
}

/// An argument that is not UTF-8 (a file name from another locale, a stray byte): one error
/// line, status 2, never a panic (the flag-parsed programs panicked in `std::env::args`).
#[test]
fn an_argument_that_is_not_utf8_is_one_error_line_in_every_program() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/base\xff\xfe");
    let programs: [(&str, &[&str]); 9] = [
        (env!("CARGO_BIN_EXE_zoorpc-provider"), &["--base-path"]),
        (env!("CARGO_BIN_EXE_zoorpc-echo"), &["--base-path"]),
        (env!("CARGO_BIN_EXE_zoorpc-client"), &["--base-path"]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-server"), &["--path"]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-client"), &["--path"]),
        (env!("CARGO_BIN_EXE_zoorpc-master-job"), &["--path"]),
        (env!("CARGO_BIN_EXE_zoorpc-zookeeper"), &["--port"]),
        (env!("CARGO_BIN_EXE_zoorpc"), &["watch", "--base-path"]),
        (env!("CARGO_BIN_EXE_zoorpc"), &["ls"]),
    ];
    for (exe, leading) in programs {
        let mut cmd = Command::new(exe);
        cmd.args(["--zk", "127.0.0.1:1"]);
        if leading.len() > 1 || leading[0] == "ls" {
            cmd = Command::new(exe);
            cmd.args(leading).arg(bad).args(["--zk", "127.0.0.1:1"]);
        } else {
            cmd.args(leading).arg(bad);
        }
        let (code, stdout, stderr, killed) = run_command_bounded(cmd, Duration::from_secs(20));
        let what = format!("{exe} {leading:?}: {stderr}");
        assert!(!killed, "{what}");
        assert_eq!(code, Some(2), "{what}");
        assert!(!stderr.contains("panicked"), "{what}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{what}"
        );
        assert!(stdout.is_empty(), "{what}: {stdout}");
    }
}
