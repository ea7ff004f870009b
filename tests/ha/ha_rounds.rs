//! 100 rounds of killing the master among 3 contenders, with clients calling the master all
//! along. Contenders run in process, each with its own ZooKeeper session (through its own TCP
//! proxy, so its network can be cut) and its own gRPC server that answers only while its
//! contender is master (as `ha_server` does). A kill is, in turn:
//! - an abrupt exit: the contender vanishes, its session closes with it;
//! - a partition: the contender's packets are silently dropped, so ZooKeeper expires its
//!   session after the session timeout while the contender itself lives on and must step down
//!   on its own before a standby takes over; then the network heals and it rejoins.
//!
//! Checked: no two contenders ever report master at the same instant (role intervals from the
//! instants the contenders adopted their roles); calls with the default retry bound never fail;
//! calls with a tight bound fail only when no master existed during the call; every answer
//! came from a contender that was master while the call was under way.

use crate::common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{soak_count, zk};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use zoorpc::apps::hello::Greeter;
use zoorpc::consumer::master_client::standby_status;
use zoorpc::consumer::{MasterClient, MasterClientConfig};
use zoorpc::proto::HelloServiceServer;
use zoorpc::registry::{MasterElection, Role, RoleChange, Session, SessionConfig};
use zoorpc_testkit::ZkProxy;
use zoorpc_testkit::unique_path;

const SESSION_TIMEOUT: Duration = Duration::from_millis(1000);
/// Longest a master change may take (a partition: session timeout, expiry tick, slack).
const TAKEOVER: Duration = Duration::from_secs(5);

/// Every role change of every contender incarnation: (node, incarnation, change).
#[derive(Clone, Default)]
struct RoleLog {
    entries: Arc<Mutex<Vec<(usize, u64, RoleChange)>>>,
    version: Arc<watch::Sender<u64>>,
}

impl RoleLog {
    fn push(&self, node: usize, incarnation: u64, change: RoleChange) {
        self.entries
            .lock()
            .unwrap()
            .push((node, incarnation, change));
        self.version.send_modify(|v| *v += 1);
    }

    /// Master intervals `(node, start, end)`; `end` is `None` while still master.
    fn intervals(&self) -> Vec<(usize, Instant, Option<Instant>)> {
        let entries = self.entries.lock().unwrap().clone();
        let mut open: std::collections::HashMap<(usize, u64), Instant> = Default::default();
        let mut out = Vec::new();
        for (node, inc, change) in entries {
            let key = (node, inc);
            match (change.role.is_master(), open.get(&key).copied()) {
                (true, None) => {
                    open.insert(key, change.at);
                }
                (false, Some(start)) => {
                    open.remove(&key);
                    out.push((node, start, Some(change.at)));
                }
                _ => {}
            }
        }
        out.extend(
            open.into_iter()
                .map(|((node, _), start)| (node, start, None)),
        );
        out.sort_by_key(|(_, start, _)| *start);
        out
    }

    /// Waits until `pred` holds for the current roles (one per node), at most `timeout`.
    async fn wait_roles(
        &self,
        nodes: &[Node],
        timeout: Duration,
        mut pred: impl FnMut(&[Role]) -> bool,
    ) -> Vec<Role> {
        let mut versions = self.version.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                versions.borrow_and_update();
                let roles: Vec<Role> = nodes.iter().map(|n| n.mirror.borrow().clone()).collect();
                if pred(&roles) {
                    return roles;
                }
                versions.changed().await.unwrap();
            }
        })
        .await;
        match waited {
            Ok(roles) => roles,
            Err(_) => panic!(
                "roles did not settle within {timeout:?}: {:?}",
                nodes
                    .iter()
                    .map(|n| n.mirror.borrow().clone())
                    .collect::<Vec<_>>()
            ),
        }
    }
}

/// One contender "machine": a gRPC server that lives through the test, and the current
/// incarnation of its contender (replaced after an abrupt exit).
struct Node {
    index: usize,
    address: String,
    proxy: ZkProxy,
    mirror: Arc<watch::Sender<Role>>,
    /// The current contender incarnation (its election holds the only handle on its session).
    member: Option<MasterElection>,
    incarnation: u64,
    _server: JoinHandle<()>,
}

