//! Failover with providers in their own processes, killed and stopped with real signals. (A
//! SIGKILL under load, node expiry included, is `channel/`'s kept-client test.)

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{raw_client, spawn_provider, wait_node_gone, zk};
use zoorpc::consumer::Consumer;
use zoorpc_testkit::unique_path;

/// A steady call loop: one call every 2 ms until stopped; returns (answers per URL, failures).
struct CallLoop {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<(HashMap<String, usize>, Vec<String>)>,
}

impl CallLoop {
    fn start(consumer: Arc<Consumer>) -> CallLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            let mut answers = HashMap::new();
            let mut failures = Vec::new();
            let mut ticker = tokio::time::interval(Duration::from_millis(2));
            // Bounded: at most 60 s of calls even if a test forgets to stop it.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                ticker.tick().await;
                match consumer.say_hello("loop").await {
                    Ok(a) => *answers.entry(a.url.to_string()).or_insert(0) += 1,
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (answers, failures)
        });
        CallLoop { stop, handle }
    }

    async fn finish(self) -> (HashMap<String, usize>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.expect("call loop")
    }
}

/// Three provider processes, a consumer that lists all three, a running call loop and a raw
/// ZooKeeper client.
struct Cluster {
    providers: Vec<common::ProviderProcess>,
    consumer: Arc<Consumer>,
    calls: CallLoop,
    raw: zookeeper_client::Client,
}

impl Cluster {
    async fn start(label: &str) -> Cluster {
        let base = unique_path(label);
        let connect = zk().connect_string();
        let providers: Vec<_> = (0..3)
            .map(|_| spawn_provider(&connect, &base, 0, &[]))
            .collect();
        let consumer = Arc::new(Consumer::connect(&connect, &base).await.unwrap());
        assert!(
            consumer
                .wait_until(Duration::from_secs(2), |u| u.len() == 3)
                .await
        );
        let calls = CallLoop::start(consumer.clone());
        let raw = raw_client(&connect).await;
        Cluster {
            providers,
            consumer,
            calls,
            raw,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_deletes_the_node_before_exit_and_no_call_fails() {
    let Cluster {
        mut providers,
        consumer,
        calls,
        raw,
    } = Cluster::start("graceful").await;

    let victim = &mut providers[0];
    // Make sure the victim is really being called before it stops.
    let mut reached = false;
    for _ in 0..300 {
        if consumer.say_hello("probe").await.unwrap().url.as_str() == victim.url {
            reached = true;
            break;
        }
    }
    assert!(reached, "the victim never answered");
    victim.process.signal(libc::SIGTERM).unwrap();
    assert!(
        wait_node_gone(&raw, &victim.node, Duration::from_secs(5)).await,
        "node not deleted"
    );
    assert!(
        !victim.process.has_exited(),
        "the process exited before its node was deleted"
    );
    let status = victim.process.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status:?}");
    let lines = victim.process.drain_lines().to_vec();
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("deregistered {}", victim.node)),
        "{lines:?}"
    );
    assert!(
        consumer
            .wait_until(Duration::from_secs(1), |u| u.len() == 2)
            .await
    );

