//! ZooKeeper itself going away: tests that stop and restart their own server.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zoorpc::consumer::Consumer;
use zoorpc::provider::ProviderConfig;
use zoorpc::registry::{
    Error as RegistryError, LinkState, ProviderUrl, Registration, Session, SessionConfig,
};
use zoorpc_testkit::{ZkProxy, ZkServer, unique_path};

/// Waits until `session`'s link is `state`; panics naming `what` after 15 s.
async fn wait_link(session: &Session, state: LinkState, what: &str) {
    let mut status = session.subscribe();
    let reached = tokio::time::timeout(
        Duration::from_secs(15),
        status.wait_for(|s| s.state == state),
    )
    .await;
    assert!(
        matches!(reached, Ok(Ok(_))),
        "{what}: not {state:?} in time"
    );
}

/// Kills ZooKeeper and waits until `session` noticed.
async fn kill_and_wait_disconnected(server: &mut ZkServer, session: &Session) {
    server.kill();
    wait_link(session, LinkState::Disconnected, "after the kill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_list_keeps_serving_while_zookeeper_is_down_and_a_reconnect_recreates_nothing() {
    let mut server = ZkServer::start().unwrap();
    let connect = server.connect_string();
    let base = unique_path("outage");
    let config = ProviderConfig::new(&connect, &base, 0)
        .session_timeout(Duration::from_secs(20))
        .drain_grace(Duration::from_millis(10));
    let providers = [
        zoorpc::apps::hello::serve(config.clone()).await.unwrap(),
        zoorpc::apps::hello::serve(config).await.unwrap(),
    ];
    let nodes: Vec<String> = providers.iter().filter_map(|p| p.node_path()).collect();
    let consumer = Consumer::connect(&connect, &base).await.unwrap();
    assert_eq!(consumer.urls().len(), 2);

    // ZooKeeper dies. The consumer notices the disconnect but keeps its list and serving.
    kill_and_wait_disconnected(&mut server, consumer.session().expect("connected")).await;
    assert_eq!(consumer.urls().len(), 2);
    for _ in 0..50 {
        consumer
            .say_hello("outage")
            .await
            .expect("calls work without ZooKeeper");
    }

    // Back within the session timeout: same sessions, same nodes, nothing re-created.
    let sessions: Vec<i64> = providers.iter().map(|p| p.session().session_id()).collect();
    server.restart().unwrap();
    for p in &providers {
        wait_link(p.session(), LinkState::Connected, "provider").await;
        assert_eq!(
            p.session().status().generation,
            0,
            "a reconnect must not open a new session"
        );
    }
    let after: Vec<i64> = providers.iter().map(|p| p.session().session_id()).collect();
    assert_eq!(sessions, after);
    let again: Vec<String> = providers.iter().filter_map(|p| p.node_path()).collect();
    assert_eq!(nodes, again);
    let raw = common::raw_client(&connect).await;
    let mut children = raw.list_children(&base).await.unwrap();
    children.sort();
    let mut expected: Vec<String> = nodes
        .iter()
        .map(|n| n.rsplit('/').next().unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(
        children, expected,
        "exactly the original nodes, no duplicates"
    );
    wait_link(
        consumer.session().expect("connected"),
        LinkState::Connected,
        "consumer",
    )
    .await;
    for _ in 0..20 {
        consumer.say_hello("back").await.unwrap();
    }
    for p in providers {
        p.shutdown().await.unwrap();
    }
    assert!(
        consumer
            .wait_until(Duration::from_secs(2), |u| u.is_empty())
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_stops_restarts_on_the_same_port_and_cleans_up() {
    let mut server = ZkServer::start().unwrap();
    let dir = server.dir().to_path_buf();
    let port = server.port();
    assert!(dir.join("zoo.cfg").exists());
    let session = zoorpc::registry::Session::connect_to(&server.connect_string())
        .await
        .unwrap();
    let client = session.client();
    client
        .create(
            "/kept",
            b"data",
            &zookeeper_client::CreateMode::Persistent
                .with_acls(zookeeper_client::Acls::anyone_all()),
        )
        .await
        .unwrap();
    server.stop();
    assert!(!server.is_running());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open after stop"
    );
    server.restart().unwrap();
    assert_eq!(server.port(), port);
    // Same data after the restart.
    let fresh = common::raw_client(&server.connect_string()).await;
    assert_eq!(fresh.get_data("/kept").await.unwrap().0, b"data");
    drop(fresh);
    drop(session);
    drop(server);
    assert!(!dir.exists(), "temp dir left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_connect_string_with_a_dead_member_still_connects() {
    let server = ZkServer::start().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let connect = format!("127.0.0.1:{dead_port},{}", server.connect_string());
    let base = unique_path("multi-host");
    let config = ProviderConfig::new(&connect, &base, 0).drain_grace(Duration::from_millis(10));
    let provider = zoorpc::apps::hello::serve(config).await.unwrap();
    let consumer = Consumer::connect(&connect, &base).await.unwrap();
    assert_eq!(consumer.urls(), vec![provider.url().clone()]);
    consumer.say_hello("multi").await.unwrap();
    provider.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_while_zookeeper_is_down_fails_within_the_connect_timeout_then_works() {
    let mut server = ZkServer::start().unwrap();
    let connect = server.connect_string();
    let base = unique_path("register-down");
    let session = Session::connect(
        SessionConfig::new(&connect)
            .session_timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    kill_and_wait_disconnected(&mut server, &session).await;

    let url = ProviderUrl::http("127.0.0.1", 4244).unwrap();
    let started = Instant::now();
    let err = Registration::register(&session, &base, &url)
        .await
        .expect_err("registered with ZooKeeper down");
    let took = started.elapsed();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&connect), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "took {took:?}"
    );

    // ZooKeeper back (same data, same session): once the client is back in its session (its
    // reconnect backoff and a loaded machine may take longer than the connect timeout),
    // registering works.
    server.restart().unwrap();
    wait_link(&session, LinkState::Connected, "after the restart").await;
    let registration = Registration::register(&session, &base, &url).await.unwrap();
    assert!(registration.node_path().is_some());
    registration.deregister().await.unwrap();
}

#[test]
fn a_provider_stopped_while_zookeeper_is_gone_exits_after_one_session_timeout() {
    let mut server = ZkServer::start().unwrap();
    let base = unique_path("stop-without-zk");
    // Session timeout 1.5 s (spawn_provider's setting).
    let mut p = common::spawn_provider(&server.connect_string(), &base, 0, &[]);
    server.kill();
    p.process.signal(libc::SIGTERM).unwrap();
    let started = Instant::now();
    let status = p
        .process
        .wait_exit(Duration::from_secs(15))
        .expect("the provider exits although ZooKeeper is gone");
    let took = started.elapsed();
    assert_eq!(
        status.code(),
        Some(1),
        "not deregistered, so not a clean exit"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "gave up early: {took:?}"
    );
    let lines = p.process.drain_lines().to_vec();
    assert_eq!(
        lines[1..],
        [format!("stopping {}", p.node), "stopped".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_wiped_zookeeper_running_consumers_hold_exactly_the_re_registered_providers() {
    let mut server = ZkServer::start().unwrap();
    let connect = server.connect_string();
    let base = unique_path("wiped");
    let config = |connect: &str| {
        ProviderConfig::new(connect, &base, 0)
            .session_timeout(Duration::from_secs(2))
            .drain_grace(Duration::from_millis(10))
    };
    // The first provider talks to ZooKeeper through a proxy, so the test can hold it back and
    // make it re-register last: the names then come back holding other URLs.
    let proxy = ZkProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap())
        .await
        .unwrap();
    let held_back = config(&proxy.addr().to_string());
    let mut providers = vec![zoorpc::apps::hello::serve(held_back).await.unwrap()];
    for _ in 0..2 {
        providers.push(zoorpc::apps::hello::serve(config(&connect)).await.unwrap());
    }
    let consumer = Consumer::connect(&connect, &base).await.unwrap();
    assert_eq!(consumer.urls().len(), 3);

    // The disk is lost: every session and node is gone and the sequence starts again
    // (provider0000000000..), in the order the providers come back.
    proxy.cut();
    server.wipe_and_restart().unwrap();
    let raw = common::raw_client(&connect).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "the two providers never re-registered"
        );
        match raw.get_and_watch_children(&base).await {
            Ok((children, _, _)) if children.len() >= 2 => break,
            Ok((_, _, watcher)) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), watcher.changed()).await;
            }
            // The base path is not there again yet.
            Err(_) => {
                let (_, watcher) = raw.check_and_watch_stat(&base).await.unwrap();
                let _ = tokio::time::timeout(Duration::from_secs(1), watcher.changed()).await;
            }
        }
    }
    proxy.heal();
    let mut updates = consumer.updates();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut held;
    loop {
        held = consumer
            .endpoints()
            .iter()
            .map(|e| (e.node().to_owned(), e.url().to_string()))
            .collect::<BTreeMap<_, _>>();
        let mut registered = BTreeMap::new();
        for name in raw.list_children(&base).await.unwrap_or_default() {
            if let Ok((data, _)) = raw.get_data(&format!("{base}/{name}")).await {
                registered.insert(name, String::from_utf8_lossy(&data).into_owned());
            }
        }
        if registered.len() == 3 && held == registered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never converged:\n zookeeper {registered:?}\n consumer  {held:?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), updates.changed()).await;
    }
    let mut answered = std::collections::HashSet::new();
    for _ in 0..60 {
        let answer = consumer.say_hello("after the wipe").await.unwrap();
        answered.insert(answer.url.to_string());
    }
    assert_eq!(answered.len(), 3, "{answered:?} of {held:?}");
    for p in providers {
        p.shutdown().await.unwrap();
    }
}
