//! One rule for a contender's address in every program: an IPv6 address is written in brackets
//! (`[::1]:5`, as a contender writes itself into the master node); the unbracketed form is a
//! usage error naming the bracketed one, before anything connects.

use crate::common::zk;
use crate::election_paths::{assert_not_created, assert_usage_error};

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
            assert_usage_error(exe, &args, &connect, &format!("write {bracketed}"));
        }
    }
    assert_not_created(&connect, &root);
}
