//! The `zoorpc` command: help and usage errors, and each subcommand against a real ZooKeeper
//! (providers, listings, watches, the master of an election, designation, the gRPC proxy).

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{eventually, raw_client, spawn_provider, zk};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::{ChildProcess, unique_path};

mod commands;
mod proxy;

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");

/// Runs `zoorpc args` to its end (at most 30 s): exit code, stdout, stderr.
fn zoorpc(args: &[&str], env_zk: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(ZOORPC);
    cmd.args(args).env_remove("ZOORPC_ZK");
    if let Some(zk) = env_zk {
        cmd.env("ZOORPC_ZK", zk);
    }
    let mut child = ChildProcess::spawn(format!("zoorpc {args:?}"), cmd).unwrap();
    let status = child
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("zoorpc {args:?} did not end: {e}"));
    let out = child.drain_lines().join("\n");
    (status.code(), out, String::new())
}

/// Runs `zoorpc args` capturing stderr too (for the usage errors).
fn zoorpc_stderr(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(ZOORPC)
        .args(args)
        .env_remove("ZOORPC_ZK")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn spawn(name: &str, args: &[&str]) -> ChildProcess {
    let mut cmd = Command::new(ZOORPC);
    cmd.args(args);
    ChildProcess::spawn(name, cmd).unwrap()
}

/// A plain tonic channel to `addr` (a proxy's, an HA server's).
async fn channel_to(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// `zoorpc proxy --zk CONNECT --listen 127.0.0.1:0 ARGS...` once it listens: the process, its
/// `listening` line and the address it accepts on.
fn start_proxy(connect: &str, args: &[&str]) -> (ChildProcess, String, String) {
    let mut all = vec!["proxy", "--zk", connect, "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut proxy = spawn("proxy", &all);
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let addr = line.split_whitespace().nth(1).unwrap().to_owned();
    (proxy, line, addr)
}

/// An `ha-server` process and its address.
fn ha_server(connect: &str, path: &str) -> (ChildProcess, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args(["--zk", connect, "--path", path, "--port", "0"])
        .args(["--session-timeout-ms", "2000"]);
    let mut process = ChildProcess::spawn("ha-server", cmd).unwrap();
    let line = process
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let address = line["listening ".len()..].to_owned();
    (process, address)
}

/// Two `ha-server` processes on `path`: the first once it is master, the second once it
/// stands by.
fn master_and_standby(
    connect: &str,
    path: &str,
) -> ((ChildProcess, String), (ChildProcess, String)) {
    let (mut first, first_addr) = ha_server(connect, path);
    first
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let (mut second, second_addr) = ha_server(connect, path);
    second
        .wait_for_line("role standby", Duration::from_secs(20))
        .unwrap();
    ((first, first_addr), (second, second_addr))
}
