//! Picking and retrying when most of the list is dead, weighted, unsafe or silent: the calls a
//! user makes must still reach the healthy provider that is registered.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{raw_client, spawn_provider, zk};
use zookeeper_client as zkc;
use zoorpc::consumer::{CallPolicy, Consumer, Error as ConsumerError};
use zoorpc::proto::HelloRequest;
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc::registry::{Session, SessionConfig};
use zoorpc_testkit::unique_path;

/// A loopback port nothing listens on (connections to it are refused).
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A listener that accepts TCP connections and never says a word; stops when dropped.
struct SilentListener {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl SilentListener {
    async fn start() -> SilentListener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        SilentListener { port, task }
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Registers `url` under `base` as a provider node of the raw client's session.
pub(crate) async fn register_raw(raw: &zkc::Client, base: &str, url: &str) {
    raw.mkdir(
        base,
        &zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all()),
    )
    .await
    .or_else(|e| match e {
        zkc::Error::NodeExists => Ok(()),
        e => Err(e),
    })
    .expect("base path");
    raw.create(
        &format!("{base}/provider"),
        url.as_bytes(),
        &zkc::CreateMode::EphemeralSequential.with_acls(zkc::Acls::anyone_all()),
    )
    .await
    .expect("create");
}

async fn provider_with(base: &str, weight: Option<&str>) -> Provider {
    let mut config =
        ProviderConfig::new(zk().connect_string(), base, 0).drain_grace(Duration::from_millis(50));
    if let Some(w) = weight {
        config = config.metadata("weight", w);
    }
    zoorpc::apps::hello::serve(config)
        .await
        .expect("provider starts")
}

/// A consumer of `base` on `session` once it lists `n` providers; its random picking draws
/// from a fixed seed, so the shares a test counts over calls made one after another are the
/// same in every run.
async fn consumer_listing(session: &Session, base: &str, n: usize) -> Consumer {
    let config = zoorpc::consumer::ConsumerConfig::new(String::new(), base).rng_seed(0x5EED);
    let consumer = Consumer::with_session_and(session.clone(), config)
        .await
        .expect("consumer");
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |u| u.len() == n)
            .await,
        "the consumer never listed {n} providers: {:?}",
        consumer.urls()
    );
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_sent_attempts_do_not_use_up_the_attempt_budget() {
    let base = unique_path("four-dead");
    let raw = raw_client(&zk().connect_string()).await;
    for _ in 0..4 {
        register_raw(&raw, &base, &format!("http://127.0.0.1:{}", dead_port())).await;
    }
    let live = provider_with(&base, None).await;
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    // Each fresh consumer knows nothing of the dead ones: its first call may pick three or four
    // of them before the live one (about 40 % of first calls with a budget of three).
    for i in 0..30 {
        let consumer = consumer_listing(&session, &base, 5).await;
        let answer = consumer
            .say_hello_with(CallPolicy::DEFAULT, "x")
            .await
            .unwrap_or_else(|e| panic!("call {i} failed with a live provider registered: {e}"));
        assert_eq!(answer.url, *live.url());
    }
    live.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_of_five_providers_sigkilled_at_once_fail_no_call() {
    let base = unique_path("kill-four");
    let connect = zk().connect_string();
    let mut providers: Vec<_> = (0..5)
        .map(|_| spawn_provider(&connect, &base, 0, &["--session-timeout-ms", "4000"]))
        .collect();
    let consumer = Arc::new(Consumer::connect(&connect, &base).await.unwrap());
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |u| u.len() == 5)
            .await
    );
    let survivor = providers[4].url.clone();
    // Two call loops without pause, as the `client` program calls (SayHello is idempotent: a
    // call cut off mid-flight by a kill may be retried too, within the limit of 5 such attempts).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let consumer = consumer.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0usize, Vec::new());
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    match consumer.say_hello("k").await {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    for _ in 0..50 {
        consumer.say_hello("warm").await.unwrap();
    }
    for p in &mut providers[..4] {
        p.process.signal(libc::SIGKILL).unwrap();
    }
    for p in &mut providers[..4] {
        p.process.wait_exit(Duration::from_secs(5)).unwrap();
    }
    // Keep calling while the four nodes are still registered (their sessions live 4 s). As the
    // workers do, idempotent: a call sent in the instant before the consumer's connection to a
    // killed provider has read its end is written into a dead socket (broken pipe), which may
    // have carried earlier requests too: it fails as maybe processed, retried only when the
    // method is idempotent (never-sent attempts are retried whatever the policy:
    // `never_sent_attempts_do_not_use_up_the_attempt_budget`).
    let mut after = 0;
    while after < 300 {
        let answer = consumer
            .say_hello_with(CallPolicy::IDEMPOTENT, "after")
            .await;
        assert_eq!(
            answer.expect("a call after the kills").url.as_str(),
            survivor
        );
        after += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(ok > 300, "the workers made only {ok} calls");
    assert!(
        failed.is_empty(),
        "{} of {} calls failed: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..failed.len().min(3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_0_backup_serves_while_the_weighted_provider_is_ejected() {
    let base = unique_path("backup");
    let raw = raw_client(&zk().connect_string()).await;
    register_raw(
        &raw,
        &base,
        &format!("http://127.0.0.1:{}?weight=100", dead_port()),
    )
    .await;
    let backup = provider_with(&base, Some("0")).await;
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let consumer = consumer_listing(&session, &base, 2).await;
    // The first call finds the weighted one dead (never sent) and ejects it.
    let first = consumer
        .say_hello_with(CallPolicy::DEFAULT, "b")
        .await
        .unwrap();
    assert_eq!(first.url, *backup.url());
    // From then on the healthy backup is picked first, not the ejected endpoint.
    for _ in 0..20 {
        let answer = consumer
            .say_hello_with(CallPolicy::DEFAULT, "b")
            .await
            .unwrap();
        assert_eq!(answer.url, *backup.url());
        assert_eq!(
            answer.attempts, 1,
            "an ejected endpoint was tried before the backup"
        );
    }
    backup.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_providers_at_weight_0_share_the_calls() {
    let base = unique_path("all-zero");
    let a = provider_with(&base, Some("0")).await;
    let b = provider_with(&base, Some("0")).await;
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();
    let consumer = consumer_listing(&session, &base, 2).await;
    let mut to_a = 0;
    for _ in 0..200 {
        if consumer.say_hello("z").await.unwrap().url == *a.url() {
            to_a += 1;
        }
    }
    assert!((60..=140).contains(&to_a), "a got {to_a} of 200");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_node_is_never_dialled_in_plaintext_without_tls_configured() {
    let base = unique_path("https");
    // A plaintext provider that someone registered as https:// (under another base path).
    let plain = provider_with(&unique_path("plain"), None).await;
    let raw = raw_client(&zk().connect_string()).await;
    register_raw(
        &raw,
        &base,
        &format!("https://127.0.0.1:{}", plain.local_addr().port()),
    )
    .await;
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert_eq!(consumer.subscribe().borrow().len(), 1, "discovery lists it");
    // Listed (so its failures show and eject it), but this consumer has no TLS: its calls fail
    // naming what to configure, and nothing is ever sent in plaintext (tests/calls/tls.rs: with TLS).
    assert_eq!(consumer.urls().len(), 1, "{:?}", consumer.urls());
    match consumer.say_hello("tls?").await {
        Err(e @ ConsumerError::Exhausted { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("ConsumerConfig::tls") && text.contains("never called in plaintext"),
                "{text}"
            );
        }
        other => panic!("expected a refused https provider, got {other:?}"),
    }
    assert!(consumer.endpoints()[0].is_ejected());
    plain.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_never_speaks_http2_costs_at_most_the_dial_timeout() {
    let base = unique_path("silent");
    let silent = SilentListener::start().await;
    let raw = raw_client(&zk().connect_string()).await;
    register_raw(&raw, &base, &format!("http://127.0.0.1:{}", silent.port)).await;
    let session = Session::connect(SessionConfig::new(zk().connect_string()))
        .await
        .unwrap();

    // Alone: a kept client from lookup() gets an error within the dial timeout, not a hang.
    let consumer = consumer_listing(&session, &base, 1).await;
    let mut client = consumer.lookup().unwrap();
    let started = Instant::now();
    let reply = tokio::time::timeout(
        Duration::from_secs(20),
        client.say_hello(HelloRequest { name: "s".into() }),
    )
    .await
    .expect("lookup() call never returned");
    assert!(reply.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the call took {:?}",
        started.elapsed()
    );

    // Next to a live provider: every call succeeds, even with the never-sent-only policy.
    let live = provider_with(&base, None).await;
    let consumer = consumer_listing(&session, &base, 2).await;
    for _ in 0..20 {
        let answer = consumer
            .say_hello_with(CallPolicy::DEFAULT, "s")
            .await
            .unwrap();
        assert_eq!(answer.url, *live.url());
    }
    live.shutdown().await.unwrap();
}

/// A picking rule of the user's own sees the endpoints' load (latency, in flight) unless it says
/// it does not read it: the channel keeps load only for rules that read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_rule_sees_the_load_unless_it_opts_out() {
    use zoorpc::consumer::balance::Endpoint;
    use zoorpc::consumer::{ConsumerConfig, Pick, Strategy};

    /// Picks the first usable endpoint and remembers the largest latency it saw.
    #[derive(Debug)]
    struct Watching {
        reads_load: bool,
        largest_us: std::sync::atomic::AtomicU64,
    }
    impl Pick for Watching {
        fn pick(
            &self,
            endpoints: &[Arc<Endpoint>],
            usable: &dyn Fn(&Endpoint) -> bool,
        ) -> Option<usize> {
            for e in endpoints {
                let us = e.load().latency().map_or(0, |l| l.as_micros() as u64);
                self.largest_us
                    .fetch_max(us, std::sync::atomic::Ordering::Relaxed);
            }
            endpoints.iter().position(|e| usable(e))
        }
        fn reads_load(&self) -> bool {
            self.reads_load
        }
    }

    let base = unique_path("custom-load");
    let provider = provider_with(&base, None).await;
    for reads_load in [true, false] {
        let rule = Arc::new(Watching {
            reads_load,
            largest_us: Default::default(),
        });
        let config = ConsumerConfig::new(zk().connect_string(), &base)
            .strategy(Strategy::Custom(rule.clone()));
        let consumer = Consumer::connect_with(config).await.expect("consumer");
        assert!(
            consumer
                .wait_until(Duration::from_secs(5), |u| u.len() == 1)
                .await
        );
        for _ in 0..5 {
            consumer.say_hello("x").await.expect("call");
        }
        let seen = rule.largest_us.load(std::sync::atomic::Ordering::Relaxed);
        if reads_load {
            assert!(seen > 0, "a rule that reads the load saw no latency");
        } else {
            assert_eq!(seen, 0, "a rule that opted out should cost no load keeping");
        }
    }
    provider.shutdown().await.unwrap();
}
