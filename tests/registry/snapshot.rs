//! The last known list on disk, with the test's own ZooKeeper stopped: a
//! consumer that cannot reach ZooKeeper at start serves the snapshot, says how old it is, and
//! takes the live list once ZooKeeper is back.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::eventually;
use zoorpc::consumer::{Consumer, ConsumerConfig, Error};
use zoorpc::provider::ProviderConfig;
use zoorpc_testkit::{ZkServer, unique_path};

/// The base path and provider URLs of the snapshot file at `path`, read by its documented
/// format (`zoorpc-snapshot 1`, `base <path>`, `written-ms <ms>`, then `<node> <czxid> <url>`).
fn read_snapshot(path: &Path) -> Option<(String, Vec<String>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    (lines.next()? == "zoorpc-snapshot 1").then_some(())?;
    let base = lines.next()?.strip_prefix("base ")?.to_owned();
    lines.next()?.strip_prefix("written-ms ")?;
    let urls = lines
        .map(|line| line.splitn(3, ' ').nth(2).map(str::to_owned))
        .collect::<Option<Vec<String>>>()?;
    Some((base, urls))
}

/// Waits (bounded) until the snapshot at `path` is of `base` and holds exactly `urls`.
async fn wait_for_snapshot(path: &Path, base: &str, urls: &[String]) {
    let mut want = urls.to_vec();
    want.sort();
    // The file is written by a background task: no event to wait on.
    let what = format!("a snapshot of {base} holding {want:?}");
    eventually(&what, Duration::from_secs(10), || async {
        let Some((of, mut have)) = read_snapshot(path) else {
            return Err("no readable snapshot yet".to_owned());
        };
        have.sort();
        if of == base && have == want {
            Ok(())
        } else {
            Err(format!("it is of {of} and holds {have:?}"))
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
    let provider_config = ProviderConfig::new(&connect, &base, 0)
        .session_timeout(Duration::from_secs(20))
        .drain_grace(Duration::from_millis(10));
    let providers = [
        zoorpc::apps::hello::serve(provider_config.clone())
            .await
            .unwrap(),
        zoorpc::apps::hello::serve(provider_config.clone())
            .await
            .unwrap(),
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
    let newcomer = zoorpc::apps::hello::serve(provider_config).await.unwrap();
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
