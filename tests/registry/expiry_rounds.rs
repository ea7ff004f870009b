//! Forced session expiries of a provider, 100 in a soak run (`ZOORPC_SOAK=1`, `make soak`) and
//! 10 in `make test`: after each, the provider is registered again, in its new session, exactly
//! once, at its URL, and a consumer following the registry sees the new node; after the last,
//! calls reach it.
//!
//! Each expiry is forced as the other expiry tests do: a second client joins the provider's
//! session (same id and password) and closes it, so ZooKeeper ends the session at once.

use crate::common;

use std::time::Duration;

use common::{raw_client, soak_count, zk};
use zoorpc::consumer::{Consumer, ConsumerConfig};
use zoorpc::provider::ProviderConfig;
use zoorpc::registry::{Discovery, ProviderNode, Session};
use zoorpc_testkit::{expire_session, unique_path};

/// Longest a re-registration may take: a new session and one create, on a loaded machine.
const REGISTERED_AGAIN: Duration = Duration::from_secs(10);

/// Waits until discovery lists exactly one node, other than `old`; returns it.
async fn next_node(discovery: &Discovery, old: &ProviderNode, round: usize) -> ProviderNode {
    let mut snapshots = discovery.subscribe();
    let waited = tokio::time::timeout(REGISTERED_AGAIN, async {
        loop {
            let list = snapshots.borrow_and_update().clone();
            if let [only] = &list[..]
                && only != old
            {
                return only.clone();
            }
            if snapshots.changed().await.is_err() {
                panic!("discovery stopped in round {round}");
            }
        }
    })
    .await;
    match waited {
        Ok(node) => node,
        Err(_) => panic!(
            "round {round}: not registered again within {REGISTERED_AGAIN:?} after its session expired; the registry lists {:?}",
            discovery.providers()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_registered_again_after_each_of_a_series_of_forced_session_expiries() {
    let rounds = soak_count(100, 10);
    let connect = zk().connect_string();
    let base = unique_path("expiry-rounds");
    let config =
        ProviderConfig::new(&connect, &base, 0).session_timeout(Duration::from_millis(1500));
    let provider = zoorpc::apps::hello::serve(config).await.unwrap();
    let watcher = Session::connect_to(&connect).await.unwrap();
    let discovery = Discovery::watch(&watcher, &base).await.unwrap();
    let raw = raw_client(&connect).await;

    let mut node = discovery
        .providers()
        .first()
        .cloned()
        .expect("the provider is registered once started");
    let mut sessions = vec![provider.session().session_id()];
    for round in 1..=rounds {
        let expired = provider.session().client().session().clone();
        expire_session(&connect, expired)
            .await
            .unwrap_or_else(|e| panic!("round {round}: cannot expire the session: {e}"));
        let next = next_node(&discovery, &node, round).await;
        assert_eq!(
            next.url,
            *provider.url(),
            "round {round}: registered at another URL"
        );
        // The node is owned by the provider's new session (not a leftover of the old one).
        let path = format!("{base}/{}", next.name);
        let (data, stat) = match raw.get_data(&path).await {
            Ok(found) => found,
            Err(e) => panic!("round {round}: {path} is listed but cannot be read: {e}"),
        };
        assert_eq!(data, provider.url().as_str().as_bytes(), "round {round}");
        assert!(
            !sessions.contains(&stat.ephemeral_owner),
            "round {round}: the node belongs to an expired session {:#x}",
            stat.ephemeral_owner
        );
        sessions.push(stat.ephemeral_owner);
        node = next;
    }
    assert_eq!(sessions.len(), rounds + 1);
    assert_eq!(raw.list_children(&base).await.unwrap().len(), 1);

    // A consumer started now finds it and its calls are answered.
    let consumer = Consumer::connect_with(ConsumerConfig::new(&connect, &base))
        .await
        .unwrap();
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |urls| urls.len() == 1)
            .await
    );
    let answer = consumer.say_hello("after the expiries").await.unwrap();
    assert_eq!(answer.url, *provider.url());
    provider.shutdown().await.unwrap();
}
