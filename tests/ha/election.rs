//! Master election end to end, contenders in process (each with its own ZooKeeper session),
//! against a real ZooKeeper.

use crate::common;

use std::time::{Duration, Instant};

use common::{raw_client, zk};
use zoorpc::registry::election::companion_path;
use zoorpc::registry::{
    ElectionOptions, Error, MasterElection, MasterWatch, Role, Session, SessionConfig, designate,
};
use zoorpc_testkit::{Request, ZkProxy, ZkServer, expire_session, unique_path};

const SESSION_TIMEOUT: Duration = Duration::from_millis(1000);
const SETTLE: Duration = Duration::from_secs(3);

async fn session(connect: &str, timeout: Duration) -> Session {
    Session::connect(SessionConfig::new(connect).session_timeout(timeout))
        .await
        .expect("session")
}

struct Contender {
    session: Session,
    election: MasterElection,
}

impl Contender {
    async fn join(connect: &str, path: &str, address: &str) -> Contender {
        Contender::join_with(connect, path, address, ElectionOptions::default()).await
    }

    async fn join_with(
        connect: &str,
        path: &str,
        address: &str,
        options: ElectionOptions,
    ) -> Contender {
        let session = session(connect, SESSION_TIMEOUT).await;
        let election = MasterElection::join_with(&session, path, address, options)
            .await
            .expect("join");
        Contender { session, election }
    }

    fn address(&self) -> &str {
        self.election.address()
    }

    async fn wait_master(&self, timeout: Duration) -> i64 {
        match self.election.wait_for(timeout, Role::is_master).await {
            Some(Role::Master { epoch }) => epoch,
            other => panic!(
                "{} is not master within {timeout:?}: {other:?} (now {})",
                self.address(),
                self.election.role()
            ),
        }
    }

    /// Waits until this contender is master under an epoch after `previous`.
    async fn wait_master_again(&self, previous: i64, timeout: Duration) -> i64 {
        let again = |r: &Role| matches!(r, Role::Master { epoch } if *epoch > previous);
        match self.election.wait_for(timeout, again).await {
            Some(Role::Master { epoch }) => epoch,
            other => panic!(
                "{} is not master again within {timeout:?}: {other:?} (now {})",
                self.address(),
                self.election.role()
            ),
        }
    }

    async fn wait_standby_of(&self, master: &str, timeout: Duration) {
        let expected = Role::Standby {
            master: master.to_owned(),
        };
        assert!(
            self.election
                .wait_for(timeout, |r| *r == expected)
                .await
                .is_some(),
            "{} does not stand by for {master} within {timeout:?}; it is {}",
            self.address(),
            self.election.role()
        );
    }
}

