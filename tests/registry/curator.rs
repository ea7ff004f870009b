//! The Curator layout's instance node kept as `provider<seq>` is (expiry, an operator's delete
//! and `set`, a lost create reply, ACLs), and discovery following it, against a real ZooKeeper.
//! What the Java side reads of it is `tests/calls/curator/`'s.

use crate::common;

use std::time::Duration;

use common::{raw_client, zk};
use zookeeper_client as zkc;
use zoorpc::registry::{
    CuratorPayload, CuratorService, Discovery, ProviderUrl, Registration, Session, SessionConfig,
    ZkCredential, weight,
};
use zoorpc_testkit::{Request, ZkProxy, unique_path};

/// Waits until `check` holds for the node at `path` (its data and stat), at most 10 s.
async fn node_becomes(
    raw: &zkc::Client,
    path: &str,
    what: &str,
    check: impl Fn(&[u8], &zkc::Stat) -> bool,
) {
    let check = &check;
    common::eventually(what, Duration::from_secs(10), move || async move {
        match raw.get_data(path).await {
            Ok((data, stat)) if check(&data, &stat) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_node_survives_expiry_delete_and_set_under_its_one_id() {
    let base = unique_path("curator-keep");
    let service = CuratorService::new("greeter").base(&base);
    let session = Session::connect(
        SessionConfig::new(zk().connect_string()).session_timeout(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    let url = ProviderUrl::http("127.0.0.1", 4244).unwrap();
    let registration = Registration::register_curator(&session, &service, &url)
        .await
        .unwrap();
    let node = registration.node_path().unwrap();
    let id = node.rsplit('/').next().unwrap().to_owned();
    assert_eq!(node, format!("{base}/greeter/{id}"));
    let raw = raw_client(&zk().connect_string()).await;
    let (data, stat) = raw.get_data(&node).await.unwrap();
    assert_eq!(stat.ephemeral_owner, session.session_id());
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["id"], id.as_str());
    let watcher = Session::connect_to(&zk().connect_string()).await.unwrap();
    let discovery = Discovery::watch_curator(&watcher, &service).await.unwrap();
    let listed = discovery.providers();
    assert_eq!(listed.len(), 1);
    assert_eq!((&*listed[0].name, &listed[0].url), (id.as_str(), &url));

    // Expiry: the same node, the same data, the new session's.
    let old = session.session_id();
    zoorpc_testkit::expire_session(&zk().connect_string(), session.client().session().clone())
        .await
        .unwrap();
    node_becomes(&raw, &node, "re-created in the new session", |d, s| {
        d == data && s.ephemeral_owner != old && s.ephemeral_owner != 0
    })
    .await;
    assert_eq!(
        raw.get_data(&node).await.unwrap().1.ephemeral_owner,
        session.session_id()
    );

    // An operator's `set` is written back; an operator's delete is repaired.
    raw.set_data(&node, b"garbage", None).await.unwrap();
    node_becomes(&raw, &node, "our JSON written back", |d, _| d == data).await;
    raw.delete(&node, None).await.unwrap();
    node_becomes(&raw, &node, "re-created after a delete", |d, _| d == data).await;
    let mut snapshots = discovery.subscribe();
    let expected = &url;
    common::eventually("discovery lists it again", Duration::from_secs(5), || {
        let now = snapshots.borrow_and_update().clone();
        async move {
            match now.first() {
                Some(p) if now.len() == 1 && p.url == *expected => Ok(()),
                _ => Err(now),
            }
        }
    })
    .await;

    registration.deregister().await.unwrap();
    assert_eq!(raw.check_stat(&node).await.unwrap(), None);
}

/// The weight of an instance with Spring's metadata, set there by an operator
/// (`weight::set_weight`), is kept: written back with it after someone else's `set`,
/// re-created with it after an expiry, and called with it. Without Spring's metadata (a `null`
/// payload) there is nowhere to put one: refused, saying what to do, the node unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_set_in_spring_metadata_is_kept_and_a_null_payload_refuses_one() {
    let base = unique_path("curator-weight");
    let spring = CuratorService::new("greeter")
        .base(&base)
        .payload(CuratorPayload::SpringCloud);
    let session = Session::connect(
        SessionConfig::new(zk().connect_string()).session_timeout(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    let url: ProviderUrl = "http://127.0.0.1:4245?weight=100".parse().unwrap();
    let registration = Registration::register_curator(&session, &spring, &url)
        .await
        .unwrap();
    let node = registration.node_path().unwrap();
    let operator = Session::connect_to(&zk().connect_string()).await.unwrap();
    let set = weight::set_weight(&operator, &node, 7).await.unwrap();
    assert_eq!(set.as_str(), "http://127.0.0.1:4245?weight=7");
    let weight_of = |data: &[u8]| -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(data).ok()?;
        Some(json["payload"]["metadata"]["weight"].as_str()?.to_owned())
    };
    let raw = raw_client(&zk().connect_string()).await;
    let (reweighted, _) = raw.get_data(&node).await.unwrap();
    assert_eq!(weight_of(&reweighted).as_deref(), Some("7"));

    raw.set_data(&node, b"garbage", None).await.unwrap();
    node_becomes(&raw, &node, "written back with weight 7", |d, _| {
        d == reweighted
    })
    .await;
    let old = session.session_id();
    zoorpc_testkit::expire_session(&zk().connect_string(), session.client().session().clone())
        .await
        .unwrap();
    node_becomes(&raw, &node, "re-created with weight 7", |d, s| {
        d == reweighted && s.ephemeral_owner != old && s.ephemeral_owner != 0
    })
    .await;
    let discovery = Discovery::watch_curator(&operator, &spring).await.unwrap();
    let listed = discovery.providers();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].url, set);

    let plain = CuratorService::new("plain").base(&base);
    let other = Registration::register_curator(&session, &plain, &url)
        .await
        .unwrap();
    let plain_node = other.node_path().unwrap();
    let (before, _) = raw.get_data(&plain_node).await.unwrap();
    let refused = weight::set_weight(&operator, &plain_node, 7)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("--curator-payload spring-cloud"),
        "{refused}"
    );
    assert_eq!(raw.get_data(&plain_node).await.unwrap().0, before);
    other.deregister().await.unwrap();
    registration.deregister().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_reply_leaves_one_instance_node_and_a_credential_owns_it() {
    let base = unique_path("curator-lost");
    let connect = zk().connect_string();
    let proxy = ZkProxy::start(connect.parse().unwrap()).await.unwrap();
    let credential = ZkCredential::parse("curator-owner:s3cret").unwrap();
    let session = Session::connect(
        SessionConfig::new(proxy.addr().to_string())
            .session_timeout(Duration::from_millis(1500))
            .credential(Some(credential)),
    )
    .await
    .unwrap();
    let id = session.session_id();
    let raw = raw_client(&connect).await;
    let service = CuratorService::new("greeter").base(&base);
    // The parents first, so that the create whose reply is lost is the instance's.
    let url = ProviderUrl::http("127.0.0.1", 4245).unwrap();
    Registration::register_curator(&session, &service, &url)
        .await
        .unwrap()
        .deregister()
        .await
        .unwrap();
    proxy.lose_reply_to_next(Request::Create);
    let registration = tokio::time::timeout(
        Duration::from_secs(10),
        Registration::register_curator(&session, &service, &url),
    )
    .await
    .expect("register returns after the reconnect")
    .unwrap();
    assert_eq!(proxy.lost_replies(), 1, "the create's reply was not lost");
    assert_eq!(session.session_id(), id, "the session was replaced");
    let children = raw.list_children(&format!("{base}/greeter")).await.unwrap();
    assert_eq!(children.len(), 1, "one instance, one node: {children:?}");
    let node = registration.node_path().unwrap();
    assert_eq!(node, format!("{base}/greeter/{}", children[0]));

    // Readable by anyone, changed only by its owner.
    let (data, stat) = raw.get_data(&node).await.unwrap();
    assert_eq!(stat.ephemeral_owner, id);
    assert!(matches!(
        raw.set_data(&node, b"garbage", None).await,
        Err(zkc::Error::NoAuth)
    ));
    assert!(matches!(
        raw.delete(&node, None).await,
        Err(zkc::Error::NoAuth)
    ));
    assert_eq!(raw.get_data(&node).await.unwrap().0, data);
    registration.deregister().await.unwrap();
    assert_eq!(raw.check_stat(&node).await.unwrap(), None);
}
