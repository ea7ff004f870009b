//! `zoorpc console` as an operator's browser sees it, through its JSON and its event stream:
//! real ZooKeeper, real provider and HA server processes, real signals. (The page itself in a
//! real browser: `console_browser`.)

use crate::common;

mod curator;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::ha_servers::HaServer;
use common::{raw_client, run_command, spawn_provider, zk};
use serde_json::Value;
use zookeeper_client as zkc;
use zoorpc_testkit::{ChildProcess, unique_path};

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

/// Three providers appear; the one SIGKILLed goes within its session timeout; a new one appears
/// within 1 s of registering; a node of hostile markup is reported as bad data; the actions are
/// refused without the credential, and the page says it is read-only.
#[test]
fn console_follows_providers_live_and_reports_bad_data_as_data() {
    let connect = zk().connect_string();
    let root = unique_path("console");
    let base = format!("{root}/svc");
    let mut fleet: Vec<_> = (0..3)
        .map(|_| spawn_provider(&connect, &base, 0, &[]))
        .collect();
    write_hostile_node(&connect, &base);
    let console = ConsoleProcess::start(&connect, &root, &[]);
    let events = console.events();
    let (state, _) = next_state(
        &events,
        "3 providers and the bad node",
        Duration::from_secs(10),
        |s| providers(s, &base).len() == 4,
    );
    for p in &fleet {
        assert!(urls(&state, &base).contains(&p.url), "{state}");
    }
    let bad = providers(&state, &base)
        .into_iter()
        .find(|p| p["url"].is_null())
        .expect("the bad node is shown");
    assert_eq!(bad["node"], "provider0000099999");
    assert!(bad["error"].as_str().unwrap().contains(HOSTILE), "{bad}");
    assert_eq!(state["can_act"], false);

    // SIGKILL: the node goes when ZooKeeper expires the session (1.5 s, as the provider asks).
    let victim = fleet.remove(0);
    victim.process.signal(libc::SIGKILL).unwrap();
    let killed = Instant::now();
    let (_, gone) = next_state(
        &events,
        "the killed provider's row goes",
        Duration::from_secs(10),
        |s| !urls(s, &base).contains(&victim.url),
    );
    let took = gone - killed;
    eprintln!("the killed provider's row went after {took:?}");
    assert!(took < Duration::from_millis(1500 + 1500), "took {took:?}");

    // A new provider: on the page within 1 s of its registration.
    let newcomer = spawn_provider(&connect, &base, 0, &[]);
    let registered = Instant::now();
    let (_, seen) = next_state(
        &events,
        "the new provider appears",
        Duration::from_secs(5),
        |s| urls(s, &base).contains(&newcomer.url),
    );
    assert!(
        seen - registered < Duration::from_secs(1),
        "took {:?}",
        seen - registered
    );

    assert_read_only(&console, &fleet[0].node, &base);
}

