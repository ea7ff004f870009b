//! Where two programs do the same thing they agree: every `-ms` flag takes up to `i32::MAX`
//! milliseconds (2147483647) as the README says, `zoorpc proxy`'s included; a call loop that
//! failed a call exits 1, `zoorpc-ha-client` as `zoorpc call`; a call loop makes at least one
//! call.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{run_command, zk};
use zoorpc_testkit::{ChildProcess, unique_path};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn proxy_ms_flags_take_what_every_ms_flag_takes() {
    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("proxy-ms"));
    let proxy = |flags: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
        cmd.args(["proxy", "--zk", &connect, "--listen", "127.0.0.1:0"])
            .args(["--master", &path])
            .args(flags)
            .env_remove("ZOORPC_ZK")
            .env_remove("ZOORPC_ZK_AUTH_FILE");
        cmd
    };
    let max = "2147483647";
    let mut accepted = ChildProcess::spawn(
        "proxy",
        proxy(&["--attempt-timeout-ms", max, "--switch-over-timeout-ms", max]),
    )
    .expect("spawn the proxy");
    accepted
        .wait_for_line("listening ", WAIT)
        .expect("the proxy takes 2147483647 ms for both flags");
    accepted.kill();

    for flag in ["--attempt-timeout-ms", "--switch-over-timeout-ms"] {
        let (code, out, err) = run_command(proxy(&[flag, "2147483648"]), WAIT);
        assert_eq!(code, Some(2), "{flag}: {out}{err}");
        assert!(err.contains("2147483647"), "{flag}: {err}");
    }
}

#[test]
fn ha_client_exits_1_when_a_call_failed() {
    let path = format!("{}/Hello:1.0.0", unique_path("ha-client-status"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-client"));
    cmd.args(["--zk", &zk().connect_string(), "--path", &path])
        .args(["--calls", "1", "--switch-over-timeout-ms", "200"]);
    let (code, out, err) = run_command(cmd, WAIT);
    assert!(out.contains("calls=1 ok=0 failed=1"), "{out}{err}");
    assert_eq!(code, Some(1), "{out}{err}");
}

/// An empty `--zk-auth-file` is a usage error in every program (status 2, one line naming the
/// flag), even with an empty `ZOORPC_ZK_AUTH_FILE` beside it; an empty `ZOORPC_ZK_AUTH_FILE`
/// alone counts as unset. (`zoorpc` took the empty flag as "no credential" when the variable
/// was empty too, and as a mistake otherwise; the other programs tried to read a file "".)
#[test]
fn an_empty_zk_auth_file_flag_is_a_usage_error_and_an_empty_variable_is_unset() {
    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("empty-auth"));
    let programs: [(&str, &[&str]); 4] = [
        (env!("CARGO_BIN_EXE_zoorpc"), &["ls", "/"]),
        (env!("CARGO_BIN_EXE_zoorpc-client"), &["--calls", "1"]),
        (
            env!("CARGO_BIN_EXE_zoorpc-ha-client"),
            &[
                "--calls",
                "1",
                "--switch-over-timeout-ms",
                "0",
                "--path",
                &path,
            ],
        ),
        (
            env!("CARGO_BIN_EXE_zoorpc-master-job"),
            &["--path", &path, "--interval-ms", "100"],
        ),
    ];
    for (exe, args) in programs {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .args(["--zk", &connect, "--zk-auth-file="])
            .env("ZOORPC_ZK_AUTH_FILE", "");
        let (code, out, err) = run_command(cmd, WAIT);
        assert_eq!(code, Some(2), "{exe} {args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{exe} {args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains("--zk-auth-file"),
            "{exe} {args:?}: {err}"
        );
        assert!(out.is_empty(), "{exe} {args:?} ran: {out}");
    }
    // The variable empty, the flag left out: no credential, the program runs.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args(["ls", "--zk", &connect, &path])
        .env("ZOORPC_ZK_AUTH_FILE", "");
    let (code, out, err) = run_command(cmd, WAIT);
    assert_eq!(code, Some(0), "{out}{err}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-client"));
    cmd.args(["--zk", &connect, "--path", &path, "--calls", "1"])
        .args(["--switch-over-timeout-ms", "0"])
        .env("ZOORPC_ZK_AUTH_FILE", "");
    let (_, out, err) = run_command(cmd, WAIT);
    assert!(out.contains("calls=1 ok=0 failed=1"), "{out}{err}");
}

/// The programs (binaries to run, arguments before the flags) that talk to ZooKeeper.
fn zookeeper_clients() -> Vec<(&'static str, Vec<&'static str>)> {
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    vec![
        (env!("CARGO_BIN_EXE_zoorpc-provider"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-echo"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-server"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-client"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-client"), vec![]),
        (env!("CARGO_BIN_EXE_zoorpc-master-job"), vec![]),
        (zoorpc, vec!["provider"]),
        (zoorpc, vec!["call"]),
        (zoorpc, vec!["ls"]),
        (zoorpc, vec!["watch"]),
        (zoorpc, vec!["master"]),
        (zoorpc, vec!["designate"]),
        (zoorpc, vec!["proxy"]),
    ]
}

