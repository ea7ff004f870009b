//! `zoorpc console` as an operator's browser sees it, through its JSON and its event stream:
//! real ZooKeeper, real provider and HA server processes, real signals. (The page itself in a
//! real browser: `console_browser`.)

use crate::common;
mod curator;
use common::ha_servers::HaServer;
use common::{raw_client, run_command, spawn_provider, zk};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use zookeeper_client as zkc;
use zoorpc_testkit::{ChildProcess, unique_path};

mod actions;
mod churn;
mod listen;
mod views;

/// What a hostile writer puts in a node: markup that would run script if inserted as HTML.
pub const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// A running `zoorpc console` and its address.
pub struct ConsoleProcess {
    pub process: ChildProcess,
    pub addr: String,
}

impl ConsoleProcess {
    /// Starts `zoorpc console --root root` on a free loopback port (`extra`: more flags).
    pub fn start(connect: &str, root: &str, extra: &[&str]) -> ConsoleProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
        cmd.args([
            "console",
            "--zk",
            connect,
            "--root",
            root,
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env_remove("ZOORPC_ZK_AUTH_FILE");
        let mut process = ChildProcess::spawn("console", cmd).expect("spawn console");
        let line = process
            .wait_for_line("console at ", Duration::from_secs(30))
            .expect("the console says where it serves");
        let addr = line["console at http://".len()..]
            .trim_end_matches('/')
            .to_owned();
        ConsoleProcess { process, addr }
    }

    /// Starts `zoorpc console --root root --zk-auth-file FILE` (a credential of its own, in
    /// the returned folder: keep it while the console runs), which may act.
    pub fn start_acting(connect: &str, root: &str) -> (ConsoleProcess, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temp dir for the credential");
        let auth = dir.path().join("zk-auth");
        std::fs::write(&auth, "console:secret\n").expect("write the credential");
        let auth = auth.to_str().expect("a UTF-8 temp path");
        let console = ConsoleProcess::start(connect, root, &["--zk-auth-file", auth]);
        (console, dir)
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// One request (`Connection: close`): the status and the body.
    pub fn request(&self, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to the console");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        write!(stream, "{head}\r\n{body}").expect("send the request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the answer");
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {answer:?}"));
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.to_owned())
    }

    pub fn state(&self) -> Value {
        let (status, body) = self.request("GET", "/api/state", &[], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("the state is JSON")
    }

    /// The event stream: every `state` event, parsed, as it comes.
    pub fn events(&self) -> mpsc::Receiver<Value> {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to the console");
        write!(
            stream,
            "GET /api/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr
        )
        .expect("ask for events");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                // Chunked encoding puts sizes on lines of their own; the events' lines are whole.
                if let Some(data) = line.strip_prefix("data: ") {
                    let Ok(state) = serde_json::from_str(data) else {
                        continue;
                    };
                    if tx.send(state).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}

/// Waits on `events` for a state that `check` accepts; returns it and when it came.
pub fn next_state(
    events: &mpsc::Receiver<Value>,
    what: &str,
    within: Duration,
    check: impl Fn(&Value) -> bool,
) -> (Value, Instant) {
    let deadline = Instant::now() + within;
    let mut last = Value::Null;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(state) if check(&state) => return (state, Instant::now()),
            Ok(state) => last = state,
            Err(_) => panic!("{what}: not within {within:?}; last state: {last}"),
        }
    }
}

/// The providers the state shows under `base`.
pub fn providers(state: &Value, base: &str) -> Vec<Value> {
    state["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["base_path"] == base)
        .flat_map(|s| s["providers"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The good providers' URLs under `base`.
pub fn urls(state: &Value, base: &str) -> Vec<String> {
    providers(state, base)
        .iter()
        .filter_map(|p| p["url"].as_str().map(str::to_owned))
        .collect()
}

/// Writes a persistent node holding [`HOSTILE`] among `base`'s providers; returns its path.
pub fn write_hostile_node(connect: &str, base: &str) -> String {
    let path = format!("{base}/provider0000099999");
    let rt = common::runtime();
    rt.block_on(async {
        let client = raw_client(connect).await;
        let options = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        client
            .create(&path, HOSTILE.as_bytes(), &options)
            .await
            .expect("create the hostile node");
    });
    path
}

/// Creates the missing parents of `path` (persistent, open to all), as `zkCli.sh create -p`.
pub async fn create_parents(client: &zkc::Client, path: &str) {
    let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    let mut at = String::new();
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        at = format!("{at}/{part}");
        // There already (another test's, or this one's): fine.
        let _ = client.create(&at, b"", &persistent).await;
    }
}

/// Two HA servers contending at `path`: the master (the first, once it says so) and a standby.
pub fn master_and_standby(connect: &str, path: &str) -> (HaServer, HaServer) {
    let mut first = HaServer::spawn(connect, path, &[]);
    first
        .next_line("role master", Duration::from_secs(20))
        .expect("the first is master");
    (first, HaServer::spawn(connect, path, &[]))
}

/// `zoorpc designate` (a real operator's command): hands `path` over to `address`.
pub fn designate_by_command(connect: &str, path: &str, address: &str) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args(["designate", "--zk", connect, path, address]);
    let (code, out, err) = run_command(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{out} {err}");
}

/// `zoorpc-client --metrics ADDR` calling the base path every 10 ms, until dropped.
pub fn spawn_caller(connect: &str, base: &str, metrics: &str) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
    cmd.args(["--zk", connect, "--base-path", base, "--metrics", metrics])
        .args(["--calls", "1000000", "--interval-ms", "10"]);
    ChildProcess::spawn("caller", cmd).expect("spawn the caller")
}

/// The calls per second the state shows for `url`'s endpoint (0 when not shown).
pub fn calls_per_s(state: &Value, url: &str) -> f64 {
    let endpoint = url.split('?').next().unwrap_or(url);
    state["traffic"]["endpoints"][endpoint]["calls_per_s"]
        .as_f64()
        .unwrap_or(0.0)
}
