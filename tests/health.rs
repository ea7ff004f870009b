//! The balancer's health decisions end to end, against real providers and ZooKeeper: a stall
//! with calls in flight is one ejection of the base length; `UNAVAILABLE` answers eject only in
//! a row, briefly, and name their provider; least-loaded picking gives a paused provider its
//! share back within a second or two, starves no provider at start-up, and honours weights.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::echo_load::{EchoProcess, consumer, echo_provider, say, server_of};
use common::zk;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};
use zoorpc::apps::echo::{Echo, EchoClient, EchoReply, EchoRequest, EchoServer, EchoService};
use zoorpc::consumer::balance::PROVIDER_METADATA;
use zoorpc::consumer::{BalancedChannel, CallPolicy, Strategy};
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc_testkit::{ChildProcess, unique_path};

/// This test binary's metrics recorder, installed once: the counters as an operator reads them.
fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("install the metrics recorder")
    })
}

/// `zoorpc_ejections_total` of the endpoint `url` (0 before its first ejection).
fn ejections(url: &str) -> f64 {
    let series = format!("zoorpc_ejections_total{{endpoint=\"{url}\"}} ");
    metrics()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().expect("a counter's value"))
}

/// Starts `zoorpc-echo` under `base` with `extra` flags; waits until it registered.
fn spawn_echo_with(base: &str, extra: &[&str]) -> EchoProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-echo"));
    cmd.args(["--zk", &zk().connect_string(), "--base-path", base])
        .args(["--port", "0", "--session-timeout-ms", "3000"])
        .args(["--drain-grace-ms", "100"])
        .args(extra);
    let mut process = ChildProcess::spawn("echo", cmd).expect("spawn echo");
    let line = process
        .wait_for_line("registered ", Duration::from_secs(20))
        .expect("echo registers");
    let url = line.split_whitespace().nth(2).expect("url").to_owned();
    EchoProcess { process, url }
}

/// One call's end: when, and the server that answered or the error.
type Ended = (Instant, Result<String, Status>);

