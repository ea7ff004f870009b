//! Slow networks: `tc netem` delay and loss on a test host's link (skipped where the kernel has
//! no netem), and a slow ZooKeeper link through the harness's proxy (runs everywhere).

use crate::hosts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::eventually;
use hosts::{
    CallLoop, Cluster, SESSION_MS, answered_by, block_on_bounded, consumer, has_exactly, runtime,
    spawn_provider, wait_for_exactly,
};
use zoorpc::consumer::{Consumer, ConsumerConfig};
use zoorpc_testkit::{ZkProxy, ZkServer, unique_path};

/// A slow, lossy link (`tc netem`: 40 ms +- 10 ms delay, 3 % loss on everything the provider's
/// host sends, to ZooKeeper and to the consumer): the provider still registers, the consumer
/// finds it and no call fails. Skipped where the kernel has no netem.
#[test]
fn a_slow_lossy_provider_link_still_registers_and_serves_every_call() {
    let Some(cluster) = Cluster::start(&["p1", "p2", "c"]) else {
        return;
    };
    let slow = cluster.host("p1");
    if let Err(reason) = slow.netem(Duration::from_millis(40), Duration::from_millis(10), 3.0) {
        println!("skipped: tc netem is not available here: {reason}");
        return;
    }
    let base = unique_path("netem");
    let connect = cluster.connect();
    let p1 = spawn_provider(Some(slow), &connect, &base, SESSION_MS * 4);
    let p2 = spawn_provider(Some(cluster.host("p2")), &connect, &base, SESSION_MS * 4);
    cluster
        .host("c")
        .run(|| {
            block_on_bounded(async {
                let consumer = consumer(&connect, &base).await;
                wait_for_exactly(&consumer, &[&p1.url, &p2.url], Duration::from_secs(20)).await;
                let calls = CallLoop::start(consumer.clone());
                eventually(
                    "an answer from the slow provider",
                    Duration::from_secs(30),
                    || answered_by(&consumer, &p1.url),
                )
                .await;
                let calls = calls.stop().await;
                calls.assert_none_failed();
                assert!(
                    calls.answers.get(&p1.url).copied().unwrap_or(0) > 0,
                    "{:?}",
                    calls.answers
                );
            })
        })
        .expect("run in the consumer's host");
}

/// A slow ZooKeeper link on loopback, through the harness's proxy (300 ms round trips, both
/// ways, for providers and the consumer alike; runs everywhere, netem or not): registrations
/// and departures still reach the consumer and no call fails.
#[test]
fn a_slow_zookeeper_link_still_converges_and_no_call_fails() {
    let server = ZkServer::start().unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
    let rt = runtime();
    rt.block_on(async {
        let upstream = format!("127.0.0.1:{}", server.port())
            .parse()
            .expect("an address");
        let proxy = ZkProxy::start(upstream).await.expect("start the proxy");
        proxy.set_delay(Duration::from_millis(150));
        let connect = proxy.addr().to_string();
        let base = unique_path("slow-zk");
        let session_ms = 6000;

        // The link is slow indeed: a read takes a round trip of at least 300 ms.
        let raw = zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_millis(session_ms))
            .connect(&connect)
            .await
            .expect("a client through the proxy");
        let asked = Instant::now();
        raw.check_stat("/").await.expect("stat /");
        assert!(
            asked.elapsed() >= Duration::from_millis(300),
            "{:?}",
            asked.elapsed()
        );

        let p1 = spawn_provider(None, &connect, &base, session_ms);
        let mut p2 = spawn_provider(None, &connect, &base, session_ms);
        let mut config = ConsumerConfig::new(&connect, &base);
        config.session_timeout = Duration::from_millis(session_ms);
        let consumer = Arc::new(Consumer::connect_with(config).await.expect("consumer"));
        wait_for_exactly(&consumer, &[&p1.url, &p2.url], Duration::from_secs(20)).await;
        let calls = CallLoop::start(consumer.clone());
        let p3 = spawn_provider(None, &connect, &base, session_ms);
        assert!(
            consumer
                .wait_until(Duration::from_secs(20), |u| has_exactly(
                    u,
                    &[&p1.url, &p2.url, &p3.url]
                ))
                .await,
            "the consumer never saw p3: {:?}",
            consumer.urls()
        );
        p2.process.signal(libc::SIGTERM).expect("SIGTERM p2");
        p2.process
            .wait_for_line("deregistered ", Duration::from_secs(20))
            .expect("p2 deregisters through the slow link");
        assert!(
            consumer
                .wait_until(Duration::from_secs(20), |u| has_exactly(
                    u,
                    &[&p1.url, &p3.url]
                ))
                .await,
            "the consumer kept p2: {:?}",
            consumer.urls()
        );
        eventually("calls reach p3", Duration::from_secs(10), || {
            answered_by(&consumer, &p3.url)
        })
        .await;
        let calls = calls.stop().await;
        calls.assert_none_failed();
        assert!(calls.log.len() > 50, "only {} calls", calls.log.len());
    });
}
