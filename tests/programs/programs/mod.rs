//! The programs other tools drive: their exact output lines and exit codes.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{spawn_provider, zk};
use zoorpc_testkit::{ChildProcess, unique_path};

mod client;
mod refusals;
mod stopping;

/// Runs `program` with `args` to its end, at most `timeout` (then kills it and fails the test):
/// its exit code, stdout and stderr.
fn run_to_end(program: &str, args: &[&str], timeout: Duration) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(program);
    cmd.args(args);
    common::run_command(cmd, timeout)
}

/// `zoorpc-client` on the providers under `base`: `calls` calls, 5 ms apart.
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