/// `tasks` callers calling `Say` in a loop on one client until stopped (at most 60 s), every
/// call's end sent to the test in order.
struct Traffic {
    stop: Arc<AtomicBool>,
    ended: mpsc::UnboundedReceiver<Ended>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(client: EchoClient<BalancedChannel>, tasks: usize) -> Traffic {
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
    async fn first_from(
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
    async fn window(&mut self, from: Instant, to: Instant) -> (HashMap<String, u64>, Vec<Status>) {
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
    async fn finish(mut self) -> Vec<Status> {
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

/// A stall of 300 ms with many calls in flight (attempts limited to 150 ms, so they fail): one
/// ejection, of the base length; the provider answers again about a second after it stalled,
/// and no caller saw a failure (the idempotent calls went elsewhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_with_calls_in_flight_is_one_ejection_of_the_base_length() {
    metrics();
    let base = unique_path("health-stall");
    let stalled = spawn_echo_with(&base, &[]);
    let _other = spawn_echo_with(&base, &[]);
    let consumer = consumer(&base, Strategy::Random, 2).await;
    let policy = CallPolicy::IDEMPOTENT.with_attempt_timeout(Duration::from_millis(150));
    let mut traffic = Traffic::start(EchoClient::new(consumer.channel_with(policy)), 16);
    let server = server_of(&stalled.url);
    let warm = traffic
        .first_from(&server, Instant::now(), Duration::from_secs(10))
        .await;
    assert!(
        warm.is_some(),
        "the provider never answered before the stall"
    );

    let paused = Instant::now();
    stalled.process.pause().expect("SIGSTOP");
    // The calls in flight time out; the first failure ejects.
    let ejected = Instant::now() + Duration::from_secs(5);
    while ejections(&stalled.url) < 1.0 && Instant::now() < ejected {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The stall itself lasts 300 ms: a fault's length, not a wait for a state.
    tokio::time::sleep_until((paused + Duration::from_millis(300)).into()).await;
    stalled.process.resume().expect("SIGCONT");
    let resumed = Instant::now();

    let back = traffic
        .first_from(&server, resumed, Duration::from_secs(40))
        .await;
    let failures = traffic.finish().await;
    let back = back.map(|at| at - resumed);
    assert!(
        back.is_some_and(|after| after < Duration::from_secs(2)),
        "the provider came back {back:?} after the 300 ms stall ended (ejected once, for 1 s, \
         it is back within about a second)"
    );
    assert_eq!(
        ejections(&stalled.url),
        1.0,
        "one stall is one ejection, however many calls were in flight"
    );
    assert!(
        failures.is_empty(),
        "{} calls failed: {:?}",
        failures.len(),
        failures.first()
    );
}

/// Echo that answers `UNAVAILABLE` (as a server whose dependency is down does) during an
/// outage, or for its next `fail_next` calls.
#[derive(Clone)]
struct Flaky {
    echo: EchoService,
    outage: Arc<AtomicBool>,
    fail_next: Arc<AtomicU32>,
}

impl Flaky {
    fn refuses(&self) -> bool {
        self.outage.load(Ordering::Relaxed)
            || self
                .fail_next
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
    }
}

#[tonic::async_trait]
impl Echo for Flaky {
    async fn say(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        if self.refuses() {
            return Err(Status::unavailable("the database is down"));
        }
        self.echo.say(request).await
    }

    type ExpandStream = <EchoService as Echo>::ExpandStream;

    async fn expand(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ExpandStream>, Status> {
        self.echo.expand(request).await
    }

    async fn collect(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.echo.collect(request).await
    }
}

/// One `UNAVAILABLE` answer ejects nobody, and names its provider; an outage of 1.5 s ejects
/// the provider only for the rule's time (5 in a row, 1 s each time, not doubling) and it has
/// calls again within a second of the outage's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_answers_eject_only_in_a_row_and_briefly() {
    metrics();
    let base = unique_path("health-unavailable");
    let flaky = Flaky {
        echo: EchoService::new(Duration::ZERO),
        outage: Arc::default(),
        fail_next: Arc::default(),
    };
    let mut config = ProviderConfig::new(zk().connect_string(), &base, 0);
    config.drain_grace = Duration::from_millis(50);
    let provider = Provider::serve(config, EchoServer::new(flaky.clone()))
        .await
        .expect("flaky provider");
    let url = provider.url().endpoint();
    let (other, _) = echo_provider(&base, Duration::ZERO).await;
    let consumer = consumer(&base, Strategy::Random, 2).await;
    let mut client = EchoClient::new(consumer.channel());

    // One answer: the caller gets it, naming the provider; the provider stays in.
    flaky.fail_next.store(1, Ordering::Relaxed);
    let mut refused = None;
    for _ in 0..200 {
        if let Err(status) = client.say(say("once")).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("the provider's UNAVAILABLE reached the caller");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(
        refused
            .metadata()
            .get(PROVIDER_METADATA)
            .and_then(|v| v.to_str().ok()),
        Some(provider.url().as_str()),
        "the answer names its provider: {refused:?}"
    );
    let endpoint = consumer
        .endpoints()
        .iter()
        .find(|e| e.url().endpoint() == url)
        .cloned()
        .expect("the flaky provider is listed");
    assert!(!endpoint.is_ejected(), "one UNAVAILABLE answer ejected it");
    assert_eq!(ejections(&url), 0.0);
    // The same through `Consumer::call` (a closure over each endpoint's own channel).
    flaky.fail_next.store(1, Ordering::Relaxed);
    let mut refused_once = false;
    for _ in 0..200 {
        let answer = consumer
            .call(CallPolicy::DEFAULT, |channel| async move {
                Ok(EchoClient::new(channel)
                    .say(say("call"))
                    .await?
                    .into_inner())
            })
            .await;
        if answer.is_err() {
            refused_once = true;
            break;
        }
    }
    assert!(
        refused_once,
        "the provider's UNAVAILABLE never reached Consumer::call"
    );
    assert!(
        !endpoint.is_ejected(),
        "one UNAVAILABLE answer through Consumer::call ejected it"
    );

    // An outage of 1.5 s under load.
    let mut traffic = Traffic::start(EchoClient::new(consumer.channel()), 8);
    let server = server_of(&url);
    let warm = traffic
        .first_from(&server, Instant::now(), Duration::from_secs(10))
        .await;
    assert!(
        warm.is_some(),
        "the provider never answered before the outage"
    );
    flaky.outage.store(true, Ordering::Relaxed);
    let began = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_500)).await; // the outage's length
    flaky.outage.store(false, Ordering::Relaxed);
    let ended = Instant::now();
    let (_, failures) = traffic.window(began, ended).await;
    let back = traffic
        .first_from(&server, ended, Duration::from_secs(40))
        .await;
    traffic.finish().await;
    assert!(!failures.is_empty(), "the outage failed no call");
    for status in &failures {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert_eq!(
            status
                .metadata()
                .get(PROVIDER_METADATA)
                .and_then(|v| v.to_str().ok()),
            Some(provider.url().as_str()),
            "{status:?}"
        );
    }
    let back = back.map(|at| at - ended);
    assert!(
        back.is_some_and(|after| after < Duration::from_millis(1_800)),
        "the provider had calls again {back:?} after its outage ended (an ejection for \
         answers lasts 1 s)"
    );
    let count = ejections(&url);
    assert!(
        (1.0..=3.0).contains(&count),
        "{count} ejections in a 1.5 s outage (at most one per second, and one at its start)"
    );
    provider.shutdown().await.expect("shutdown");
    other.shutdown().await.expect("shutdown");
}

/// Shares of the answers in `answers` per server, for messages.
fn shares(answers: &HashMap<String, u64>) -> String {
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
fn share_of(answers: &HashMap<String, u64>, server: &str) -> f64 {
    let total: u64 = answers.values().sum();
    answers.get(server).copied().unwrap_or(0) as f64 / total.max(1) as f64
}

/// After a 500 ms pause, least-loaded gives the provider a fair share again within 1.5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_gives_a_paused_provider_its_share_back_within_two_seconds() {
    let base = unique_path("health-ll-pause");
    let paused = spawn_echo_with(&base, &[]);
    let _others = [spawn_echo_with(&base, &[]), spawn_echo_with(&base, &[])];
    let consumer = consumer(&base, Strategy::LeastLoaded, 3).await;
    let mut traffic = Traffic::start(EchoClient::new(consumer.channel()), 8);
    let server = server_of(&paused.url);
    let warm = traffic
        .first_from(&server, Instant::now(), Duration::from_secs(10))
        .await;
    assert!(
        warm.is_some(),
        "the provider never answered before the pause"
    );

    paused.process.pause().expect("SIGSTOP");
    tokio::time::sleep(Duration::from_millis(500)).await; // the pause's length
    paused.process.resume().expect("SIGCONT");
    let resumed = Instant::now();
    let (answers, failures) = traffic
        .window(
            resumed + Duration::from_millis(1_500),
            resumed + Duration::from_millis(2_500),
        )
        .await;
    traffic.finish().await;
    assert!(failures.is_empty(), "{:?}", failures.first());
    let share = share_of(&answers, &server);
    assert!(
        share > 0.15,
        "1.5 s after its 500 ms pause the provider got {:.1} % of the calls (a fair share is \
         33 %): {}",
        share * 100.0,
        shares(&answers)
    );
}

/// A fresh least-loaded consumer over three providers gives each a share from its first
/// seconds (the first connections' slow answers do not starve one); three consumers in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_starves_no_provider_at_start_up() {
    let base = unique_path("health-ll-start");
    let providers = [
        spawn_echo_with(&base, &[]),
        spawn_echo_with(&base, &[]),
        spawn_echo_with(&base, &[]),
    ];
    for round in 0..3 {
        let consumer = consumer(&base, Strategy::LeastLoaded, 3).await;
        let mut traffic = Traffic::start(EchoClient::new(consumer.channel()), 8);
        let started = Instant::now();
        let (answers, failures) = traffic
            .window(started, started + Duration::from_secs(2))
            .await;
        traffic.finish().await;
        assert!(failures.is_empty(), "{:?}", failures.first());
        for p in &providers {
            let share = share_of(&answers, &server_of(&p.url));
            assert!(
                share > 0.10,
                "round {round}: {} got {:.1} % of the first 2 s's calls: {}",
                p.url,
                share * 100.0,
                shares(&answers)
            );
        }
    }
}

/// Least-loaded honours `?weight=`: a weight-300 provider next to a weight-100 one gets about
/// three quarters of the calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_honours_weights() {
    let base = unique_path("health-ll-weights");
    let heavy = spawn_echo_with(&base, &["--weight", "300"]);
    let _light = spawn_echo_with(&base, &["--weight", "100"]);
    let consumer = consumer(&base, Strategy::LeastLoaded, 2).await;
    let mut traffic = Traffic::start(EchoClient::new(consumer.channel()), 8);
    let started = Instant::now();
    let (answers, failures) = traffic
        .window(
            started + Duration::from_millis(500),
            started + Duration::from_millis(2_500),
        )
        .await;
    traffic.finish().await;
    assert!(failures.is_empty(), "{:?}", failures.first());
    let heavy_server = server_of(heavy.url.split('?').next().unwrap_or_default());
    let share = share_of(&answers, &heavy_server);
    assert!(
        (0.62..0.88).contains(&share),
        "the weight-300 provider got {:.1} % of the calls (75 % wanted): {}",
        share * 100.0,
        shares(&answers)
    );
}