/// Without the credential every action is refused (403) and changes nothing; a request by a
/// name another site controls (DNS rebinding) is refused too (421).
fn assert_read_only(console: &ConsoleProcess, node: &str, base: &str) {
    let designate = r#"{"path": "/x", "address": "127.0.0.1:1"}"#;
    let (status, body) = console.request(
        "POST",
        "/api/designate",
        &["Content-Type: application/json", "X-Zoorpc-Confirmed: yes"],
        designate,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--zk-auth-file"), "{body}");
    let weight = format!(r#"{{"node": "{}", "weight": 1}}"#, node);
    let confirmed = ["Content-Type: application/json", "X-Zoorpc-Confirmed: yes"];
    let (status, body) = console.request("POST", "/api/weight", &confirmed, &weight);
    assert_eq!(status, 403, "{body}");
    assert_eq!(urls(&console.state(), base).len(), 3, "nothing changed");
    // A request by a name another site controls (DNS rebinding) is refused too.
    let mut stream = TcpStream::connect(&console.addr).unwrap();
    write!(
        stream,
        "GET /api/state HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
}

/// The masters of every election under the root, and a timeline that shows a handover.
#[test]
fn console_shows_each_master_and_a_handover_in_the_timeline() {
    let connect = zk().connect_string();
    let root = unique_path("console-masters");
    let path = format!("{root}/master/Hello:1.0.0");
    let (first, second) = master_and_standby(&connect, &path);
    let console = ConsoleProcess::start(&connect, &root, &[]);
    let events = console.events();
    let (state, _) = next_state(
        &events,
        "the master and its standby",
        Duration::from_secs(10),
        |s| s["masters"][0]["standbys"][0] == second.address.as_str(),
    );
    assert_eq!(state["masters"][0]["path"], path.as_str());
    assert_eq!(state["masters"][0]["master"], first.address.as_str());
    assert!(state["masters"][0]["epoch"].is_i64(), "{state}");

    designate_by_command(&connect, &path, &second.address);
    let (state, _) = next_state(
        &events,
        "the handover in the timeline",
        Duration::from_secs(15),
        |s| {
            s["timeline"].as_array().is_some_and(|t| {
                t.last()
                    .is_some_and(|e| e["master"] == second.address.as_str())
            })
        },
    );
    let timeline = state["timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["master"], first.address.as_str(), "{state}");
    assert_eq!(
        state["masters"][0]["master"],
        second.address.as_str(),
        "{state}"
    );
    let epochs: Vec<i64> = timeline
        .iter()
        .filter_map(|e| e["epoch"].as_i64())
        .collect();
    assert!(
        epochs.windows(2).all(|w| w[0] < w[1]),
        "epochs only grow: {epochs:?}"
    );
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

/// `--scrape`: a consumer's traffic per provider, and a SIGKILLed provider's traffic moving to
/// the other one.
#[test]
fn console_shows_traffic_per_provider_and_it_moves_when_one_dies() {
    let connect = zk().connect_string();
    let root = unique_path("console-traffic");
    let base = format!("{root}/svc");
    let mut fleet: Vec<_> = (0..2)
        .map(|_| spawn_provider(&connect, &base, 0, &[]))
        .collect();
    let metrics = crate::prometheus::free_addr();
    let _caller = spawn_caller(&connect, &base, &metrics);
    let console = ConsoleProcess::start(&connect, &root, &["--scrape", &metrics]);
    let events = console.events();
    let (state, _) = next_state(
        &events,
        "traffic to both providers",
        Duration::from_secs(20),
        |s| fleet.iter().all(|p| calls_per_s(s, &p.url) > 0.0),
    );
    assert_eq!(state["traffic"]["targets"][0]["ok"], true, "{state}");
    assert_eq!(
        state["homes"][fleet[0].url.as_str()],
        base.as_str(),
        "{state}"
    );

    let victim = fleet.remove(0);
    victim.process.signal(libc::SIGKILL).unwrap();
    let survivor = &fleet[0];
    next_state(
        &events,
        "the traffic moves to the survivor",
        Duration::from_secs(20),
        |s| calls_per_s(s, &victim.url) == 0.0 && calls_per_s(s, &survivor.url) > 20.0,
    );
}

/// With `--zk-auth-file` the console acts, after a confirmation: a weight set through it is kept
/// by the provider (written back, after someone else's write into its node, with that weight:
/// before the rule it wrote its old weight back), and a standby is made master.
#[test]
fn console_with_the_credential_sets_a_weight_the_provider_keeps_and_designates() {
    let connect = zk().connect_string();
    let root = unique_path("console-act");
    let base = format!("{root}/svc");
    let provider = spawn_provider(&connect, &base, 0, &["--weight", "100"]);
    let election = format!("{root}/master/Hello:1.0.0");
    let (_first, second) = master_and_standby(&connect, &election);
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("zk-auth");
    std::fs::write(&auth, "console:secret\n").unwrap();
    let console =
        ConsoleProcess::start(&connect, &root, &["--zk-auth-file", auth.to_str().unwrap()]);
    let events = console.events();
    assert_eq!(console.state()["can_act"], true);

    let body = format!(r#"{{"node": "{}", "weight": 7}}"#, provider.node);
    let json = "Content-Type: application/json";
    let (status, answer) = console.request("POST", "/api/weight", &[json], &body);
    assert_eq!(status, 428, "not confirmed: {answer}");
    let confirmed = [json, "X-Zoorpc-Confirmed: yes"];
    let (status, answer) = console.request("POST", "/api/weight", &confirmed, &body);
    assert_eq!(status, 200, "{answer}");
    let reweighted = provider.url.replace("weight=100", "weight=7");
    next_state(&events, "the new weight", Duration::from_secs(10), |s| {
        urls(s, &base) == [reweighted.clone()]
    });
    // Someone else's write into the node: the provider writes its URL back, with weight 7.
    let rt = common::runtime();
    rt.block_on(async {
        let client = raw_client(&connect).await;
        client
            .set_data(&provider.node, b"http://10.9.9.9:1", None)
            .await
            .unwrap();
    });
    let (state, _) = next_state(
        &events,
        "the provider's URL written back",
        Duration::from_secs(10),
        |s| urls(s, &base).iter().all(|u| !u.contains("10.9.9.9")),
    );
    assert_eq!(urls(&state, &base), [reweighted], "{state}");

    let body = format!(
        r#"{{"path": "{election}", "address": "{}"}}"#,
        second.address
    );
    let (status, answer) = console.request("POST", "/api/designate", &confirmed, &body);
    assert_eq!(status, 200, "{answer}");
    next_state(
        &events,
        "the designated master",
        Duration::from_secs(15),
        |s| s["masters"][0]["master"] == second.address.as_str(),
    );
    // Not a contender: refused, nothing changed.
    let body = format!(r#"{{"path": "{election}", "address": "127.0.0.1:1"}}"#);
    let (status, answer) = console.request("POST", "/api/designate", &confirmed, &body);
    assert_eq!(status, 409, "{answer}");
}

/// ZooKeeper out of reach: the page keeps the last state and says so; back, it reads again.
#[test]
fn console_keeps_the_last_state_while_zookeeper_is_out_of_reach_and_says_so() {
    let mut server = zoorpc_testkit::ZkServer::start().expect("a ZooKeeper of this test's own");
    let connect = server.connect_string();
    let root = unique_path("console-unreachable");
    let base = format!("{root}/svc");
    let provider = spawn_provider(&connect, &base, 0, &[]);
    let console = ConsoleProcess::start(&connect, &root, &[]);
    let events = console.events();
    next_state(&events, "the provider", Duration::from_secs(10), |s| {
        urls(s, &base) == [provider.url.clone()] && s["zookeeper"]["ok"] == true
    });
    server.kill();
    let (state, _) = next_state(
        &events,
        "ZooKeeper out of reach, said",
        Duration::from_secs(20),
        |s| s["zookeeper"]["ok"] == false,
    );
    assert!(
        state["zookeeper"]["problem"]
            .as_str()
            .unwrap()
            .contains("out of reach"),
        "{state}"
    );
    assert_eq!(
        urls(&state, &base),
        std::slice::from_ref(&provider.url),
        "the last state stays"
    );
    server.restart().expect("ZooKeeper back");
    next_state(
        &events,
        "ZooKeeper back, read again",
        Duration::from_secs(30),
        |s| s["zookeeper"]["ok"] == true,
    );
}
