//! Designation by data: mastership moves, a designee nobody has, the companion deleted.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn designation_by_data_moves_mastership_and_the_master_watch_reports_it() {
    let path = unique_path("designate");
    let connect = zk().connect_string();
    let a = Contender::join(&connect, &path, &address(0)).await;
    let first = a.wait_master(SETTLE).await;
    let b = Contender::join(&connect, &path, &address(1)).await;
    let c = Contender::join(&connect, &path, &address(2)).await;
    b.wait_standby_of(a.address(), SETTLE).await;
    c.wait_standby_of(a.address(), SETTLE).await;
    let client_session = session(&connect, SESSION_TIMEOUT).await;
    let watch = MasterWatch::follow(&client_session, &path).await.unwrap();
    assert_eq!(watch.master().as_deref(), Some(a.address()));
    let mut c_changes = c.election.changes();
    let mut b_changes = b.election.changes();

    designate(&client_session, &path, b.address())
        .await
        .unwrap();

    let second = b.wait_master(SETTLE).await;
    // On the way, the designee never names itself as someone else's standby.
    while let Some(change) = b_changes.try_next() {
        assert_ne!(
            change.role,
            Role::Standby {
                master: b.address().to_owned()
            },
            "the designee was a standby of itself"
        );
    }
    assert!(second > first, "epoch {second} <= {first}");
    a.wait_standby_of(b.address(), SETTLE).await;
    c.wait_standby_of(b.address(), SETTLE).await;
    assert_eq!(
        watch
            .wait_for(SETTLE, |m| m.as_deref() == Some(b.address()))
            .await,
        Some(Some(b.address().to_owned()))
    );
    // C never took over on the way.
    while let Some(change) = c_changes.try_next() {
        assert!(!change.role.is_master(), "c became master: {change:?}");
    }
    // The node now belongs to B's session.
    let raw = raw_client(&connect).await;
    let (data, stat) = raw.get_data(&path).await.unwrap();
    assert_eq!(data, b.address().as_bytes());
    assert_eq!(stat.ephemeral_owner, b.session.session_id());

    // Designating the master itself changes nothing.
    designate(&client_session, &path, b.address())
        .await
        .unwrap();
    let (_, again) = raw.get_data(&path).await.unwrap();
    assert_eq!(again.czxid, stat.czxid);
    assert_eq!(b.election.role(), Role::Master { epoch: second });

    // Nobody to designate: a clear error.
    drop((a, b, c));
    let empty = unique_path("designate-none");
    let err = designate(&client_session, &empty, "127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMaster { .. }), "{err}");
    assert!(err.to_string().contains(&empty), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn designating_an_address_nobody_has_lets_the_others_run_again_after_the_grace() {
    let path = unique_path("designate-ghost");
    let connect = zk().connect_string();
    let a = Contender::join(&connect, &path, &address(0)).await;
    let first = a.wait_master(SETTLE).await;
    let b = Contender::join(&connect, &path, &address(1)).await;
    b.wait_standby_of(a.address(), SETTLE).await;

    let designated = Instant::now();
    designate(&a.session, &path, "127.0.0.1:1").await.unwrap();
    // Both stand by for the designee first.
    a.wait_standby_of("127.0.0.1:1", SETTLE).await;
    // After the grace (2 s by default) one of them takes over.
    let deadline = Duration::from_secs(5);
    let mut roles_a = a.election.subscribe();
    let mut roles_b = b.election.subscribe();
    tokio::time::timeout(deadline, async {
        loop {
            if roles_a.borrow_and_update().is_master() || roles_b.borrow_and_update().is_master() {
                return;
            }
            tokio::select! {
                _ = roles_a.changed() => {}
                _ = roles_b.changed() => {}
            }
        }
    })
    .await
    .expect("someone takes over after the grace");
    assert!(designated.elapsed() >= Duration::from_secs(2));
    let epoch = a
        .election
        .role()
        .epoch()
        .or(b.election.role().epoch())
        .unwrap();
    assert!(epoch > first);
    assert!(!(a.election.is_master() && b.election.is_master()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_designation_with_the_companion_deleted_reaches_the_designee_every_time() {
    let path = unique_path("designate-tampered");
    let marker = companion_path(&path);
    let connect = zk().connect_string();
    let mut contenders = Vec::new();
    for i in 0..3 {
        contenders.push(Contender::join(&connect, &path, &address(i)).await);
    }
    let raw = raw_client(&connect).await;
    for round in 0..8 {
        let (holder, _) = raw.get_data(&path).await.unwrap();
        let holder = String::from_utf8(holder).unwrap();
        let master = contenders
            .iter()
            .position(|c| c.address() == holder)
            .unwrap();
        contenders[master].wait_master(SETTLE).await;
        let designee = (master + 1 + round % 2) % 3;
        let other = 3 - master - designee;
        let mut other_changes = contenders[other].election.changes();
        // Pipelined: the companion is gone when the master learns of the designation.
        let deleted = raw.delete(&marker, None);
        let designated = raw.set_data(&path, contenders[designee].address().as_bytes(), None);
        deleted.await.unwrap();
        designated.await.unwrap();
        contenders[designee].wait_master(SETTLE).await;
        contenders[other]
            .wait_standby_of(contenders[designee].address(), SETTLE)
            .await;
        while let Some(change) = other_changes.try_next() {
            assert!(
                !change.role.is_master(),
                "round {round}: {} took over instead of the designee: {change:?}",
                contenders[other].address()
            );
        }
    }
}