fn address(i: usize) -> String {
    format!("127.0.0.1:{}", 41000 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_contenders_started_together_elect_exactly_one_master_the_others_name_it() {
    let path = unique_path("five");
    let connect = zk().connect_string();
    let joins: Vec<_> = (0..5)
        .map(|i| {
            let (connect, path) = (connect.clone(), path.clone());
            tokio::spawn(async move { Contender::join(&connect, &path, &address(i)).await })
        })
        .collect();
    let mut contenders = Vec::new();
    for join in joins {
        contenders.push(join.await.unwrap());
    }

    // Exactly one reports master; wait until every other one names it.
    let masters: Vec<&Contender> = contenders
        .iter()
        .filter(|c| c.election.is_master())
        .collect();
    assert_eq!(
        masters.len(),
        1,
        "roles: {:?}",
        contenders
            .iter()
            .map(|c| c.election.role())
            .collect::<Vec<_>>()
    );
    let master = masters[0].address().to_owned();
    for c in contenders.iter().filter(|c| c.address() != master) {
        c.wait_standby_of(&master, SETTLE).await;
    }
    assert_eq!(
        contenders.iter().filter(|c| c.election.is_master()).count(),
        1
    );

    // What zkCli.sh shows: an ephemeral node holding the master's address, owned by its session.
    let raw = raw_client(&connect).await;
    let (data, stat) = raw.get_data(&path).await.unwrap();
    assert_eq!(String::from_utf8(data).unwrap(), master);
    let holder = contenders.iter().find(|c| c.address() == master).unwrap();
    assert_eq!(stat.ephemeral_owner, holder.session.session_id());
    assert_eq!(holder.election.role(), Role::Master { epoch: stat.czxid });
    // The companion's mzxid is the epoch.
    let (_, marker) = raw.get_data(&companion_path(&path)).await.unwrap();
    assert_eq!(marker.mzxid, stat.czxid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_resign_makes_a_standby_master_within_100_ms() {
    let path = unique_path("resign");
    let connect = zk().connect_string();
    let a = Contender::join(&connect, &path, &address(0)).await;
    let first = a.wait_master(SETTLE).await;
    let b = Contender::join(&connect, &path, &address(1)).await;
    b.wait_standby_of(a.address(), SETTLE).await;
    let mut b_changes = b.election.changes();
    assert_eq!(
        b_changes.next().await.unwrap().role,
        Role::Standby {
            master: a.address().to_owned()
        }
    );

    let resigned = Instant::now();
    a.election.resign().await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(2), b_changes.next())
        .await
        .expect("b changes role")
        .unwrap();
    let took = change.at.duration_since(resigned);
    match change.role {
        Role::Master { epoch } => assert!(epoch > first, "epoch {epoch} <= {first}"),
        other => panic!("b became {other}, not master"),
    }
    assert!(
        took <= Duration::from_millis(100),
        "standby became master {took:?} after the resign"
    );
    let raw = raw_client(&connect).await;
    let (data, _) = raw.get_data(&path).await.unwrap();
    assert_eq!(data, b.address().as_bytes());
}

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

/// Waits until one of `contenders` reports master with an epoch above `epoch`; returns it.
async fn wait_any_master_after(contenders: &[Contender], epoch: i64) -> Option<i64> {
    let mut roles: Vec<_> = contenders.iter().map(|c| c.election.subscribe()).collect();
    tokio::time::timeout(SETTLE, async {
        loop {
            for r in roles.iter_mut() {
                if let Some(e) = r.borrow_and_update().epoch()
                    && e > epoch
                {
                    return e;
                }
            }
            let [a, b, c] = &mut roles[..] else {
                panic!("three contenders expected");
            };
            tokio::select! {
                _ = a.changed() => {}
                _ = b.changed() => {}
                _ = c.changed() => {}
            }
        }
    })
    .await
    .ok()
}

/// The intervals during which a contender was master, from its role changes (an interval still
/// open at the end is closed at `end`).
fn master_intervals(
    changes: &[zoorpc::registry::RoleChange],
    end: Instant,
) -> Vec<(Instant, Instant)> {
    let mut intervals = Vec::new();
    let mut since = None;
    for change in changes {
        match (change.role.is_master(), since) {
            (true, None) => since = Some(change.at),
            (false, Some(start)) => {
                intervals.push((start, change.at));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(start) = since {
        intervals.push((start, end));
    }
    intervals
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_companion_is_repaired_under_a_new_epoch_and_fenced_writes_work_again() {
    let path = unique_path("tampered");
    let marker = companion_path(&path);
    let record = format!("{path}.jobs/manual");
    let connect = zk().connect_string();
    let a = Contender::join(&connect, &path, &address(0)).await;
    let mut epoch = a.wait_master(SETTLE).await;
    let b = Contender::join(&connect, &path, &address(1)).await;
    b.wait_standby_of(a.address(), SETTLE).await;
    let mut b_changes = b.election.changes();
    let raw = raw_client(&connect).await;

    // Deleted; recreated by hand (one transaction); set by hand.
    for tamper in ["delete", "recreate", "set"] {
        let old_fence = a.election.fence().expect("a is master");
        match tamper {
            "delete" => raw.delete(&marker, None).await.unwrap(),
            "recreate" => {
                let mut writer = raw.new_multi_writer();
                writer.add_delete(&marker, None).unwrap();
                writer
                    .add_create(
                        &marker,
                        b"",
                        &zookeeper_client::CreateMode::Persistent
                            .with_acls(zookeeper_client::Acls::anyone_all()),
                    )
                    .unwrap();
                writer.commit().await.unwrap();
            }
            _ => {
                raw.set_data(&marker, b"", None).await.unwrap();
            }
        }
        // A repairs the companion and is master under a new, larger epoch: its mzxid.
        let repaired = match a
            .election
            .wait_for(SETTLE, |r| r.epoch() > Some(epoch))
            .await
        {
            Some(Role::Master { epoch }) => epoch,
            other => panic!("{tamper}: a did not repair the companion: {other:?}"),
        };
        let (_, stat) = raw.get_data(&marker).await.unwrap();
        assert_eq!(stat.mzxid, repaired, "{tamper}");
        // The new fence writes; the old one is refused.
        let fence = a.election.fence().unwrap();
        fence
            .write(&a.session, &record, tamper.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{tamper}: the repaired master's write failed: {e}"));
        let err = old_fence
            .write(&a.session, &record, b"stale")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Fenced { .. }), "{tamper}: {err}");
        epoch = repaired;
    }
    // The node is still A's, and B never took over.
    let (data, _) = raw.get_data(&path).await.unwrap();
    assert_eq!(data, a.address().as_bytes());
    while let Some(change) = b_changes.try_next() {
        assert!(!change.role.is_master(), "b became master: {change:?}");
    }
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