impl Node {
    async fn start(index: usize, zk: SocketAddr) -> Node {
        let proxy = ZkProxy::start(zk).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let mirror = Arc::new(watch::channel(Role::Joining).0);
        let roles = mirror.subscribe();
        let greeter =
            HelloServiceServer::with_interceptor(Greeter::new(address.clone()), move |request| {
                match &*roles.borrow() {
                    Role::Master { .. } => Ok(request),
                    Role::Standby { master } => Err(standby_status(Some(master))),
                    _ => Err(standby_status(None)),
                }
            });
        let server = tokio::spawn(async move {
            let _ = Server::builder()
                .tcp_nodelay(true)
                .add_service(greeter)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await;
        });
        Node {
            index,
            address,
            proxy,
            mirror,
            member: None,
            incarnation: 0,
            _server: server,
        }
    }

    /// A new contender incarnation on this node.
    async fn join(&mut self, path: &str, log: &RoleLog) {
        self.incarnation += 1;
        let connect = self.proxy.addr().to_string();
        let session =
            Session::connect(SessionConfig::new(&connect).session_timeout(SESSION_TIMEOUT))
                .await
                .unwrap();
        let election = MasterElection::join(&session, path, &self.address)
            .await
            .unwrap();
        let mut changes = election.changes();
        let (log, mirror, node, inc) = (
            log.clone(),
            self.mirror.clone(),
            self.index,
            self.incarnation,
        );
        tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                // Mirror first: a waiter woken by the log sees the mirrors up to date.
                mirror.send_replace(change.role.clone());
                log.push(node, inc, change);
            }
        });
        self.member = Some(election);
    }
}

/// One call: when it started and ended, and who answered (or the error).
struct Call {
    start: Instant,
    end: Instant,
    result: Result<(String, String), String>,
}

fn call_loop(client: Arc<MasterClient>, stop: watch::Receiver<bool>) -> JoinHandle<Vec<Call>> {
    tokio::spawn(async move {
        let mut calls = Vec::new();
        let mut ticker = tokio::time::interval(Duration::from_millis(3));
        while !*stop.borrow() {
            ticker.tick().await;
            let start = Instant::now();
            let result = client
                .say_hello("round")
                .await
                .map(|a| (a.master, a.value.provider))
                .map_err(|e| e.to_string());
            calls.push(Call {
                start,
                end: Instant::now(),
                result,
            });
        }
        calls
    })
}

/// One master and two standbys.
fn settled(roles: &[Role]) -> bool {
    roles.iter().filter(|r| r.is_master()).count() == 1
        && roles
            .iter()
            .filter(|r| matches!(r, Role::Standby { .. }))
            .count()
            == 2
}

