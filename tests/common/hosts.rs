//! Test hosts for the partition tests: a network of namespaces with ZooKeeper in one of them,
//! zoorpc's programs started inside hosts, and a bounded call loop through a consumer.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zoorpc::consumer::{Consumer, ConsumerConfig};
use zoorpc_testkit::netns::{Host, Network};
use zoorpc_testkit::{ChildProcess, ZkEnsemble, ZkServer, ZkServerConfig};

use crate::common::eventually;
use crate::common::ha_servers::HaServer;

/// ZooKeeper in test hosts: one server, or an ensemble with one member per host.
pub enum Zk {
    One(ZkServer),
    Ensemble(ZkEnsemble),
}

/// A network of test hosts, some running ZooKeeper (`zk`, or `zk1`..`zk3`).
pub struct Cluster {
    /// Dropped first: the servers leave their namespaces before they are deleted.
    pub zk: Zk,
    zk_hosts: Vec<String>,
    pub net: Network,
}

impl Cluster {
    /// The hosts `zk` and `others`, with ZooKeeper started in `zk`; `None` (after printing
    /// `skipped: <reason>`) where network namespaces cannot be made.
    pub fn start(others: &[&str]) -> Option<Cluster> {
        let net = Self::network(&["zk"], others)?;
        let zk = ZkServer::start_in(net.host("zk"), ZkServerConfig::default())
            .unwrap_or_else(|e| panic!("cannot start ZooKeeper in its host: {e}"));
        Some(Cluster {
            zk: Zk::One(zk),
            zk_hosts: vec!["zk".into()],
            net,
        })
    }

    /// The hosts `zk1`, `zk2`, `zk3` (a 3-member ensemble, one member in each) and `others`.
    pub fn start_ensemble(others: &[&str]) -> Option<Cluster> {
        let zk_names = ["zk1", "zk2", "zk3"];
        let net = Self::network(&zk_names, others)?;
        let hosts: Vec<&Host> = zk_names.iter().map(|n| net.host(n)).collect();
        let zk = ZkEnsemble::start_in(&hosts, ZkServerConfig::default())
            .unwrap_or_else(|e| panic!("cannot start the ensemble in its hosts: {e}"));
        Some(Cluster {
            zk: Zk::Ensemble(zk),
            zk_hosts: zk_names.iter().map(|n| (*n).to_owned()).collect(),
            net,
        })
    }

    fn network(zk: &[&str], others: &[&str]) -> Option<Network> {
        if let Err(reason) = zoorpc_testkit::netns::available() {
            println!("skipped: {reason}");
            return None;
        }
        let names: Vec<&str> = zk.iter().chain(others).copied().collect();
        Some(Network::new(&names).unwrap_or_else(|e| panic!("cannot make the hosts: {e}")))
    }

    pub fn host(&self, name: &str) -> &Host {
        self.net.host(name)
    }

    pub fn connect(&self) -> String {
        match &self.zk {
            Zk::One(server) => server.connect_string(),
            Zk::Ensemble(ensemble) => ensemble.connect_string(),
        }
    }

    /// Cuts `name` from every ZooKeeper host (both directions).
    pub fn cut_from_zk(&self, name: &str) {
        for zk in &self.zk_hosts {
            self.net
                .cut(self.host(name), self.host(zk))
                .unwrap_or_else(|e| panic!("cannot cut {name} from {zk}: {e}"));
        }
    }

    /// Undoes [`Cluster::cut_from_zk`].
    pub fn heal_with_zk(&self, name: &str) {
        for zk in &self.zk_hosts {
            self.net
                .heal(self.host(name), self.host(zk))
                .unwrap_or_else(|e| panic!("cannot heal {name} with {zk}: {e}"));
        }
    }
}

/// Session timeout of every provider and consumer here (ZooKeeper ticks are 200 ms).
pub const SESSION_MS: u64 = 1500;

pub async fn consumer(connect: &str, base: &str) -> Arc<Consumer> {
    let mut config = ConsumerConfig::new(connect, base);
    config.session_timeout = Duration::from_millis(SESSION_MS);
    Arc::new(
        Consumer::connect_with(config)
            .await
            .unwrap_or_else(|e| panic!("the consumer cannot connect: {e}")),
    )
}

pub fn has_exactly(urls: &[zoorpc::registry::ProviderUrl], expected: &[&str]) -> bool {
    let mut got: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    let mut want: Vec<String> = expected.iter().map(|u| (*u).to_owned()).collect();
    got.sort();
    want.sort();
    got == want
}

/// A multi-thread runtime; built inside a host's thread, its workers are in that host too.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// `future` on a fresh [`runtime`], whose shutdown then waits at most 5 s for its threads: in a
/// host's namespace a ZooKeeper client's reconnect loop was seen spinning in a worker (a
/// `socket()` failing at once, again and again) after the test's body was done, and dropping
/// the runtime waited for that worker for ever.
pub fn block_on_bounded<F: std::future::Future>(future: F) -> F::Output {
    let rt = runtime();
    let out = rt.block_on(future);
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    out
}

/// A `zoorpc-provider` running in its host and what it printed when it registered.
pub struct HostProvider {
    pub process: ChildProcess,
    pub node: String,
    pub url: String,
}

