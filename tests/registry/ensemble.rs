//! ZooKeeper members dying: a 3-member ensemble on loopback; each member in turn is killed
//! (SIGKILL) and restarted while a provider serves a steady call loop and two contenders hold an
//! election. Clients move to a surviving member within their session, so nothing is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use zoorpc::consumer::Consumer;
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc::registry::{LinkState, MasterElection, Role, Session, SessionConfig};
use zoorpc_testkit::{ZkEnsemble, unique_path};

/// Long enough that a client reconnects to another member before its session could expire.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
const SETTLE: Duration = Duration::from_secs(10);

async fn session(connect: &str) -> Session {
    Session::connect(SessionConfig::new(connect).session_timeout(SESSION_TIMEOUT))
        .await
        .expect("session")
}

async fn provider(connect: &str, base: &str) -> Provider {
    let config = ProviderConfig::new(connect, base, 0)
        .session_timeout(SESSION_TIMEOUT)
        .drain_grace(Duration::from_millis(50));
    zoorpc::apps::hello::serve(config)
        .await
        .expect("provider starts")
}

/// Counts the times `session` lost its connection (its link went `Disconnected`).
fn count_disconnects(session: &Session) -> watch::Receiver<u32> {
    let mut status = session.subscribe();
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        let mut was_connected = true;
        while status.changed().await.is_ok() {
            let connected = status.borrow_and_update().state == LinkState::Connected;
            if was_connected && !connected {
                tx.send_modify(|n| *n += 1);
            }
            was_connected = connected;
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_each_member_in_turn_loses_no_call_no_node_and_no_mastership() {
    let mut ensemble = ZkEnsemble::start(3).expect("ensemble starts");
    let connect = ensemble.connect_string();
    let base = unique_path("ensemble");
    let path = unique_path("ensemble-master");

    let p = provider(&connect, &base).await;
    let node = p.node_path().expect("registered");
    let consumer = Arc::new(Consumer::connect(&connect, &base).await.unwrap());
    assert!(
        consumer
            .wait_until(SETTLE, |urls| urls.contains(p.url()))
            .await
    );
    let a_session = session(&connect).await;
    let a = MasterElection::join(&a_session, &path, "127.0.0.1:42001")
        .await
        .unwrap();
    let epoch = match a.wait_for(SETTLE, Role::is_master).await {
        Some(Role::Master { epoch }) => epoch,
        other => panic!("a is not master: {other:?}"),
    };
    let b_session = session(&connect).await;
    let b = MasterElection::join(&b_session, &path, "127.0.0.1:42002")
        .await
        .unwrap();
    let standby = Role::Standby {
        master: "127.0.0.1:42001".into(),
    };
    assert!(b.wait_for(SETTLE, |r| *r == standby).await.is_some());
    let mut a_roles = a.changes();
    let disconnects: Vec<_> = [
        p.session(),
        consumer.session().expect("connected"),
        &a_session,
        &b_session,
    ]
    .into_iter()
    .map(count_disconnects)
    .collect();

    // A steady call loop through all of it.
    let (stop_tx, mut stop) = watch::channel(false);
    let calls = tokio::spawn({
        let consumer = consumer.clone();
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !*stop.borrow_and_update() {
                match consumer.say_hello("ensemble").await {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
                let _ = tokio::time::timeout(Duration::from_millis(20), stop.changed()).await;
            }
            (ok, failed)
        }
    });

    let mut leaders_killed = 0;
    for victim in 0..ensemble.size() {
        if ensemble.leader() == Some(victim) {
            leaders_killed += 1;
        }
        // The harness blocks while a JVM stops or starts: keep it off the runtime's workers.
        tokio::task::block_in_place(|| ensemble.member(victim).kill());

        // The ensemble still works for everyone: a newcomer registers and is discovered.
        let newcomer = provider(&connect, &base).await;
        assert!(
            consumer
                .wait_until(SETTLE, |urls| urls.contains(newcomer.url()))
                .await,
            "member {victim} down: a new provider is not discovered"
        );
        newcomer.shutdown().await.unwrap();
        assert!(
            consumer
                .wait_until(SETTLE, |urls| urls == [p.url().clone()])
                .await,
            "member {victim} down: the list does not settle back to the first provider"
        );

        // The first provider kept its node and session; the master kept its mastership.
        assert_eq!(p.node_path().as_deref(), Some(node.as_str()));
        assert_eq!(
            p.session().status().generation,
            0,
            "provider session expired"
        );
        assert_eq!(
            a.wait_for(SETTLE, Role::is_master).await,
            Some(Role::Master { epoch }),
            "member {victim} down: a is not master with its epoch"
        );
        assert!(
            b.wait_for(SETTLE, |r| *r == standby).await.is_some(),
            "member {victim} down: b is {}",
            b.role()
        );
        assert_eq!(a_session.status().generation, 0);
        assert_eq!(b_session.status().generation, 0);

        tokio::task::block_in_place(|| ensemble.member(victim).restart()).expect("member rejoins");
    }

    stop_tx.send_replace(true);
    let (ok, failed) = calls.await.unwrap();
    assert!(failed.is_empty(), "failed calls: {failed:?}");
    assert!(ok > 0);
    assert!(
        leaders_killed >= 1,
        "no leader was among the killed members"
    );
    // Every member died once, so every client lost its member at some point and moved on to
    // another (a quick reconnect can hide from a watch, so only the sum is certain to show).
    let roles: Vec<Role> = std::iter::from_fn(|| a_roles.try_next())
        .map(|c| c.role)
        .collect();
    let seen: u32 = disconnects.iter().map(|count| *count.borrow()).sum::<u32>()
        + roles.iter().filter(|r| **r == Role::Disconnected).count() as u32;
    assert!(seen >= 1, "no client ever lost its member");
    assert!(
        roles
            .iter()
            .all(|r| matches!(r, Role::Master { epoch: e } if *e == epoch)
                || *r == Role::Disconnected),
        "a was something else than master with its epoch or disconnected: {roles:?}"
    );
    p.shutdown().await.unwrap();
}
