//! A steady load whose every call's end the test reads in order, the metrics as an operator
//! reads them, and echo provider processes with flags.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::mpsc;
use tonic::Status;
use zoorpc::apps::echo::EchoClient;
use zoorpc::consumer::{BalancedChannel, Consumer, ConsumerConfig, Strategy};
use zoorpc_testkit::ChildProcess;

use crate::common::echo_load::{EchoProcess, say};
use crate::common::zk;

/// This test binary's metrics recorder, installed once: the counters as an operator reads them.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("install the metrics recorder")
    })
}

/// `zoorpc_ejections_total` of the endpoint `url` (0 before its first ejection).
pub fn ejections(url: &str) -> f64 {
    let series = format!("zoorpc_ejections_total{{endpoint=\"{url}\"}} ");
    metrics()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().expect("a counter's value"))
}

/// A consumer of `base` picking by `strategy`, once it lists `providers` providers (at most 20 s:
/// the machine may be busy).
pub async fn consumer(base: &str, strategy: Strategy, providers: usize) -> Consumer {
    let config = ConsumerConfig::new(zk().connect_string(), base).strategy(strategy);
    let consumer = Consumer::connect_with(config).await.expect("consumer");
    let listed = consumer
        .wait_until(Duration::from_secs(20), |u| u.len() == providers)
        .await;
    assert!(listed, "never listed {providers}: {:?}", consumer.urls());
    consumer
}

/// Starts `zoorpc-echo` under `base` with `extra` flags; waits until it registered.
pub fn spawn_echo_with(base: &str, extra: &[&str]) -> EchoProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-echo"));
    cmd.args(["--zk", &zk().connect_string(), "--base-path", base])
        .args(["--port", "0", "--session-timeout-ms", "3000"])
        .args(["--drain-grace-ms", "100"])
        .args(extra);
    EchoProcess::registered(ChildProcess::spawn("echo", cmd).expect("spawn echo"))
}

/// One call's end: when, and the server that answered or the error.
pub type Ended = (Instant, Result<String, Status>);

/// `tasks` callers calling `Say` in a loop on one client until stopped (at most 60 s), every
/// call's end sent to the test in order.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    ended: mpsc::UnboundedReceiver<Ended>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    pub fn start(client: EchoClient<BalancedChannel>, tasks: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, ended) = mpsc::unbounded_channel();
        let tasks = (0..tasks)
            .map(|_| {
                let (mut client, stop, tx) = (client.clone(), stop.clone(), tx.clone());
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let result = client
                            .say(say("health"))
                            .await
                            .map(|r| r.into_inner().server);
                        if tx.send((Instant::now(), result)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Traffic { stop, ended, tasks }
    }

    /// The first answer from `server` that ended after `after`, within `timeout`; `None` if
    /// none came.
    pub async fn first_from(
        &mut self,
        server: &str,
        after: Instant,
        timeout: Duration,
    ) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline.into(), self.ended.recv()).await;
            match next {
                Ok(Some((at, Ok(answered)))) if at >= after && answered == server => {
                    return Some(at);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The calls that ended in `[from, to)`: answers per server and failures. Waits until a call
    /// ends after `to` (at most 10 s more).
    pub async fn window(
        &mut self,
        from: Instant,
        to: Instant,
    ) -> (HashMap<String, u64>, Vec<Status>) {
        let (mut answers, mut failures) = (HashMap::new(), Vec::new());
        let give_up = to + Duration::from_secs(10);
        while let Ok(Some((at, result))) =
            tokio::time::timeout_at(give_up.into(), self.ended.recv()).await
        {
            if at >= to {
                break;
            }
            if at < from {
                continue;
            }
            match result {
                Ok(server) => *answers.entry(server).or_insert(0) += 1,
                Err(status) => failures.push(status),
            }
        }
        (answers, failures)
    }

    /// Stops the callers; every failure not yet read.
    pub async fn finish(mut self) -> Vec<Status> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        let mut failures = Vec::new();
        while let Ok((_, result)) = self.ended.try_recv() {
            failures.extend(result.err());
        }
        failures
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Shares of the answers in `answers` per server, for messages.
pub fn shares(answers: &HashMap<String, u64>) -> String {
    let total: u64 = answers.values().sum();
    let mut shares: Vec<String> = answers
        .iter()
        .map(|(s, n)| {
            format!(
                "{s}: {n} ({:.0} %)",
                *n as f64 * 100.0 / total.max(1) as f64
            )
        })
        .collect();
    shares.sort();
    format!("{} calls; {}", total, shares.join(", "))
}

/// The share of `server` among `answers`.
pub fn share_of(answers: &HashMap<String, u64>, server: &str) -> f64 {
    let total: u64 = answers.values().sum();
    answers.get(server).copied().unwrap_or(0) as f64 / total.max(1) as f64
}
