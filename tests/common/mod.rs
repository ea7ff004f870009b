//! Shared helpers of the end-to-end tests: the shared ZooKeeper, provider processes, raw reads.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use zoorpc_testkit::{ChildProcess, ZkServer};

pub mod echo_load;
pub mod ha_servers;
pub mod pki;
mod poll;

// Not every test binary polls.
#[allow(unused_imports)]
pub use poll::{POLL, eventually, eventually_blocking, poll_until};

/// The shared ZooKeeper of this test binary.
pub fn zk() -> &'static ZkServer {
    match ZkServer::shared() {
        Ok(server) => server,
        Err(e) => panic!("cannot start the shared ZooKeeper: {e}"),
    }
}

/// A multi-thread runtime with two workers, for tests that drive processes from plain threads.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Whether this run is a soak (`ZOORPC_SOAK=1`, as `make soak` sets): the soak-level tests
/// (rounds of expiries and elections, the sweep of every flag with every garbage value) run
/// their full count then, and a smaller count of the same checks in `make test`.
pub fn soak() -> bool {
    std::env::var_os("ZOORPC_SOAK").is_some_and(|v| v == "1")
}

/// `full` in a soak run, `quick` otherwise.
pub fn soak_count(full: usize, quick: usize) -> usize {
    if soak() { full } else { quick }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    zoorpc::init_logging();
}

/// A provider process (`zoorpc-provider`) and what it printed when it registered.
pub struct ProviderProcess {
    pub process: ChildProcess,
    pub node: String,
    pub url: String,
    pub port: u16,
}

/// `cmd` with each of `defaults` (a flag and its value) that `extra` does not give, then
/// `extra`: the programs refuse a flag given twice, so a helper's default gives way to the
/// caller's value instead of being followed by it.
pub fn args_with_defaults(cmd: &mut Command, defaults: &[(&str, &str)], extra: &[&str]) {
    for (flag, value) in defaults {
        let given = extra
            .iter()
            .any(|arg| arg == flag || arg.starts_with(&format!("{flag}=")));
        if !given {
            cmd.args([flag, value]);
        }
    }
    cmd.args(extra);
}

/// Starts `zoorpc xds` on `connect` with `args` (its log into `log`, if given) and waits for its
/// `listening <addr>` line; returns it and the address.
pub fn start_xds(
    connect: &str,
    args: &[&str],
    log: Option<&std::path::Path>,
) -> (ChildProcess, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args(["xds", "--zk", connect, "--listen", "127.0.0.1:0"])
        .args(args);
    if let Some(log) = log {
        cmd.stderr(std::fs::File::create(log).unwrap());
    }
    let mut xds = ChildProcess::spawn("zoorpc xds", cmd).unwrap();
    let line = xds
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let address = line["listening ".len()..].to_owned();
    (xds, address)
}

/// Starts `zoorpc-provider` and waits for its `registered <node> <url>` line (`extra`: more
/// flags, which may replace its session timeout).
pub fn spawn_provider(connect: &str, base: &str, port: u16, extra: &[&str]) -> ProviderProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"));
    cmd.args([
        "--zk",
        connect,
        "--base-path",
        base,
        "--port",
        &port.to_string(),
    ]);
    args_with_defaults(&mut cmd, &[("--session-timeout-ms", "1500")], extra);
    let mut process = ChildProcess::spawn(format!("provider:{port}"), cmd).expect("spawn provider");
    let line = process
        .wait_for_line("registered ", Duration::from_secs(20))
        .expect("provider registers");
    let mut parts = line.split_whitespace().skip(1);
    let node = parts.next().expect("node in line").to_owned();
    let url = parts.next().expect("url in line").to_owned();
    // The URL may carry metadata (`?weight=...`) after the port.
    let port = url
        .split('?')
        .next()
        .unwrap_or(&url)
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in url");
    ProviderProcess {
        process,
        node,
        url,
        port,
    }
}

