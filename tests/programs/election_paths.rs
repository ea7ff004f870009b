//! An election path naming one of an election's own nodes (`<path>.epoch`, `.participants`,
//! `.jobs`, `.floor`) is a usage error in every program that takes an election path: one line
//! saying why, status 2, before anything connects or is created.

use std::process::Command;
use std::time::Duration;

use crate::common::{raw_client, run_command, runtime, zk};

#[test]
fn every_program_refuses_an_election_path_naming_an_elections_own_node() {
    let connect = zk().connect_string();
    let root = zoorpc_testkit::unique_path("reserved-paths");
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    for suffix in [".epoch", ".participants", ".jobs", ".floor"] {
        let path = format!("{root}/Svc:1.0.0{suffix}");
        let runs: Vec<(&str, Vec<&str>)> = vec![
            (
                env!("CARGO_BIN_EXE_zoorpc-ha-server"),
                vec!["--path", &path],
            ),
            (
                env!("CARGO_BIN_EXE_zoorpc-ha-client"),
                vec!["--path", &path],
            ),
            (
                env!("CARGO_BIN_EXE_zoorpc-master-job"),
                vec!["--path", &path],
            ),
            (zoorpc, vec!["master", &path]),
            (zoorpc, vec!["designate", &path, "127.0.0.1:5"]),
            (
                zoorpc,
                vec!["proxy", "--listen", "127.0.0.1:0", "--master", &path],
            ),
        ];
        for (exe, args) in runs {
            assert_usage_error(exe, &args, &connect, "election's own nodes");
        }
    }
    assert_not_created(&connect, &root);
}

/// `exe args --zk connect` ends with status 2 and one `error: invalid value` line saying
/// `expected`, having printed nothing on stdout.
pub(crate) fn assert_usage_error(exe: &str, args: &[&str], connect: &str, expected: &str) {
    let mut cmd = Command::new(exe);
    cmd.args(args).args(["--zk", connect]);
    let (code, stdout, stderr) = run_command(cmd, Duration::from_secs(30));
    let what = format!("{exe} {args:?}: stdout {stdout:?} stderr {stderr:?}");
    assert_eq!(code, Some(2), "{what}");
    assert_eq!(stderr.lines().count(), 1, "{what}");
    assert!(stderr.starts_with("error: invalid value"), "{what}");
    assert!(stderr.contains(expected), "{what}");
    assert!(stdout.is_empty(), "{what}");
}

/// Nothing was created at `root`.
pub(crate) fn assert_not_created(connect: &str, root: &str) {
    let runtime = runtime();
    let raw = runtime.block_on(raw_client(connect));
    let left = runtime.block_on(raw.check_stat(root)).unwrap();
    assert!(left.is_none(), "{root} was created");
}