/// Starts `zoorpc-provider` in `host`, listening on the host's address (no host: on this
/// machine's loopback), and waits until it registered.
pub fn spawn_provider(
    host: Option<&Host>,
    connect: &str,
    base: &str,
    session_ms: u64,
) -> HostProvider {
    let program = env!("CARGO_BIN_EXE_zoorpc-provider");
    let (mut cmd, addr, name) = match host {
        Some(host) => (
            host.command(program),
            host.addr().to_string(),
            host.name().to_owned(),
        ),
        None => (Command::new(program), "127.0.0.1".into(), "loopback".into()),
    };
    cmd.args(["--zk", connect, "--base-path", base, "--port", "0"])
        .args(["--listen-host", &addr])
        .args(["--session-timeout-ms", &session_ms.to_string()])
        .args(["--drain-grace-ms", "300"]);
    let mut process = ChildProcess::spawn(format!("provider@{name}"), cmd).expect("spawn provider");
    let line = process
        .wait_for_line("registered ", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("the provider in {name} did not register: {e}"));
    let mut parts = line.split_whitespace().skip(1);
    let node = parts.next().expect("node in line").to_owned();
    let url = parts.next().expect("url in line").to_owned();
    assert!(url.contains(&addr), "{url} is not at {addr}");
    HostProvider { process, node, url }
}

/// The answers per provider URL and the failures of a call loop, in order.
#[derive(Debug, Default)]
pub struct Calls {
    pub answers: HashMap<String, u64>,
    pub failures: Vec<String>,
    /// Every answer's URL with the time it came, for "who answered after X".
    pub log: Vec<(Instant, String)>,
}

/// One task calling `SayHello` through `consumer` every 10 ms until stopped (at most 60 s or
/// 6000 calls).
pub struct CallLoop {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Calls>,
}

impl CallLoop {
    pub fn start(consumer: Arc<Consumer>) -> CallLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut calls = Calls::default();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..6000 {
                if flag.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
                ticker.tick().await;
                match consumer.say_hello("partition").await {
                    Ok(answer) => {
                        let url = answer.url.to_string();
                        *calls.answers.entry(url.clone()).or_insert(0) += 1;
                        calls.log.push((Instant::now(), url));
                    }
                    Err(e) => calls.failures.push(e.to_string()),
                }
            }
            calls
        });
        CallLoop { stop, task }
    }

    pub async fn stop(self) -> Calls {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the call loop panicked")
    }
}

impl Calls {
    /// Asserts that no call of the loop failed.
    pub fn assert_none_failed(&self) {
        assert!(
            self.failures.is_empty(),
            "{} calls failed: {:?}",
            self.failures.len(),
            self.failures
        );
    }
}

/// Waits until `consumer` holds exactly `urls`, at most `timeout` (fails the test otherwise).
pub async fn wait_for_exactly(consumer: &Consumer, urls: &[&str], timeout: Duration) {
    assert!(
        consumer.wait_until(timeout, |u| has_exactly(u, urls)).await,
        "the consumer never held exactly {urls:?}: {:?}",
        consumer.urls()
    );
}

/// Waits (at most 10 s) until a call through `consumer` is answered by `url`.
pub async fn wait_answered_by(what: &str, consumer: &Arc<Consumer>, url: &str) {
    eventually(what, Duration::from_secs(10), || answered_by(consumer, url)).await
}

/// `Ok` if a call through `consumer` is answered by `url`; what happened instead if not.
pub async fn answered_by(consumer: &Consumer, url: &str) -> Result<(), String> {
    match consumer.say_hello("after").await {
        Ok(answer) if answer.url.as_str() == url => Ok(()),
        Ok(answer) => Err(format!("answered by {}", answer.url)),
        Err(e) => Err(e.to_string()),
    }
}

/// The children of `base` and their data, read with a plain ZooKeeper client.
pub async fn providers_in_zk(
    client: &zookeeper_client::Client,
    base: &str,
) -> Option<Vec<(String, String)>> {
    let children = client.list_children(base).await.ok()?;
    let mut nodes = Vec::new();
    for child in children {
        let path = format!("{base}/{child}");
        if let Ok((data, _)) = client.get_data(&path).await {
            nodes.push((path, String::from_utf8_lossy(&data).into_owned()));
        }
    }
    Some(nodes)
}

/// Starts `zoorpc-ha-server` contenders in a test host, with a master-only job every 100 ms:
/// each an [`HaServer`] (its role lines read the same way) listening on the host's address.
pub struct HostHaServer;

impl HostHaServer {
    pub fn spawn(host: &Host, connect: &str, path: &str, session_ms: u64) -> HaServer {
        let mut cmd = host.command(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
        let addr = host.addr().to_string();
        cmd.args(["--zk", connect, "--path", path, "--port", "0"])
            .args(["--listen-host", &addr])
            .args(["--session-timeout-ms", &session_ms.to_string()])
            .args(["--job-interval-ms", "100", "--job-name", "tick"]);
        let process =
            ChildProcess::spawn(format!("ha-server@{}", host.name()), cmd).expect("spawn");
        HaServer::listening(process, &addr, Duration::from_secs(30))
    }
}
