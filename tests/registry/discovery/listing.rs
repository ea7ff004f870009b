//! What a consumer's list holds: registered providers within a second, none, a missing base path, garbage children, an unlistable base path.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_provider_is_discovered_within_a_second_with_its_url_as_data() {
    let base = unique_path("discover");
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert!(consumer.urls().is_empty());

    let started = Instant::now();
    let p = provider(&base).await;
    let url = p.url().clone();
    assert!(
        consumer
            .wait_until(Duration::from_secs(1), |urls| urls.contains(&url))
            .await,
        "not discovered within 1 s of registering"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // What a zkCli.sh user sees.
    let node = p.node_path().expect("node path");
    let name = node.strip_prefix(&format!("{base}/")).expect("under base");
    assert!(is_provider_node_name(name), "{name}");
    let raw = raw_client(&zk().connect_string()).await;
    let (data, stat) = raw.get_data(&node).await.unwrap();
    assert_eq!(data, url.as_str().as_bytes());
    assert_eq!(
        url.as_str(),
        format!("http://127.0.0.1:{}", p.local_addr().port())
    );
    assert_ne!(stat.ephemeral_owner, 0, "node must be ephemeral");
    assert_eq!(
        raw.list_children(&base).await.unwrap(),
        vec![name.to_owned()]
    );
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_providers_is_an_immediate_error_and_follows_the_last_stop() {
    let base = unique_path("empty");
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    let t = Instant::now();
    let err = consumer.say_hello("x").await.unwrap_err();
    assert!(matches!(err, ConsumerError::NoProviders { .. }), "{err}");
    assert!(err.to_string().contains(&base), "{err}");
    assert!(matches!(
        consumer.lookup(),
        Err(ConsumerError::NoProviders { .. })
    ));
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    let a = provider(&base).await;
    let b = provider(&base).await;
    assert!(
        consumer
            .wait_until(Duration::from_secs(1), |u| u.len() == 2)
            .await
    );
    consumer.say_hello("x").await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let stopped = Instant::now();
    loop {
        if let Err(ConsumerError::NoProviders { .. }) = consumer.say_hello("x").await {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(1),
            "NoProviders not within 1 s"
        );
        let mut updates = consumer.updates();
        let _ = tokio::time::timeout(Duration::from_millis(100), updates.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_base_path_is_waited_for_and_the_first_provider_picked_up() {
    let base = format!("{}/deeper/registry", unique_path("missing"));
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert!(consumer.urls().is_empty());
    let raw = raw_client(&zk().connect_string()).await;
    assert_eq!(
        raw.check_stat(&base).await.unwrap(),
        None,
        "base must not exist yet"
    );
    let p = provider(&base).await;
    let url = p.url().clone();
    assert!(
        consumer
            .wait_until(Duration::from_secs(1), |u| u == [url.clone()])
            .await
    );
    assert_eq!(consumer.say_hello("late").await.unwrap().url, url);
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_children_are_skipped_and_the_rest_keeps_serving() {
    let base = unique_path("garbage");
    let raw = raw_client(&zk().connect_string()).await;
    let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    raw.mkdir(&base, &persistent).await.unwrap();
    let garbage: Vec<Vec<u8>> = vec![
        b"not a url".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        vec![b'x'; 500 * 1024],
        b"".to_vec(),
        b"http://127.0.0.1:99999".to_vec(),
    ];
    for data in &garbage {
        raw.create(
            &format!("{base}/provider"),
            data,
            &zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::anyone_all()),
        )
        .await
        .unwrap();
    }
    let good = provider(&base).await;
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert_eq!(consumer.urls(), vec![good.url().clone()]);
    for _ in 0..20 {
        assert_eq!(consumer.say_hello("g").await.unwrap().url, *good.url());
    }
    // More garbage while running, then another real provider: the watch survives both.
    raw.create(
        &format!("{base}/provider"),
        b"\x00\x01garbage",
        &zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let second = provider(&base).await;
    let expect = [good.url().clone(), second.url().clone()];
    assert!(
        consumer
            .wait_until(Duration::from_secs(1), |u| u.len() == 2
                && expect.iter().all(|e| u.contains(e)))
            .await,
        "{:?}",
        consumer.urls()
    );
    good.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
}

/// A base path this client may not list is an error from `connect`, naming it, not an empty
/// list that looks real (the first snapshot is real or there is none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_path_that_cannot_be_listed_is_an_error_not_an_empty_list() {
    let base = unique_path("no-auth");
    let owner = raw_client(&zk().connect_string()).await;
    owner.auth("digest", b"owner:secret").await.unwrap();
    // The shared parents stay open to everyone; only the base path is the owner's.
    let parent = base.rsplit_once('/').map(|(p, _)| p.to_owned()).unwrap();
    owner
        .mkdir(
            &parent,
            &zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all()),
        )
        .await
        .or_else(|e| match e {
            zkc::Error::NodeExists => Ok(()),
            e => Err(e),
        })
        .unwrap();
    owner
        .create(
            &base,
            b"",
            &zkc::CreateMode::Persistent.with_acls(zkc::Acls::creator_all()),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let err = Consumer::connect(&zk().connect_string(), &base)
        .await
        .expect_err("a consumer that cannot list its base path");
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = err.to_string();
    assert!(text.contains(&base), "{text}");
    assert!(text.to_lowercase().contains("auth"), "{text}");
}
