//! Rolling restart: every provider process, one after another, SIGTERMed and
//! started again on the same port, under steady load from an `IDEMPOTENT` consumer and a
//! default one: no call fails.

use crate::common;

use std::time::Duration;

use common::echo_load::{EchoProcess, Load, assert_no_failures, server_of, spawn_echo_on};
use common::zk;
use zoorpc::apps::echo::EchoClient;
use zoorpc::consumer::{CallPolicy, Consumer, ConsumerConfig};
use zoorpc_testkit::unique_path;

async fn consumer(base: &str) -> Consumer {
    Consumer::connect_with(ConsumerConfig::new(zk().connect_string(), base))
        .await
        .expect("consumer")
}

/// Waits until `consumer` lists exactly `urls` (in any order).
async fn wait_for_list(consumer: &Consumer, urls: &[String]) {
    let mut want: Vec<&str> = urls.iter().map(String::as_str).collect();
    want.sort_unstable();
    let reached = consumer
        .wait_until(Duration::from_secs(10), |list| {
            let mut have: Vec<&str> = list.iter().map(|u| u.as_str()).collect();
            have.sort_unstable();
            have == want
        })
        .await;
    assert!(reached, "want {want:?}, have {:?}", consumer.urls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_restarted_in_turn_under_load_fails_no_call() {
    let base = unique_path("rolling");
    let mut providers: Vec<EchoProcess> = (0..3).map(|_| spawn_echo_on(&base, 0)).collect();
    let urls: Vec<String> = providers.iter().map(|p| p.url.clone()).collect();
    let idempotent = consumer(&base).await;
    let default = consumer(&base).await;
    wait_for_list(&idempotent, &urls).await;
    wait_for_list(&default, &urls).await;
    let mut loads = [
        Load::start(EchoClient::new(
            idempotent.channel_with(CallPolicy::IDEMPOTENT),
        )),
        Load::start(EchoClient::new(default.channel())),
    ];
    for load in &mut loads {
        load.calls(200).await;
    }

    for i in 0..providers.len() {
        let port: u16 = providers[i]
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in url");
        providers[i].process.signal(libc::SIGTERM).unwrap();
        let status = providers[i]
            .process
            .wait_exit(Duration::from_secs(15))
            .unwrap();
        assert!(status.success(), "provider {i} stopped with {status:?}");
        let others: Vec<String> = urls.iter().filter(|u| **u != urls[i]).cloned().collect();
        wait_for_list(&idempotent, &others).await;
        wait_for_list(&default, &others).await;
        for load in &mut loads {
            load.calls(100).await;
        }

        // Started again on the same port: the same URL comes back.
        providers[i] = spawn_echo_on(&base, port);
        assert_eq!(providers[i].url, urls[i]);
        wait_for_list(&idempotent, &urls).await;
        wait_for_list(&default, &urls).await;
        for load in &mut loads {
            load.calls(200).await;
        }
    }

    let [a, b] = loads;
    for (name, load) in [("idempotent", a), ("default", b)] {
        let (answers, failures) = load.finish().await;
        assert_no_failures(&failures);
        let total: u64 = answers.values().sum();
        assert!(total >= 1600, "{name}: only {total} calls: {answers:?}");
        for url in &urls {
            assert!(
                answers.get(&server_of(url)).copied().unwrap_or(0) > 0,
                "{name}: {url} never answered: {answers:?}"
            );
        }
    }
    for p in &mut providers {
        p.process.signal(libc::SIGTERM).unwrap();
        p.process.wait_exit(Duration::from_secs(15)).unwrap();
    }
}
