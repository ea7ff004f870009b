//! Faults: a session expiry, a connection loss, a lost takeover reply, an operator's delete of the master node.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_deposes_the_master_and_its_fenced_write_fails() {
    let path = unique_path("expiry");
    let connect = zk().connect_string();
    let a = Contender::join(&connect, &path, &address(0)).await;
    let first = a.wait_master(SETTLE).await;
    let b = Contender::join(&connect, &path, &address(1)).await;
    b.wait_standby_of(a.address(), SETTLE).await;
    let fence = a.election.fence().expect("a is master");
    let record = format!("{path}.jobs/manual");
    fence
        .write(&a.session, &record, b"by a")
        .await
        .expect("the master's fenced write commits");
    let mut a_changes = a.election.changes();
    let b_changes = b.election.changes();

    expire_session(&connect, a.session.client().session().clone())
        .await
        .unwrap();

    // B takes over, or A in its new session if it rejoins first (a fair race after an
    // expiry): either way under a larger epoch, the other standing by for it.
    let (second, new_master, standby, mut new_changes) = tokio::select! {
        epoch = b.wait_master(SETTLE) => (epoch, &b, &a, b_changes),
        epoch = a.wait_master_again(first, SETTLE) => (epoch, &a, &b, a.election.changes()),
    };
    assert!(second > first, "epoch {second} <= {first}");
    standby.wait_standby_of(new_master.address(), SETTLE).await;
    assert_ne!(a.session.status().generation, 0);

    // A stepped down before anyone took over.
    let a_left = std::iter::from_fn(|| a_changes.try_next())
        .find(|c| !c.role.is_master())
        .expect("a reported not-master");
    if std::ptr::eq(new_master, &b) {
        let b_took = std::iter::from_fn(|| new_changes.try_next())
            .find(|c| c.role.is_master())
            .expect("b reported master");
        assert!(a_left.at <= b_took.at, "{a_left:?} after {b_took:?}");
    } else {
        let a_again = std::iter::from_fn(|| a_changes.try_next())
            .find(|c| c.role.is_master())
            .expect("a reported master again");
        assert!(a_left.at <= a_again.at, "{a_left:?} after {a_again:?}");
        drop(new_changes);
    }

    // A's write with its old fence is refused, whichever session carries it.
    let err = fence
        .write(&a.session, &record, b"stale")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Fenced { epoch, .. } if epoch == first),
        "{err}"
    );
    let err = fence
        .write(&b.session, &record, b"stale")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err}");
    assert!(!fence.is_current(&a.session).await.unwrap());
    let new_fence = new_master.election.fence().unwrap();
    new_fence
        .write(&new_master.session, &record, b"by the new master")
        .await
        .unwrap();
    let raw = raw_client(&connect).await;
    assert_eq!(raw.get_data(&record).await.unwrap().0, b"by the new master");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_loss_steps_down_at_once_and_the_same_session_is_master_again() {
    let mut server = ZkServer::start().expect("own ZooKeeper");
    let connect = server.connect_string();
    let path = unique_path("link");
    // Long enough for the server to come back before the sessions expire.
    let timeout = Duration::from_secs(8);
    let a_session = session(&connect, timeout).await;
    let a = MasterElection::join(&a_session, &path, &address(0))
        .await
        .unwrap();
    let epoch = a.role().epoch().expect("first is master");
    let b_session = session(&connect, timeout).await;
    let b = MasterElection::join(&b_session, &path, &address(1))
        .await
        .unwrap();
    assert_eq!(b.role(), Role::Standby { master: address(0) });

    server.kill();
    let killed = Instant::now();
    assert_eq!(
        a.wait_for(Duration::from_secs(2), |r| *r == Role::Disconnected)
            .await,
        Some(Role::Disconnected),
        "the master did not step down when the connection dropped"
    );
    assert!(!a.is_master());
    assert!(
        killed.elapsed() < timeout / 2,
        "stepped down only after {:?}",
        killed.elapsed()
    );

    server.restart().expect("restart");
    assert_eq!(
        a.wait_for(Duration::from_secs(6), Role::is_master).await,
        Some(Role::Master { epoch }),
        "not master again in the same session"
    );
    assert_eq!(a_session.status().generation, 0, "the session was replaced");
    assert!(
        b.wait_for(Duration::from_secs(6), |r| *r
            == Role::Standby { master: address(0) })
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_whose_reply_is_lost_is_resolved_by_the_nodes_owner() {
    let path = unique_path("lost-reply");
    let connect = zk().connect_string();
    let a = Contender::join(&connect, &path, &address(0)).await;
    a.wait_master(SETTLE).await;
    // B talks to ZooKeeper through a proxy that will swallow the reply to its takeover.
    let proxy = ZkProxy::start(connect.parse().unwrap()).await.unwrap();
    let b_session = session(&proxy.addr().to_string(), SESSION_TIMEOUT).await;
    let b = MasterElection::join(&b_session, &path, &address(1))
        .await
        .unwrap();
    assert_eq!(b.role(), Role::Standby { master: address(0) });
    let mut b_changes = b.changes();
    proxy.lose_reply_to_next(Request::Multi);

    a.election.resign().await.unwrap();

    // B's create went through but it never heard so: it times out, reconnects in the same
    // session, reads the node, finds itself the owner, and is master.
    let epoch = match b.wait_for(SETTLE, Role::is_master).await {
        Some(Role::Master { epoch }) => epoch,
        other => panic!("b is not master: {other:?} (now {})", b.role()),
    };
    assert_eq!(proxy.lost_replies(), 1, "the takeover's reply was not lost");
    assert_eq!(b_session.status().generation, 0, "the session was replaced");
    let roles: Vec<Role> = std::iter::from_fn(|| b_changes.try_next())
        .map(|c| c.role)
        .collect();
    assert!(
        !roles.contains(&Role::Standby { master: address(1) }),
        "b stood by for itself: {roles:?}"
    );
    let raw = raw_client(&connect).await;
    let (data, stat) = raw.get_data(&path).await.unwrap();
    assert_eq!(data, address(1).as_bytes());
    assert_eq!(stat.ephemeral_owner, b_session.session_id());
    assert_eq!(stat.czxid, epoch);
    let (_, marker) = raw.get_data(&companion_path(&path)).await.unwrap();
    assert_eq!(marker.mzxid, epoch);
}

/// Rounds alternate: an operator deletes the master node (its holder, alive, takes it back: the
/// others wait for it to step down), or designates an address nobody has (the holder hands
/// over; after the grace all three race for the node: exactly one wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_externally_deleted_master_node_never_makes_two_masters_at_once() {
    let path = unique_path("deleted");
    let connect = zk().connect_string();
    let mut contenders = Vec::new();
    let quick = ElectionOptions {
        handover_grace: Duration::from_millis(50),
        ..ElectionOptions::default()
    };
    for i in 0..3 {
        contenders.push(Contender::join_with(&connect, &path, &address(i), quick.clone()).await);
    }
    let mut changes: Vec<_> = contenders.iter().map(|c| c.election.changes()).collect();
    let raw = raw_client(&connect).await;
    let mut epochs = Vec::new();
    for round in 0..100 {
        // The current holder, as ZooKeeper has it, once its contender reports it.
        let (holder, czxid) = loop {
            match raw.get_data(&path).await {
                Ok((data, stat)) => break (String::from_utf8(data).unwrap(), stat.czxid),
                Err(zookeeper_client::Error::NoNode) => tokio::task::yield_now().await,
                Err(e) => panic!("round {round}: read {path}: {e}"),
            }
        };
        let master = contenders
            .iter()
            .find(|c| c.address() == holder)
            .expect("the holder is a contender");
        master.wait_master(SETTLE).await;
        if round % 2 == 0 {
            // `zkCli.sh delete <path>`.
            match raw.delete(&path, None).await {
                Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
                Err(e) => panic!("round {round}: delete {path}: {e}"),
            }
        } else {
            designate(&master.session, &path, "127.0.0.1:1")
                .await
                .unwrap_or_else(|e| panic!("round {round}: designate nobody: {e}"));
        }
        // Someone reports master with a newer epoch.
        wait_any_master_after(&contenders, czxid)
            .await
            .unwrap_or_else(|| panic!("round {round}: nobody took the node back"));
        epochs.push(czxid);
    }
    let end = Instant::now();
    let all: Vec<Vec<_>> = changes
        .iter_mut()
        .map(|c| std::iter::from_fn(|| c.try_next()).collect())
        .collect();
    let intervals: Vec<Vec<(Instant, Instant)>> =
        all.iter().map(|c| master_intervals(c, end)).collect();
    let mut overlaps = Vec::new();
    for (i, mine) in intervals.iter().enumerate() {
        for theirs in intervals.iter().skip(i + 1) {
            for &(a0, a1) in mine {
                for &(b0, b1) in theirs {
                    if a0 < b1 && b0 < a1 {
                        overlaps.push(a1.min(b1) - a0.max(b0));
                    }
                }
            }
        }
    }
    assert!(
        overlaps.is_empty(),
        "two masters at once {} times over 100 deletions: {overlaps:?}",
        overlaps.len()
    );
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    // Every epoch was won by exactly one contender.
    let mut winners: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, changes) in all.iter().enumerate() {
        for epoch in changes.iter().filter_map(|c| c.role.epoch()) {
            let won = winners.entry(epoch).or_default();
            if !won.contains(&i) {
                won.push(i);
            }
        }
    }
    assert!(winners.len() >= 100, "only {} epochs", winners.len());
    let shared: Vec<_> = winners.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(
        shared.is_empty(),
        "epochs won by several contenders: {shared:?}"
    );
    // Whoever held a deleted node reported a non-master role before it took the node back.
    for changes in &all {
        for pair in changes.windows(2) {
            assert!(
                !(pair[0].role.is_master() && pair[1].role.is_master()),
                "master again without stepping down first: {pair:?}"
            );
        }
    }
}
