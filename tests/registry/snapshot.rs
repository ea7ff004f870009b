//! The last known list on disk (issue 10 item 4), with the test's own ZooKeeper stopped: a
//! consumer that cannot reach ZooKeeper at start serves the snapshot, says how old it is, and
//! takes the live list once ZooKeeper is back.

use std::path::Path;
use std::time::{Duration, Instant};

use zoorpc::consumer::snapshot::{self, Snapshot};
use zoorpc::consumer::{Consumer, ConsumerConfig, Error};
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc_testkit::{ZkServer, unique_path};

use crate::common::eventually;

/// Waits (bounded) until the snapshot at `path` is of `base` and holds exactly `urls`.
async fn wait_for_snapshot(path: &Path, base: &str, urls: &[String]) -> Snapshot {
    let mut want = urls.to_vec();
    want.sort();
    // The file is written by a background task: no event to wait on.
    let what = format!("a snapshot holding {want:?}");
    eventually(&what, Duration::from_secs(10), || async {
        let snapshot = snapshot::read(path, base).map_err(|e| e.to_string())?;
        let mut have: Vec<String> = snapshot
            .providers
            .iter()
            .map(|p| p.url.to_string())
            .collect();
        have.sort();
        if have == want {
            Ok(snapshot)
        } else {
            Err(format!("it holds {have:?}"))
        }
    })
    .await
}

fn sorted(mut urls: Vec<String>) -> Vec<String> {
    urls.sort();
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_started_while_zookeeper_is_down_serves_the_snapshot_until_it_connects() {
    let mut server = ZkServer::start().unwrap();
    let connect = server.connect_string();
    let base = unique_path("snapshot");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("providers.snapshot");
    let mut provider_config = ProviderConfig::new(&connect, &base, 0);
    provider_config.session_timeout = Duration::from_secs(20);
    provider_config.drain_grace = Duration::from_millis(10);
    let providers = [
        Provider::start(provider_config.clone()).await.unwrap(),
        Provider::start(provider_config.clone()).await.unwrap(),
    ];
    let urls: Vec<String> = providers.iter().map(|p| p.url().to_string()).collect();

    // A live consumer keeps the file equal to its list; it is not serving a snapshot.
    let mut config = ConsumerConfig::new(&connect, &base);
    config.snapshot_path = Some(file.clone());
    config.connect_timeout = Duration::from_secs(1);
    let live = Consumer::connect_with(config.clone()).await.unwrap();
    assert_eq!(live.snapshot_age(), None);
    wait_for_snapshot(&file, &base, &urls).await;
    drop(live);

    server.stop();
    // Without a snapshot: the connect error, within the connect timeout.
    let mut without = config.clone();
    without.snapshot_path = None;
    let err = Consumer::connect_with(without).await.unwrap_err();
    assert!(
        err.to_string().contains("could not reach ZooKeeper"),
        "{err}"
    );
    // A snapshot of another base path is not used.
    let mut other = config.clone();
    other.base_path = format!("{base}-other");
    assert!(matches!(
        Consumer::connect_with(other).await,
        Err(Error::Registry(_))
    ));

    // With it: serving the last known list, its age exposed.
    let started = Instant::now();
    let consumer = Consumer::connect_with(config).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(consumer.session().is_none());
    let age = consumer.snapshot_age().expect("serving the snapshot");
    assert!(age < Duration::from_secs(60), "{age:?}");
    let served: Vec<String> = consumer.urls().iter().map(|u| u.to_string()).collect();
    assert_eq!(sorted(served), sorted(urls.clone()));
    for i in 0..20 {
        consumer
            .say_hello(&format!("down-{i}"))
            .await
            .expect("served from the snapshot while ZooKeeper is down");
    }

    // ZooKeeper back, and a new provider: the live list replaces the snapshot's.
    server.restart().unwrap();
    let newcomer = Provider::start(provider_config).await.unwrap();
    let mut all = urls.clone();
    all.push(newcomer.url().to_string());
    let all = sorted(all);
    let replaced = consumer
        .wait_until(Duration::from_secs(20), |list| {
            sorted(list.iter().map(|u| u.to_string()).collect()) == all
        })
        .await;
    assert!(replaced, "still {:?}", consumer.urls());
    assert_eq!(consumer.snapshot_age(), None);
    assert!(consumer.session().is_some());
    wait_for_snapshot(&file, &base, &all).await;
    let answer = consumer.say_hello("back").await.unwrap();
    assert!(all.contains(&answer.url.to_string()));
    for p in providers {
        p.shutdown().await.unwrap();
    }
    newcomer.shutdown().await.unwrap();
}
