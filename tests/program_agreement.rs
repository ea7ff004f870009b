//! Where two programs do the same thing they agree: every `-ms` flag takes up to `i32::MAX`
//! milliseconds (2147483647) as the README says, `zoorpc proxy`'s included; a call loop that
//! failed a call exits 1, `zoorpc-ha-client` as `zoorpc call`.

mod common;

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
