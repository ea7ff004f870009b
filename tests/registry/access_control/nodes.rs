//! The nodes a credential protects: strangers cannot change them, readers need nothing, lost nodes come back owner-only, and without the option all stays open.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_change_registrations_or_the_master_node_and_readers_need_nothing() {
    open_test_root().await;
    let root = unique_path("acl");
    let base = format!("{root}/registry");
    let master = format!("{root}/master/Hello:1.0.0");
    let config = ProviderConfig::new(zk().connect_string(), &base, 0)
        .zk_auth(credential())
        .drain_grace(Duration::from_millis(50));
    assert!(!format!("{config:?}").contains(SECRET), "{config:?}");
    let provider = zoorpc::apps::hello::serve(config).await.unwrap();
    let node = provider.node_path().unwrap();
    let session = owner_session().await;
    let election = MasterElection::join(&session, &master, "127.0.0.1:9090")
        .await
        .unwrap();
    assert!(election.is_master());

    // The ACL: anyone reads, the digest identity svc does everything.
    let stranger = raw_client(&zk().connect_string()).await;
    for path in [&base, &node, &master, &companion_path(&master)] {
        let (acls, _) = stranger.get_acl(path).await.unwrap();
        let summary: Vec<String> = acls
            .iter()
            .map(|a| {
                format!(
                    "{}:{}:{}",
                    a.scheme(),
                    a.id().split(':').next().unwrap_or(""),
                    a.permission()
                )
            })
            .collect();
        assert_eq!(summary, ["world:anyone:READ", "digest:svc:ALL"], "{path}");
    }

    // A stranger without the credential: no delete, set or create anywhere zoorpc wrote.
    assert_no_auth("delete node", stranger.delete(&node, None).await);
    assert_no_auth(
        "set node",
        stranger.set_data(&node, b"http://10.0.0.1:1", None).await,
    );
    let hijack = format!("{base}/provider9999999999");
    let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    assert_no_auth(
        "create under base",
        stranger
            .create(&hijack, b"http://10.0.0.1:1", &persistent)
            .await,
    );
    assert_no_auth("delete base", stranger.delete(&base, None).await);
    assert_no_auth("delete master", stranger.delete(&master, None).await);
    assert_no_auth(
        "set master",
        stranger.set_data(&master, b"10.0.0.1:1", None).await,
    );
    assert_no_auth(
        "set companion",
        stranger
            .set_data(&companion_path(&master), b"x", None)
            .await,
    );
    let ephemeral = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::anyone_all());
    let other = format!("{root}/master/Other:1.0.0");
    assert_no_auth(
        "create beside master",
        stranger.create(&other, b"", &ephemeral).await,
    );
    assert_eq!(stranger.list_children(&base).await.unwrap().len(), 1);

    // zoorpc without the credential: one clear error naming the option, never the secret.
    let plain = Session::connect_to(&zk().connect_string()).await.unwrap();
    let url = ProviderUrl::http("127.0.0.1", 4242).unwrap();
    let err = Registration::register(&plain, &base, &url)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoAuth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("NoAuth") && text.contains("`zk_auth`"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
    let err = MasterElection::join(&plain, &master, "127.0.0.1:9191")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoAuth { .. }), "{err:?}");

    // A consumer without the credential discovers and calls.
    let consumer = Consumer::connect_with(ConsumerConfig::new(zk().connect_string(), &base))
        .await
        .unwrap();
    let answer = consumer.say_hello("acl").await.unwrap();
    assert_eq!(&answer.url, provider.url());

    election.resign().await.unwrap();
    provider.shutdown().await.unwrap();
    assert!(stranger.list_children(&base).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_the_owner_deletes_elsewhere_or_lost_with_an_expired_session_comes_back_owner_only()
{
    open_test_root().await;
    let base = unique_path("acl-owner");
    let session = owner_session().await;
    let url = ProviderUrl::http("127.0.0.1", 4343).unwrap();
    let registration = Registration::register(&session, &base, &url).await.unwrap();
    let first = registration.node_path().unwrap();
    let mut nodes = registration.subscribe();
    let owner = owner_raw_client().await;
    owner.delete(&first, None).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(n) = nodes.borrow_and_update().clone()
                && n != first
            {
                return n;
            }
            nodes.changed().await.unwrap();
        }
    })
    .await
    .expect("re-registered after the owner deleted the node");
    let (acls, _) = owner.get_acl(&second).await.unwrap();
    assert_eq!(acls.len(), 2, "{acls:?}");

    // A new session after expiry is authenticated too: the node comes back owner-only.
    zoorpc_testkit::expire_session(&zk().connect_string(), session.client().session().clone())
        .await
        .unwrap();
    let third = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(n) = nodes.borrow_and_update().clone()
                && n != second
            {
                return n;
            }
            nodes.changed().await.unwrap();
        }
    })
    .await
    .expect("re-registered after expiry");
    assert_eq!(session.status().generation, 1);
    let stranger = raw_client(&zk().connect_string()).await;
    assert_no_auth("delete after expiry", stranger.delete(&third, None).await);
    let (acls, _) = stranger.get_acl(&third).await.unwrap();
    assert!(
        acls.iter()
            .any(|a| a.scheme() == "digest" && a.id().starts_with("svc:")),
        "{acls:?}"
    );
    registration.deregister().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_option_nodes_stay_open_to_all() {
    open_test_root().await;
    let base = unique_path("acl-open");
    let session = Session::connect_to(&zk().connect_string()).await.unwrap();
    let url = ProviderUrl::http("127.0.0.1", 4444).unwrap();
    let registration = Registration::register(&session, &base, &url).await.unwrap();
    let node = registration.node_path().unwrap();
    let raw = raw_client(&zk().connect_string()).await;
    for path in [&base, &node] {
        let (acls, _) = raw.get_acl(path).await.unwrap();
        assert_eq!(acls.as_slice(), &*zkc::Acls::anyone_all(), "{path}");
    }
}
