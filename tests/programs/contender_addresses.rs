//! One rule for a contender's address in every program: an IPv6 address is written in brackets
//! (`[::1]:5`, as a contender writes itself into the master node); the unbracketed form is a
//! usage error naming the bracketed one, before anything connects.

use std::process::Command;
use std::time::Duration;

use crate::common::{raw_client, run_command, runtime, zk};

#[test]
fn an_unbracketed_ipv6_address_is_refused_naming_the_bracketed_form_in_every_program() {
    let connect = zk().connect_string();
    let root = zoorpc_testkit::unique_path("ipv6-address");
    let path = format!("{root}/Job:1.0.0");
    for (address, bracketed) in [("::1:5", "[::1]:5"), ("fe80::2:9091", "[fe80::2]:9091")] {
        let runs: Vec<(&str, Vec<&str>)> = vec![
            (
                env!("CARGO_BIN_EXE_zoorpc-master-job"),
                vec!["--path", &path, "--address", address],
            ),
            (
                env!("CARGO_BIN_EXE_zoorpc"),
                vec!["designate", &path, address, "--force"],
            ),
        ];
        for (exe, args) in runs {
            let mut cmd = Command::new(exe);
            cmd.args(&args).args(["--zk", &connect]);
            let (code, stdout, stderr) = run_command(cmd, Duration::from_secs(30));
            let what = format!("{exe} {args:?}: stdout {stdout:?} stderr {stderr:?}");
            assert_eq!(code, Some(2), "{what}");
            assert_eq!(stderr.lines().count(), 1, "{what}");
            assert!(stderr.contains(&format!("write {bracketed}")), "{what}");
            assert!(stdout.is_empty(), "{what}");
        }
    }
    let runtime = runtime();
    let raw = runtime.block_on(raw_client(&connect));
    let left = runtime.block_on(raw.check_stat(&root)).unwrap();
    assert!(left.is_none(), "{root} was created");
}
