//! A negative number given to a number flag the way people type it (`--port -1`, the value as
//! its own argument) is a value like any other: one error line naming the flag, the value and
//! the range, status 2, in every program; never "unexpected argument '-1'".

use std::process::Command;
use std::time::Duration;

use crate::common::run_command;

/// Each program (and `zoorpc` subcommand) with its arguments before the flags.
fn programs() -> Vec<(&'static str, Vec<&'static str>)> {
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    let mut all = vec![
        (env!("CARGO_BIN_EXE_zoorpc-provider"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-echo"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-client"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-server"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-client"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-master-job"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-zookeeper"), vec![]),
    ];
    for sub in ["zk", "provider", "call", "proxy"] {
        all.push((zoorpc, vec![sub]));
    }
    all
}

/// The flags `--help` lists with a number placeholder (`--port <N>`, `--drain-grace-ms <MS>`).
fn number_flags(exe: &str, leading: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(exe);
    cmd.args(leading).arg("--help");
    let (_, stdout, _) = run_command(cmd, Duration::from_secs(10));
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (flag, placeholder) = (words.next()?, words.next()?);
            (flag.starts_with("--") && matches!(placeholder, "<N>" | "<MS>"))
                .then(|| flag.to_owned())
        })
        .collect()
}

#[test]
fn a_negative_number_as_its_own_argument_is_one_line_naming_flag_value_and_range() {
    let mut checked = 0;
    for (exe, leading) in programs() {
        let flags = number_flags(exe, &leading);
        assert!(
            !flags.is_empty(),
            "{exe} {leading:?}: no number flags in --help"
        );
        for flag in flags {
            let mut cmd = Command::new(exe);
            cmd.args(&leading).env_remove("ZOORPC_ZK");
            // The ZooKeeper programs start one; every other program needs one to run.
            if !exe.ends_with("zookeeper") && leading != ["zk"] {
                cmd.args(["--zk", "127.0.0.1:1"]);
            }
            cmd.args([&flag, "-1"]);
            let (code, stdout, stderr) = run_command(cmd, Duration::from_secs(20));
            let what = format!("{exe} {leading:?} {flag} -1: stdout {stdout:?} stderr {stderr:?}");
            assert_eq!(code, Some(2), "{what}");
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{what}");
            let line = lines[0];
            assert!(
                line.starts_with(&format!("error: invalid value '-1' for '{flag} ")),
                "{what}"
            );
            let range = line.split("': expected ").nth(1).unwrap_or_default();
            assert!(range.contains(" from ") && range.contains(" to "), "{what}");
            assert!(line.ends_with("; see --help"), "{what}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} flags checked");
}
