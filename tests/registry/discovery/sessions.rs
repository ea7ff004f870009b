//! Connect strings, chroots, session expiry and lost replies: registrations and discovery survive them.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_connect_string_and_unreachable_zookeeper_are_named_within_the_timeout() {
    let err = Consumer::connect("localhost", "/registry")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"localhost\"") && text.contains("no port"),
        "{text}"
    );

    let err = Consumer::connect("127.0.0.1:2181/", "/registry")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("chroot"), "{err}");

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = ConsumerConfig::new(format!("127.0.0.1:{port}"), "/registry");
    config.connect_timeout = Duration::from_secs(1);
    let t = Instant::now();
    let err = Consumer::connect_with(config).await.unwrap_err();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("could not reach"),
        "{text}"
    );

    let err = Consumer::connect(&zk().connect_string(), "registry")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must start with '/'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chroot_in_the_connect_string_is_created_and_everything_lives_under_it() {
    let chroot = unique_path("chroot");
    let connect = format!("{}{chroot}", zk().connect_string());
    let consumer = Consumer::connect(&connect, "/registry").await.unwrap();
    let p = provider_at(&connect, "/registry").await;
    let url = p.url().clone();
    assert!(
        consumer
            .wait_until(Duration::from_secs(1), |urls| urls.contains(&url))
            .await,
        "not discovered under the chroot"
    );
    let answer = consumer.say_hello("chroot").await.unwrap();
    assert_eq!(answer.url, url);

    // Seen without the chroot, the node is under it.
    let node = p.node_path().expect("node path");
    assert!(node.starts_with("/registry/provider"), "{node}");
    let raw = raw_client(&zk().connect_string()).await;
    let (data, _) = raw.get_data(&format!("{chroot}{node}")).await.unwrap();
    assert_eq!(data, url.as_str().as_bytes());
    p.shutdown().await.unwrap();
    assert!(
        raw.list_children(&format!("{chroot}/registry"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_re_registers_and_a_deleted_node_comes_back() {
    let base = unique_path("expiry");
    let session = Session::connect(
        SessionConfig::new(zk().connect_string()).session_timeout(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    let url = ProviderUrl::http("127.0.0.1", 4242).unwrap();
    let registration = Registration::register(&session, &base, &url).await.unwrap();
    let first = registration.node_path().unwrap();
    let watcher_session = Session::connect_to(&zk().connect_string()).await.unwrap();
    let discovery = Discovery::watch(&watcher_session, &base).await.unwrap();
    assert_eq!(discovery.providers().len(), 1);

    // Expire the provider's session: the node goes, and comes back in a new session.
    let old_id = session.session_id();
    let mut nodes = registration.subscribe();
    zoorpc_testkit::expire_session(&zk().connect_string(), session.client().session().clone())
        .await
        .unwrap();
    let second = next_node(&mut nodes, &first, Duration::from_secs(10))
        .await
        .expect("re-registered after expiry");
    assert_ne!(session.session_id(), old_id);
    let raw = raw_client(&zk().connect_string()).await;
    assert_eq!(raw.check_stat(&first).await.unwrap(), None);
    let (data, stat) = raw.get_data(&second).await.unwrap();
    assert_eq!(data, url.as_str().as_bytes());
    assert_eq!(stat.ephemeral_owner, session.session_id());

    // Someone deletes it by hand: it is re-created.
    raw.delete(&second, None).await.unwrap();
    let third = next_node(&mut nodes, &second, Duration::from_secs(5))
        .await
        .expect("re-registered after deletion");
    assert_eq!(raw.list_children(&base).await.unwrap().len(), 1);
    let mut snapshots = discovery.subscribe();
    tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let names: Vec<String> = snapshots
                .borrow_and_update()
                .iter()
                .map(|p| format!("{base}/{}", p.name))
                .collect();
            if names == [third.clone()] {
                return;
            }
            snapshots.changed().await.unwrap();
        }
    })
    .await
    .expect("discovery follows the re-created node");
    registration.deregister().await.unwrap();
    assert!(raw.list_children(&base).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_replies_to_create_and_delete_leave_exactly_one_node_then_none() {
    let base = unique_path("lost-create");
    let connect = zk().connect_string();
    let raw = raw_client(&connect).await;
    let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    for path in ["/zoorpc-test", base.as_str()] {
        match raw.create(path, b"", &persistent).await {
            Ok(_) | Err(zkc::Error::NodeExists) => {}
            Err(e) => panic!("cannot create {path}: {e}"),
        }
    }
    // The provider talks to ZooKeeper through a proxy that swallows the reply to its create.
    let proxy = ZkProxy::start(connect.parse().unwrap()).await.unwrap();
    let session = Session::connect(
        SessionConfig::new(proxy.addr().to_string()).session_timeout(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    let id = session.session_id();
    proxy.lose_reply_to_next(Request::Create);

    let url = ProviderUrl::http("127.0.0.1", 4243).unwrap();
    let registration = tokio::time::timeout(
        Duration::from_secs(10),
        Registration::register(&session, &base, &url),
    )
    .await
    .expect("register returns after the reconnect")
    .unwrap();

    // The create took effect but its reply never came: the client timed out, reconnected in the
    // same session, and found its node instead of creating a second one.
    assert_eq!(proxy.lost_replies(), 1, "the create's reply was not lost");
    assert_eq!(session.session_id(), id, "the session was replaced");
    let children = raw.list_children(&base).await.unwrap();
    assert_eq!(children.len(), 1, "one provider, one node: {children:?}");
    let node = format!("{base}/{}", children[0]);
    assert_eq!(registration.node_path(), Some(node.clone()));
    let (data, stat) = raw.get_data(&node).await.unwrap();
    assert_eq!(data, url.as_str().as_bytes());
    assert_eq!(stat.ephemeral_owner, id);

    // Deregistering whose delete reply is lost: asked again, it succeeds and the node is gone.
    proxy.lose_reply_to_next(Request::Delete);
    tokio::time::timeout(Duration::from_secs(10), registration.deregister())
        .await
        .expect("deregister returns after the reconnect")
        .unwrap();
    assert_eq!(proxy.lost_replies(), 2, "the delete's reply was not lost");
    assert!(raw.list_children(&base).await.unwrap().is_empty());
    assert_eq!(session.session_id(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_session_expires_keeps_following_the_registry() {
    let base = unique_path("consumer-expiry");
    let first = provider(&base).await;
    let consumer = Consumer::connect_with({
        let mut c = ConsumerConfig::new(zk().connect_string(), &base);
        c.session_timeout = Duration::from_millis(1500);
        c
    })
    .await
    .unwrap();
    assert_eq!(consumer.urls(), vec![first.url().clone()]);
    let mut status = consumer.session().expect("connected").subscribe();
    zoorpc_testkit::expire_session(
        &zk().connect_string(),
        consumer
            .session()
            .expect("connected")
            .client()
            .session()
            .clone(),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.generation == 1 && s.is_connected()),
    )
    .await
    .expect("a new session replaces the expired one")
    .unwrap();
    // The list was kept meanwhile, and changes after the expiry still arrive.
    assert_eq!(consumer.urls(), vec![first.url().clone()]);
    let second = provider(&base).await;
    let url = second.url().clone();
    assert!(
        consumer
            .wait_until(Duration::from_secs(1), |u| u.len() == 2 && u.contains(&url))
            .await
    );
    first.shutdown().await.unwrap();
    assert!(
        consumer
            .wait_until(Duration::from_secs(1), |u| u == [url.clone()])
            .await
    );
    second.shutdown().await.unwrap();
}
