//! An operator (or a wiped ZooKeeper) changes the registry under running programs: node names
//! that come back for other providers, another URL `set` into a provider's node. Consumers must
//! end up holding exactly what ZooKeeper holds; providers put their own URL back.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{raw_client, zk};
use zookeeper_client as zkc;
use zoorpc::consumer::Consumer;
use zoorpc::provider::ProviderConfig;
use zoorpc_testkit::unique_path;

/// What ZooKeeper holds under `base`: node name → data.
async fn zookeeper_view(raw: &zkc::Client, base: &str) -> BTreeMap<String, String> {
    let mut view = BTreeMap::new();
    for name in raw.list_children(base).await.expect("list") {
        let (data, _) = raw.get_data(&format!("{base}/{name}")).await.expect("read");
        view.insert(name, String::from_utf8_lossy(&data).into_owned());
    }
    view
}

/// What the consumer holds: node name → URL.
fn consumer_view(consumer: &Consumer) -> BTreeMap<String, String> {
    consumer
        .endpoints()
        .iter()
        .map(|e| (e.node().to_owned(), e.url().to_string()))
        .collect()
}

/// Waits until the consumer holds exactly `expected`; panics with both views if it does not.
async fn wait_consumer_holds(consumer: &Consumer, expected: &BTreeMap<String, String>) {
    let mut updates = consumer.updates();
    let reached = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            updates.borrow_and_update();
            if &consumer_view(consumer) == expected {
                return;
            }
            if updates.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "the consumer never held what ZooKeeper holds:\n zookeeper {expected:?}\n consumer  {:?}",
        consumer_view(consumer)
    );
}

fn ephemeral_sequential() -> zkc::CreateOptions<'static> {
    zkc::CreateMode::EphemeralSequential.with_acls(zkc::Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_names_reused_after_a_recreated_base_path_are_read_again() {
    let base = unique_path("reused");
    let raw = raw_client(&zk().connect_string()).await;
    raw.mkdir(
        &base,
        &zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let urls = [
        "http://127.0.0.1:29201",
        "http://127.0.0.1:29202",
        "http://127.0.0.1:29203",
    ];
    for url in urls {
        raw.create(
            &format!("{base}/provider"),
            url.as_bytes(),
            &ephemeral_sequential(),
        )
        .await
        .unwrap();
    }
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    let before = zookeeper_view(&raw, &base).await;
    wait_consumer_holds(&consumer, &before).await;

    // `deleteall` of the base path and the providers coming back in another order, in one
    // transaction: the consumer can only learn of it from one children event in which the same
    // names are listed again, now holding other URLs.
    let mut multi = raw.new_multi_writer();
    for name in before.keys() {
        multi.add_delete(&format!("{base}/{name}"), None).unwrap();
    }
    multi.add_delete(&base, None).unwrap();
    multi
        .add_create(
            &base,
            b"",
            &zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all()),
        )
        .unwrap();
    for url in [urls[2], urls[0], urls[1]] {
        multi
            .add_create(
                &format!("{base}/provider"),
                url.as_bytes(),
                &ephemeral_sequential(),
            )
            .unwrap();
    }
    multi.commit().await.unwrap();

    let after = zookeeper_view(&raw, &base).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "ZooKeeper reuses the names"
    );
    assert_ne!(after, before, "the names hold other URLs now");
    wait_consumer_holds(&consumer, &after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_set_on_a_node_is_followed_by_running_consumers() {
    let base = unique_path("set-followed");
    let raw = raw_client(&zk().connect_string()).await;
    raw.mkdir(
        &base,
        &zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let (_, seq) = raw
        .create(
            &format!("{base}/provider"),
            b"http://127.0.0.1:29301",
            &ephemeral_sequential(),
        )
        .await
        .unwrap();
    let node = format!("{base}/provider{seq}");
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    wait_consumer_holds(&consumer, &zookeeper_view(&raw, &base).await).await;

    for url in [
        "http://127.0.0.1:29302?weight=5",
        "not a url",
        "http://127.0.0.1:29303",
    ] {
        raw.set_data(&node, url.as_bytes(), None).await.unwrap();
        let mut expected = zookeeper_view(&raw, &base).await;
        // Garbage data is skipped, as in a new node.
        expected.retain(|_, data| data.starts_with("http://"));
        wait_consumer_holds(&consumer, &expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_writes_its_url_back_after_an_operators_set() {
    let base = unique_path("set-restored");
    let config =
        ProviderConfig::new(zk().connect_string(), &base, 0).drain_grace(Duration::from_millis(50));
    let provider = zoorpc::apps::hello::serve(config)
        .await
        .expect("provider starts");
    let node = provider.node_path().expect("registered");
    let url = provider.url().to_string();
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    let raw = raw_client(&zk().connect_string()).await;

    raw.set_data(&node, b"http://127.0.0.1:1", None)
        .await
        .unwrap();
    // The provider puts its URL back: wait for that data change with a watch.
    let restored = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (data, _, watcher) = raw.get_and_watch_data(&node).await.expect("read");
            if data == url.as_bytes() {
                return;
            }
            watcher.changed().await;
        }
    })
    .await;
    assert!(
        restored.is_ok(),
        "the provider did not restore its URL in {node}"
    );
    assert_eq!(
        raw.list_children(&base).await.unwrap().len(),
        1,
        "no second node"
    );
    let expected = zookeeper_view(&raw, &base).await;
    wait_consumer_holds(&consumer, &expected).await;
    let answer = consumer.say_hello("back").await.unwrap();
    assert_eq!(answer.url.as_str(), url);
    provider.shutdown().await.unwrap();
}