    // Keep calling a little after the stop, then check nothing failed.
    let after = consumer.endpoints().len();
    let (answers, failures) = calls.finish().await;
    assert_eq!(after, 2);
    assert!(
        failures.is_empty(),
        "{} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(answers.len() >= 2, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_provider_rejoins_and_receives_calls() {
    let base = unique_path("restart");
    let connect = zk().connect_string();
    let mut providers: Vec<_> = (0..2)
        .map(|_| spawn_provider(&connect, &base, 0, &[]))
        .collect();
    let consumer = Consumer::connect(&connect, &base).await.unwrap();
    assert!(
        consumer
            .wait_until(Duration::from_secs(2), |u| u.len() == 2)
            .await
    );

    let port = providers[0].port;
    let old_node = providers[0].node.clone();
    providers[0].process.signal(libc::SIGKILL).unwrap();
    providers[0]
        .process
        .wait_exit(Duration::from_secs(5))
        .unwrap();
    // Calls keep working on the survivor while the dead one is still listed.
    for _ in 0..20 {
        let a = consumer.say_hello("during").await.unwrap();
        assert_eq!(a.url.as_str(), providers[1].url);
    }
    // Same port again.
    let restarted = spawn_provider(&connect, &base, port, &[]);
    assert_ne!(restarted.node, old_node);
    let url = restarted.url.clone();
    assert!(
        consumer
            .wait_until(Duration::from_secs(4), |u| u.len() == 2
                && u.iter().any(|x| x.as_str() == url))
            .await,
        "{:?}",
        consumer.urls()
    );
    let mut reached = 0;
    for _ in 0..100 {
        if consumer.say_hello("back").await.unwrap().url.as_str() == url {
            reached += 1;
        }
    }
    assert!(
        reached >= 20,
        "restarted provider got {reached} of 100 calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_call_finish_before_exit() {
    let base = unique_path("drain");
    let connect = zk().connect_string();
    // Every call takes 800 ms on this provider.
    let mut slow = spawn_provider(&connect, &base, 0, &["--delay-ms", "800"]);
    let consumer = Arc::new(Consumer::connect(&connect, &base).await.unwrap());
    assert_eq!(consumer.urls().len(), 1);
    let in_flight = tokio::spawn({
        let consumer = consumer.clone();
        async move {
            let r = consumer.say_hello("slow").await;
            (r, Instant::now())
        }
    });
    // The call is on its way (or arrives within the drain grace, while the listener is open).
    slow.process.signal(libc::SIGTERM).unwrap();
    let (result, answered_at) = in_flight.await.unwrap();
    let answer = result.expect("the in-flight call completes during the drain");
    assert_eq!(answer.url.as_str(), slow.url);
    assert_eq!(answer.attempts, 1);
    let status = slow.process.wait_exit(Duration::from_secs(10)).unwrap();
    let exited_at = Instant::now();
    assert!(status.success(), "{status:?}");
    assert!(exited_at >= answered_at);
    let lines = slow.process.drain_lines().to_vec();
    assert!(lines.contains(&"stopped".to_owned()), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_provider_is_timed_out_ejected_and_back_after_it_resumes() {
    use zoorpc::consumer::CallPolicy;
    let base = unique_path("sigstop");
    let connect = zk().connect_string();
    // A session long enough that the pause does not expire it.
    let providers: Vec<_> = (0..2)
        .map(|_| spawn_provider(&connect, &base, 0, &["--session-timeout-ms", "20000"]))
        .collect();
    let consumer = Consumer::connect(&connect, &base).await.unwrap();
    assert!(
        consumer
            .wait_until(Duration::from_secs(2), |u| u.len() == 2)
            .await
    );
    for _ in 0..10 {
        consumer.say_hello("warm").await.unwrap();
    }
    let (paused, other) = (&providers[0], &providers[1]);
    paused.process.pause().unwrap();
    let policy = CallPolicy::IDEMPOTENT.with_attempt_timeout(Duration::from_millis(300));
    let started = Instant::now();
    for _ in 0..20 {
        let answer = consumer.say_hello_with(policy, "paused").await.unwrap();
        assert_eq!(answer.url.as_str(), other.url);
    }
    // At most one attempt waited for the paused provider: then it was ejected.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let ejected = consumer
        .endpoints()
        .iter()
        .find(|e| e.url().as_str() == paused.url)
        .map(|e| e.is_ejected());
    assert_eq!(ejected, Some(true));
    paused.process.resume().unwrap();
    // Resumed: it answers again once its ejection ends (1 s backoff).
    let back = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if consumer.say_hello("resumed").await.unwrap().url.as_str() == paused.url {
                return;
            }
            let mut updates = consumer.updates();
            let _ = tokio::time::timeout(Duration::from_millis(20), updates.changed()).await;
        }
    })
    .await;
    assert!(back.is_ok(), "the resumed provider never answered again");
}