/// A raw zookeeper-client connection, for checking what is in ZooKeeper independently of zoorpc.
pub async fn raw_client(connect: &str) -> zookeeper_client::Client {
    zookeeper_client::Client::connect(connect)
        .await
        .expect("raw connect")
}

/// `zoorpc-provider` registering in the Curator layout (`extra`: more flags), once it says so.
pub fn curator_provider(connect: &str, base: &str, name: &str, extra: &[&str]) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"));
    cmd.args([
        "--zk",
        connect,
        "--curator-name",
        name,
        "--curator-base",
        base,
    ])
    .args(["--session-timeout-ms", "1500"])
    .args(extra);
    let mut process = ChildProcess::spawn(format!("curator provider {name}"), cmd).unwrap();
    process
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    process
}

/// The `http://HOST:PORT` of a provider's `registered <node> <url>` line.
pub fn url_of(process: &ChildProcess) -> String {
    let line = process
        .seen_lines()
        .iter()
        .find(|l| l.starts_with("registered "))
        .unwrap();
    let url = line.split_whitespace().nth(2).unwrap();
    url.split('?').next().unwrap().to_owned()
}

/// The node and URL of a provider's first `registered <node> <url>` line.
pub fn registered(process: &ChildProcess) -> (String, String) {
    let line = process
        .seen_lines()
        .iter()
        .find(|l| l.starts_with("registered "))
        .expect("the provider said registered");
    let mut parts = line.split_whitespace().skip(1);
    let node = parts.next().expect("node in line").to_owned();
    let url = parts.next().expect("url in line").to_owned();
    (node, url)
}

/// Waits until `path` does not exist, using an exists-watch; returns when it is gone.
pub async fn wait_node_gone(
    client: &zookeeper_client::Client,
    path: &str,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let (stat, watcher) = client.check_and_watch_stat(path).await.expect("exists");
        if stat.is_none() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, watcher.changed()).await.is_err() {
            return false;
        }
    }
}

/// Whether `name` is `provider` followed by exactly ten digits.
pub fn is_provider_node_name(name: &str) -> bool {
    name.strip_prefix("provider")
        .is_some_and(|seq| seq.len() == 10 && seq.chars().all(|c| c.is_ascii_digit()))
}

/// Runs `cmd` to its end, at most `timeout` (then kills it and fails the test): its exit code,
/// stdout and stderr.
pub fn run_command(cmd: Command, timeout: Duration) -> (Option<i32>, String, String) {
    let what = format!("{cmd:?}");
    match run_command_bounded(cmd, timeout) {
        (code, stdout, stderr, false) => (code, stdout, stderr),
        (_, stdout, stderr, true) => {
            panic!("{what} still ran after {timeout:?}\nstdout: {stdout}\nstderr: {stderr}")
        }
    }
}

/// Runs `cmd` to its end or kills it after `timeout`: its exit code (`None` if killed), stdout,
/// stderr, and whether it had to be killed.
pub fn run_command_bounded(
    mut cmd: Command,
    timeout: Duration,
) -> (Option<i32>, String, String, bool) {
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let (output, killed) = match rx.recv_timeout(timeout) {
        Ok(output) => (output, false),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been reaped (its waiter is blocked).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (rx.recv().unwrap(), true)
        }
    };
    let output = output.unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        killed,
    )
}

/// The next line of `process` starting with `prefix` after the first `*cursor` lines it printed
/// (moving the cursor past it), waiting at most `timeout`; `None` if none comes. Lets a test
/// read a process's lines in order, several prefixes interleaved, without losing any.
pub fn next_line_after(
    process: &mut ChildProcess,
    cursor: &mut usize,
    prefix: &str,
    timeout: Duration,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        while *cursor < process.seen_lines().len() {
            let line = process.seen_lines()[*cursor].clone();
            *cursor += 1;
            if line.starts_with(prefix) {
                return Some(line);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        // Appends every line it reads to `seen_lines`, which the loop above looks at.
        if process.wait_for_line(prefix, left).is_err() {
            process.drain_lines();
            if *cursor == process.seen_lines().len() {
                return None;
            }
        }
    }
}