async fn client(connect: &str, path: &str, bound: Duration) -> Arc<MasterClient> {
    let mut config = MasterClientConfig::new(connect, path);
    config.switch_over_timeout = bound;
    Arc::new(MasterClient::connect_with(config).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_rounds_of_killing_the_master_never_show_two_masters_and_calls_fail_only_without_one()
 {
    // 100 in a soak run (`make soak`), 12 in `make test` (4 partitions, 8 exits).
    let rounds = soak_count(100, 12);
    let connect = zk().connect_string();
    let path = unique_path("rounds");
    let log = RoleLog::default();
    let mut nodes = Vec::new();
    let zk_addr: SocketAddr = connect.parse().unwrap();
    for i in 0..3 {
        let mut node = Node::start(i, zk_addr).await;
        node.join(&path, &log).await;
        nodes.push(node);
    }
    log.wait_roles(&nodes, Duration::from_secs(5), settled)
        .await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let patient = call_loop(
        client(&connect, &path, Duration::from_secs(15)).await,
        stop_rx.clone(),
    );
    let hasty = call_loop(
        client(&connect, &path, Duration::from_millis(100)).await,
        stop_rx,
    );
    let began = Instant::now();

    for round in 0..rounds {
        let roles = log
            .wait_roles(&nodes, Duration::from_secs(5), settled)
            .await;
        let victim = roles.iter().position(Role::is_master).unwrap();
        let partition = round % 3 == 1;
        tracing::info!(round, victim, partition, address = %nodes[victim].address, "killing the master");
        if partition {
            // Cut off: the session expires on ZooKeeper's side after the session timeout.
            nodes[victim].proxy.cut();
        } else {
            // Abrupt exit: the contender is gone at once; its session closes with it.
            let member = nodes[victim].member.take().unwrap();
            drop(member);
        }
        let roles = log
            .wait_roles(&nodes, TAKEOVER, |r| {
                r.iter()
                    .enumerate()
                    .any(|(i, r)| i != victim && r.is_master())
            })
            .await;
        let master = roles.iter().position(Role::is_master).unwrap();
        assert_ne!(master, victim, "round {round}: {roles:?}");
        if partition {
            // Back on the network: it finds its session expired and rejoins in a new one.
            nodes[victim].proxy.heal();
        } else {
            nodes[victim].join(&path, &log).await;
        }
    }
    log.wait_roles(&nodes, Duration::from_secs(5), settled)
        .await;
    let ended = Instant::now();
    stop_tx.send_replace(true);
    let patient = patient.await.unwrap();
    let hasty = hasty.await.unwrap();

    // 1. Never two masters: master intervals, sorted by start, do not overlap.
    let intervals = log.intervals();
    assert!(
        intervals.len() > rounds,
        "only {} master intervals in {rounds} rounds",
        intervals.len()
    );
    for pair in intervals.windows(2) {
        let (a, a_start, a_end) = pair[0];
        let (b, b_start, _) = pair[1];
        let a_end = a_end
            .unwrap_or_else(|| panic!("node {a} is still master while node {b} became master"));
        assert!(
            b_start >= a_end,
            "node {b} became master {:?} before node {a} stopped being master (interval began {:?} into the test)",
            a_end - b_start,
            a_start.saturating_duration_since(began)
        );
    }
    let was_master_between = |node: &str, from: Instant, to: Instant| {
        intervals.iter().any(|(i, start, end)| {
            nodes[*i].address == node && *start <= to && end.is_none_or(|e| e >= from)
        })
    };
    let no_master_between = |from: Instant, to: Instant| {
        // Is some instant of [from, to] covered by no interval?
        let mut t = from;
        for (_, start, end) in &intervals {
            if *start > t {
                break;
            }
            match end {
                Some(e) if *e > t => t = *e,
                None => return false,
                _ => {}
            }
        }
        t <= to
    };

    // 2. With the default bound, no call failed.
    let failed: Vec<&String> = patient
        .iter()
        .filter_map(|c| c.result.as_ref().err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed: {:?}",
        failed.len(),
        patient.len(),
        &failed[..failed.len().min(5)]
    );
    // 3. With a 100 ms bound, calls failed only when there was no master at some point of the call.
    for call in &hasty {
        if let Err(e) = &call.result {
            assert!(
                no_master_between(call.start, call.end),
                "a call failed ({e}) although a master existed throughout it ({:?} long, {:?} into the test)",
                call.end - call.start,
                call.start.saturating_duration_since(began)
            );
        }
    }
    // 4. Every answer came from the contender it was sent to, master during the call (the
    //    server mirrors its role a moment after adopting it: 20 ms of slack).
    let slack = Duration::from_millis(20);
    for call in patient.iter().chain(&hasty) {
        if let Ok((master, provider)) = &call.result {
            assert_eq!(master, provider);
            assert!(
                was_master_between(master, call.start - slack, call.end),
                "{master} answered a call although it was not master then"
            );
        }
    }
    assert!(patient.len() > rounds, "only {} calls", patient.len());
    let hasty_failures = hasty.iter().filter(|c| c.result.is_err()).count();
    println!(
        "{rounds} rounds in {:?}: {} master intervals, {} calls with the default bound (0 failed), {} with 100 ms ({hasty_failures} failed, each while there was no master)",
        ended - began,
        intervals.len(),
        patient.len(),
        hasty.len(),
    );
}