/// Every program shares the ZooKeeper and logging flags: `--help` lists them, with the same
/// text everywhere.
#[test]
fn every_program_lists_the_shared_flags_with_one_text() {
    let mut texts = std::collections::BTreeMap::<&str, std::collections::BTreeSet<String>>::new();
    let mut programs = zookeeper_clients();
    programs.push((env!("CARGO_BIN_EXE_zoorpc-zookeeper"), vec![]));
    programs.push((env!("CARGO_BIN_EXE_zoorpc"), vec!["zk"]));
    for (exe, leading) in programs {
        let mut cmd = Command::new(exe);
        cmd.args(&leading).arg("--help");
        let (code, out, err) = run_command(cmd, WAIT);
        assert_eq!(code, Some(0), "{exe} {leading:?}: {err}");
        let talks_to_zookeeper = !(exe.ends_with("zookeeper") || leading == ["zk"]);
        let shared: &[&str] = if talks_to_zookeeper {
            &["--log-level", "--zk ", "--zk-auth-file"]
        } else {
            &["--log-level"]
        };
        for flag in shared {
            let line = out
                .lines()
                .find(|l| l.trim_start().starts_with(flag))
                .unwrap_or_else(|| panic!("{exe} {leading:?}: no {flag} in {out}"));
            // Columns differ with the program's longest flag: compare the words.
            let words = line.split_whitespace().collect::<Vec<_>>().join(" ");
            texts.entry(flag).or_default().insert(words);
        }
    }
    for (flag, lines) in texts {
        assert_eq!(
            lines.len(),
            1,
            "{flag} is described differently: {lines:#?}"
        );
    }
}

/// `--log-level` sets what reaches stderr, over `RUST_LOG`.
#[test]
fn log_level_decides_what_is_logged() {
    let connect = zk().connect_string();
    let base = unique_path("log-level");
    let client = |level: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
        cmd.args(["--zk", &connect, "--base-path", &base, "--calls", "1"])
            .args(["--log-level", level])
            .env("RUST_LOG", "warn");
        run_command(cmd, WAIT)
    };
    let (_, out, err) = client("debug");
    assert!(out.contains("calls=1 ok=0 failed=1"), "{out}{err}");
    assert!(err.contains("DEBUG"), "no debug lines: {err}");
    let (_, _, err) = client("error");
    assert!(!err.contains("DEBUG") && !err.contains("WARN"), "{err}");
}

/// A master-only job is set with the same flags in `zoorpc-ha-server` and `zoorpc-master-job`
/// (`--job-interval-ms`, `--job-name`; `zoorpc-master-job` also takes its first names,
/// `--interval-ms` and `--name`), with the same checks, before anything contends.
#[test]
fn the_job_flags_mean_the_same_in_both_programs() {
    let path = format!("{}/Hello:1.0.0", unique_path("job-flags"));
    let programs = [
        env!("CARGO_BIN_EXE_zoorpc-ha-server"),
        env!("CARGO_BIN_EXE_zoorpc-master-job"),
    ];
    for exe in programs {
        for (flag, value, says) in [
            ("--job-interval-ms", "99", "from 100"),
            ("--job-name", "x/y", "one path segment"),
        ] {
            let mut cmd = Command::new(exe);
            cmd.args(["--zk", "127.0.0.1:1", "--path", &path, flag, value]);
            let (code, out, err) = run_command(cmd, WAIT);
            assert_eq!(code, Some(2), "{exe} {flag}: {out}{err}");
            assert!(err.contains(says), "{exe} {flag}: {err}");
        }
    }
    let master_job = programs[1];
    for (flag, value, says) in [
        ("--interval-ms", "99", "from 100"),
        ("--name", "..", "'..'"),
    ] {
        let mut cmd = Command::new(master_job);
        cmd.args(["--zk", "127.0.0.1:1", "--path", &path, flag, value]);
        let (code, out, err) = run_command(cmd, WAIT);
        assert_eq!(code, Some(2), "{flag}: {out}{err}");
        assert!(err.contains(says), "{flag}: {err}");
    }
}

/// `--calls 0` (`--count 0`) is refused by every call loop with the same range: the client
/// programs printed `calls=0 ok=0 failed=0` and exited 0, where `zoorpc call` refused it.
#[test]
fn every_call_loop_refuses_zero_calls_with_one_range() {
    let path = format!("{}/Hello:1.0.0", unique_path("zero-calls"));
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    let runs: [(&str, Vec<&str>, &str); 4] = [
        (zoorpc, vec!["call", "x", "--count", "0"], "--count"),
        (zoorpc, vec!["call", "x", "--calls", "0"], "--count"),
        (
            env!("CARGO_BIN_EXE_zoorpc-client"),
            vec!["--calls", "0"],
            "--calls",
        ),
        (
            env!("CARGO_BIN_EXE_zoorpc-ha-client"),
            vec!["--path", &path, "--calls", "0"],
            "--calls",
        ),
    ];
    for (exe, args, flag) in runs {
        let mut cmd = Command::new(exe);
        cmd.args(&args).args(["--zk", &zk().connect_string()]);
        let (code, out, err) = run_command(cmd, WAIT);
        let what = format!("{exe} {args:?}: {out}{err}");
        assert_eq!(code, Some(2), "{what}");
        assert!(out.is_empty(), "{what}");
        assert_eq!(err.lines().count(), 1, "{what}");
        assert!(
            err.starts_with(&format!(
                "error: invalid value '0' for '{flag} <N>': expected a whole number from 1 to {}",
                u64::MAX
            )),
            "{what}"
        );
    }
}
