//! Registration and discovery end to end, providers in process, against a real ZooKeeper.

use crate::common;

use std::time::{Duration, Instant};

use common::{is_provider_node_name, raw_client, zk};
use zookeeper_client as zkc;
use zoorpc::consumer::{Consumer, ConsumerConfig, Error as ConsumerError};
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc::registry::{Discovery, ProviderUrl, Registration, Session, SessionConfig};
use zoorpc_testkit::{Request, ZkProxy, unique_path};

async fn provider(base: &str) -> Provider {
    provider_at(&zk().connect_string(), base).await
}

async fn provider_at(connect: &str, base: &str) -> Provider {
    let config = ProviderConfig::new(connect, base, 0).drain_grace(Duration::from_millis(50));
    zoorpc::apps::hello::serve(config)
        .await
        .expect("provider starts")
}

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
async fn three_providers_each_get_at_least_a_fifth_of_300_calls() {
    let base = unique_path("spread");
    let providers = [
        provider(&base).await,
        provider(&base).await,
        provider(&base).await,
    ];
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert_eq!(consumer.urls().len(), 3);
    let mut counts = std::collections::HashMap::new();
    for i in 0..300 {
        let answer = consumer.say_hello(&format!("n{i}")).await.unwrap();
        assert_eq!(answer.value.message, format!("Hello n{i}!"));
        assert_eq!(answer.value.provider, answer.url.as_str());
        *counts.entry(answer.url.to_string()).or_insert(0) += 1;
    }
    for p in &providers {
        let n = counts.get(p.url().as_str()).copied().unwrap_or(0);
        assert!(n >= 60, "{} got {n} of 300 calls: {counts:?}", p.url());
    }
    // lookup(): a plain generated client on a random live provider's reusable channel.
    let mut via_lookup = std::collections::HashSet::new();
    for _ in 0..60 {
        let mut client = consumer.lookup().unwrap();
        let reply = client
            .say_hello(zoorpc::proto::HelloRequest { name: "l".into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.message, "Hello l!");
        via_lookup.insert(reply.provider);
    }
    assert_eq!(via_lookup.len(), 3, "{via_lookup:?}");
    for p in providers {
        p.shutdown().await.unwrap();
    }
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
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = zoorpc::apps::hello::serve(ProviderConfig::new(
        zk().connect_string(),
        unique_path("port"),
        port,
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&port.to_string()) && text.contains("already in use"),
        "{text}"
    );
}

/// Waits for the registration's node path to become something other than `old`.
async fn next_node(
    nodes: &mut tokio::sync::watch::Receiver<Option<String>>,
    old: &str,
    timeout: Duration,
) -> Result<String, tokio::time::error::Elapsed> {
    tokio::time::timeout(timeout, async {
        loop {
            if let Some(n) = nodes.borrow_and_update().clone()
                && n != old
            {
                return n;
            }
            nodes.changed().await.unwrap();
        }
    })
    .await
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
async fn providers_serve_grpc_health_for_hello_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let base = unique_path("health");
    let p = provider(&base).await;
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |urls| urls.len() == 1)
            .await
    );
    let channel = tonic::transport::Endpoint::from_shared(consumer.urls()[0].endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "hello.v1.HelloService".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.get_ref().status(), ServingStatus::Serving);
    p.shutdown().await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_in_the_url_steer_the_random_pick() {
    let base = unique_path("weights");
    let weighted =
        |w: &str| ProviderConfig::new(zk().connect_string(), &base, 0).metadata("weight", w);
    let heavy = zoorpc::apps::hello::serve(weighted("300")).await.unwrap();
    let light = zoorpc::apps::hello::serve(weighted("100")).await.unwrap();
    assert!(heavy.url().as_str().ends_with("?weight=300"));
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert_eq!(consumer.urls().len(), 2);
    let mut to_heavy = 0;
    for _ in 0..400 {
        let answer = consumer.say_hello("w").await.unwrap();
        // The reply names the provider by its registered URL, metadata included.
        assert_eq!(answer.value.provider, answer.url.as_str());
        if answer.url == *heavy.url() {
            to_heavy += 1;
        }
    }
    assert!(
        (260..=340).contains(&to_heavy),
        "heavy got {to_heavy} of 400"
    );
    heavy.shutdown().await.unwrap();
    light.shutdown().await.unwrap();
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
