//! Echo providers as processes and a steady load through one balanced channel, shared by the
//! channel and rolling-restart tests.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zoorpc::apps::echo::{Echo, EchoClient, EchoRequest, EchoServer, EchoService};
use zoorpc::consumer::{BalancedChannel, Consumer, ConsumerConfig, Strategy};
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc_testkit::ChildProcess;

use super::zk;

/// An echo provider process (`zoorpc-echo`), its node and its URL.
pub struct EchoProcess {
    pub process: ChildProcess,
    pub node: String,
    pub url: String,
}

impl EchoProcess {
    /// `process` once it printed its `registered <node> <url>` line.
    pub fn registered(mut process: ChildProcess) -> EchoProcess {
        let line = process
            .wait_for_line("registered ", Duration::from_secs(20))
            .expect("echo registers");
        let mut words = line.split_whitespace().skip(1);
        let node = words.next().expect("node").to_owned();
        let url = words.next().expect("url").to_owned();
        EchoProcess { process, node, url }
    }
}

pub fn spawn_echo(base: &str) -> EchoProcess {
    spawn_echo_on(base, 0)
}

/// Starts `zoorpc-echo` on `port` (0: a free one) and waits until it registered.
pub fn spawn_echo_on(base: &str, port: u16) -> EchoProcess {
    spawn_echo_with_session(base, port, Duration::from_millis(1500))
}

/// Starts `zoorpc-echo` on `port` (0: a free one) with a ZooKeeper session of `session` and waits
/// until it registered.
pub fn spawn_echo_with_session(base: &str, port: u16, session: Duration) -> EchoProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-echo"));
    cmd.args([
        "--zk",
        &zk().connect_string(),
        "--base-path",
        base,
        "--port",
        &port.to_string(),
    ])
    .args(["--session-timeout-ms", &session.as_millis().to_string()])
    .args(["--drain-grace-ms", "300"]);
    EchoProcess::registered(ChildProcess::spawn("echo", cmd).expect("spawn echo"))
}

pub fn say(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..EchoRequest::default()
    }
}

/// Answers per server and failures of one load task.
pub type Tally = (HashMap<String, u64>, Vec<String>);

/// Eight tasks calling `Say` on one shared client until stopped; answers per server, failures,
/// and a running count of calls.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: watch::Receiver<u64>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    pub fn start(client: EchoClient<BalancedChannel>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = watch::channel(0u64);
        let done_tx = Arc::new(done_tx);
        let tasks = (0..8)
            .map(|_| {
                let (mut client, stop, done_tx) = (client.clone(), stop.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let (mut answers, mut failures) = (HashMap::new(), Vec::new());
                    // Bounded even if a test forgets to stop it.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        match client.say(say("load")).await {
                            Ok(r) => *answers.entry(r.into_inner().server).or_insert(0) += 1,
                            Err(e) => failures.push(e.to_string()),
                        }
                        done_tx.send_modify(|n| *n += 1);
                    }
                    (answers, failures)
                })
            })
            .collect();
        Load { stop, done, tasks }
    }

    /// Waits until `n` more calls have been made.
    pub async fn calls(&mut self, n: u64) {
        let target = *self.done.borrow() + n;
        let reached = tokio::time::timeout(
            Duration::from_secs(20),
            self.done.wait_for(|done| *done >= target),
        )
        .await;
        assert!(matches!(reached, Ok(Ok(_))), "the load stalled");
    }

    pub async fn finish(self) -> (HashMap<String, u64>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut answers, mut failures) = (HashMap::new(), Vec::new());
        for task in self.tasks {
            let (a, f) = task.await.expect("load task");
            for (server, n) in a {
                *answers.entry(server).or_insert(0) += n;
            }
            failures.extend(f);
        }
        (answers, failures)
    }
}

pub fn server_of(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

pub fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

/// An in-process echo provider; `calls` counts handler starts.
pub async fn echo_provider(
    base: &str,
    delay: Duration,
) -> (Provider, Arc<std::sync::atomic::AtomicU64>) {
    let service = EchoService::new(delay);
    let calls = service.calls();
    (serve_echo(base, service).await, calls)
}

/// `service` as an in-process provider of `base` on a free port, draining for 50 ms on shutdown.
pub async fn serve_echo(base: &str, service: impl Echo) -> Provider {
    let config =
        ProviderConfig::new(zk().connect_string(), base, 0).drain_grace(Duration::from_millis(50));
    Provider::serve(config, EchoServer::new(service))
        .await
        .expect("echo provider")
}

/// A consumer of `base` picking by `strategy`, once it lists `providers` providers (at most 5 s).
pub async fn consumer(base: &str, strategy: Strategy, providers: usize) -> Consumer {
    let config = ConsumerConfig::new(zk().connect_string(), base).strategy(strategy);
    let consumer = Consumer::connect_with(config).await.expect("consumer");
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |u| u.len() == providers)
            .await,
        "{:?}",
        consumer.urls()
    );
    consumer
}
