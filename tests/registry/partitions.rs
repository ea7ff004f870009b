//! Real network partitions between test hosts (network namespaces linked by a switch), as
//! Jepsen makes them: ZooKeeper in one host, providers, consumers and master contenders in
//! others, links cut and healed while calls go on. Needs root: without it each test prints
//! `skipped: <reason>` and returns.

use crate::common;
use crate::hosts;

use std::time::{Duration, Instant};

use common::eventually;
use common::ha_servers::parse_run;
use hosts::{
    CallLoop, Cluster, HostHaServer, SESSION_MS, block_on_bounded, consumer, has_exactly,
    providers_in_zk, spawn_provider, wait_answered_by, wait_for_exactly,
};
use zoorpc::registry::master_job::{read_record, record_path};
use zoorpc::registry::{Error, Fence, LinkState, Session, SessionConfig};
use zoorpc_testkit::unique_path;

/// A provider cut from ZooKeeper but still reachable by the consumer: its node goes when its
/// session expires (and the consumer stops using it), it registers again (a new node) once the
/// link heals and the consumer uses it again; no call fails meanwhile.
#[test]
fn a_provider_cut_from_zookeeper_loses_its_node_at_expiry_and_registers_again_on_heal() {
    let Some(cluster) = Cluster::start(&["p1", "p2", "c"]) else {
        return;
    };
    let base = unique_path("cut-provider");
    let connect = cluster.connect();
    let p1 = spawn_provider(Some(cluster.host("p1")), &connect, &base, SESSION_MS);
    let p2 = spawn_provider(Some(cluster.host("p2")), &connect, &base, SESSION_MS);

    cluster
        .host("c")
        .run(|| {
            block_on_bounded(async {
                let raw = zookeeper_client::Client::connect(&connect)
                    .await
                    .expect("a plain ZooKeeper client in the consumer's host");
                let consumer = consumer(&connect, &base).await;
                wait_for_exactly(&consumer, &[&p1.url, &p2.url], Duration::from_secs(10)).await;
                let calls = CallLoop::start(consumer.clone());

                cluster.cut_from_zk("p1");
                let cut = Instant::now();
                // ZooKeeper expires p1's session and deletes its node; p2's stays.
                eventually(
                    "p1's node deleted at expiry",
                    Duration::from_secs(15),
                    || async {
                        let nodes = providers_in_zk(&raw, &base).await.ok_or("no list")?;
                        match nodes.iter().any(|(path, _)| *path == p1.node) {
                            true => Err(format!("still there: {nodes:?}")),
                            false => Ok(()),
                        }
                    },
                )
                .await;
                let gone = Instant::now();
                let gone_after = gone - cut;
                assert!(
                    gone_after >= Duration::from_millis(SESSION_MS - 200),
                    "p1's node went {gone_after:?} after the cut, before its session could expire"
                );
                let nodes = providers_in_zk(&raw, &base).await.expect("list providers");
                assert!(nodes.iter().any(|(path, _)| *path == p2.node), "{nodes:?}");
                assert!(
                    consumer
                        .wait_until(Duration::from_secs(10), |u| has_exactly(u, &[&p2.url]))
                        .await,
                    "the consumer kept p1 after its node went: {:?}",
                    consumer.urls()
                );

                cluster.heal_with_zk("p1");
                let healed = Instant::now();
                let new_node =
                    eventually("p1 registered again", Duration::from_secs(20), || async {
                        let nodes = providers_in_zk(&raw, &base).await.ok_or("no list")?;
                        match nodes.iter().find(|(_, url)| *url == p1.url) {
                            Some((path, _)) => Ok(path.clone()),
                            None => Err(format!("not among {nodes:?}")),
                        }
                    })
                    .await;
                assert_ne!(new_node, p1.node, "p1's old node came back");
                assert!(
                    consumer
                        .wait_until(Duration::from_secs(10), |u| has_exactly(
                            u,
                            &[&p1.url, &p2.url]
                        ))
                        .await,
                    "the consumer did not follow p1's new node: {:?}",
                    consumer.urls()
                );
                // Calls reach p1 again.
                wait_answered_by("calls reach p1 after the heal", &consumer, &p1.url).await;
                let calls = calls.stop().await;
                calls.assert_none_failed();
                // Cut from ZooKeeper, p1 still served the consumer until its node went.
                let p1_while_cut = calls
                    .log
                    .iter()
                    .filter(|(at, url)| *at > cut && *at < gone && *url == p1.url)
                    .count();
                assert!(
                    p1_while_cut > 0,
                    "p1 answered nothing between the cut and its expiry: {:?}",
                    calls.answers
                );
                let during: Vec<&String> = calls
                    .log
                    .iter()
                    .filter(|(at, _)| *at > cut && *at < healed)
                    .map(|(_, url)| url)
                    .collect();
                assert!(
                    during.len() > 50,
                    "only {} calls during the cut",
                    during.len()
                );
            })
        })
        .expect("run in the consumer's host");
}

/// A consumer cut from ZooKeeper keeps calling on its last list, and once the link heals
/// follows what changed meanwhile: a provider that registered during the cut is used, one that
/// left is dropped.
#[test]
fn a_consumer_cut_from_zookeeper_keeps_its_last_list_and_follows_again_on_heal() {
    let Some(cluster) = Cluster::start(&["p1", "p2", "p3", "c"]) else {
        return;
    };
    let base = unique_path("cut-consumer");
    let connect = cluster.connect();
    let p1 = spawn_provider(Some(cluster.host("p1")), &connect, &base, SESSION_MS);
    let mut p2 = spawn_provider(Some(cluster.host("p2")), &connect, &base, SESSION_MS);

    cluster
        .host("c")
        .run(|| {
            block_on_bounded(async {
                let consumer = consumer(&connect, &base).await;
                wait_for_exactly(&consumer, &[&p1.url, &p2.url], Duration::from_secs(10)).await;
                let session = consumer.session().expect("a live consumer").clone();
                let mut status = session.subscribe();
                let generation = status.borrow().generation;
                let calls = CallLoop::start(consumer.clone());

                cluster.cut_from_zk("c");
                // The consumer's client declares the silent link lost.
                tokio::time::timeout(
                    Duration::from_secs(10),
                    status.wait_for(|s| s.state != LinkState::Connected),
                )
                .await
                .expect("the consumer never noticed the cut")
                .expect("the session is alive");

                // Meanwhile p3 registers and p2 leaves; the consumer cannot hear of either.
                let p3 = spawn_provider(Some(cluster.host("p3")), &connect, &base, SESSION_MS);
                p2.process.signal(libc::SIGTERM).expect("SIGTERM p2");
                p2.process
                    .wait_for_line("deregistered ", Duration::from_secs(10))
                    .expect("p2 deregisters");
                p2.process
                    .wait_exit(Duration::from_secs(10))
                    .expect("p2 exits");
                // For one session timeout more (ZooKeeper expires the consumer's session meanwhile;
                // the generation check after the heal shows it did), the consumer holds the list
                // it had and every call is answered, by p1 since p2 is gone.
                let window = Instant::now() + Duration::from_millis(SESSION_MS);
                while Instant::now() < window {
                    assert!(
                        has_exactly(&consumer.urls(), &[&p1.url, &p2.url]),
                        "the consumer changed its list while cut off: {:?}",
                        consumer.urls()
                    );
                    let answer = consumer
                        .say_hello("cut")
                        .await
                        .expect("a call while cut off");
                    assert_eq!(answer.url.to_string(), p1.url, "p2 is gone, p1 answers");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }

                cluster.heal_with_zk("c");
                assert!(
                    consumer
                        .wait_until(Duration::from_secs(20), |u| has_exactly(
                            u,
                            &[&p1.url, &p3.url]
                        ))
                        .await,
                    "after the heal the consumer did not follow ZooKeeper: {:?}",
                    consumer.urls()
                );
                let now = consumer.session().expect("live").status();
                assert!(
                    now.generation > generation,
                    "the expired session was not replaced (generation {} -> {})",
                    generation,
                    now.generation
                );
                wait_answered_by("calls reach p3", &consumer, &p3.url).await;
                let calls = calls.stop().await;
                calls.assert_none_failed();
                assert!(calls.log.len() > 100, "only {} calls", calls.log.len());
            })
        })
        .expect("run in the consumer's host");
}

/// The master cut from every member of a 3-member ensemble (each member in its own host) steps
/// down (its client declares the silent link lost after 3/5 of the session timeout) before the
/// ensemble expires its session and lets the standby take over; no two masters run the job in
/// one epoch, and the old master's fenced write fails.
#[test]
fn a_master_cut_from_zookeeper_steps_down_before_the_standby_takes_over_and_is_fenced() {
    let Some(cluster) = Cluster::start_ensemble(&["a", "b"]) else {
        return;
    };
    let path = unique_path("cut-master");
    let connect = cluster.connect();
    let session_ms = 2000;
    let mut a = HostHaServer::spawn(cluster.host("a"), &connect, &path, session_ms);
    let first = a.wait_master(Duration::from_secs(10));
    a.next_line(&format!("run epoch={first} seq=3"), Duration::from_secs(10))
        .expect("the master runs its job");
    let mut b = HostHaServer::spawn(cluster.host("b"), &connect, &path, session_ms);
    b.wait_standby_of(&a.address, Duration::from_secs(10));

    cluster.cut_from_zk("a");
    let role = a.next_role(Duration::from_secs(10));
    assert!(!role.starts_with("master"), "A said {role:?} after the cut");
    // Everything B printed until now: it has not taken over yet.
    let b_before = b.lines();
    assert!(
        !b_before.iter().any(|l| l.starts_with("role master")),
        "B took over before A stepped down ({role:?}): {b_before:?}"
    );
    // A's lines from here on were printed after it stepped down.
    let a_stepped_down = a.cursor();
    let second = b.wait_master(Duration::from_secs(15));
    assert!(second > first, "epoch {second} <= {first}");
    let b_first = b
        .next_line(&format!("run epoch={second} seq="), Duration::from_secs(10))
        .expect("the new master runs the job");
    let (_, b_first_seq) = parse_run(&b_first).expect("a run line");

    cluster.heal_with_zk("a");
    // A's session expired during the cut: it runs again in a new one and stands by.
    a.wait_standby_of(&b.address, Duration::from_secs(20));

    // The old master's fencing token lets nothing through, from wherever it is written.
    let record = record_path(&path, "tick");
    let current = cluster
        .host("b")
        .run(|| {
            block_on_bounded(async {
                let session = Session::connect(SessionConfig::new(&connect))
                    .await
                    .expect("a session from B's host");
                let stale = Fence {
                    path: path.clone(),
                    address: a.address.clone(),
                    epoch: first,
                };
                let err = stale
                    .write(&session, &record, b"seq=999999 epoch=0 at_ms=0")
                    .await
                    .expect_err("the old master's fenced write went through");
                assert!(matches!(err, Error::Fenced { .. }), "{err}");
                read_record(&session, &record)
                    .await
                    .expect("read the job record")
                    .expect("a job record")
            })
        })
        .expect("run in B's host");
    assert_eq!(current.epoch, second);

    // B keeps running; one epoch, one master: A ran only in the first, B only in the second,
    // A nothing after it stepped down, and no run number twice.
    b.next_line(
        &format!("run epoch={second} seq={}", b_first_seq + 3),
        Duration::from_secs(10),
    )
    .expect("B keeps running the job");
    let a_lines = a.lines();
    let b_lines = b.lines();
    let a_runs: Vec<(i64, u64)> = a_lines.iter().filter_map(|l| parse_run(l)).collect();
    let b_runs: Vec<(i64, u64)> = b_lines.iter().filter_map(|l| parse_run(l)).collect();
    assert!(a_runs.iter().all(|(e, _)| *e == first), "{a_runs:?}");
    assert!(b_runs.iter().all(|(e, _)| *e == second), "{b_runs:?}");
    assert!(
        !a_lines[a_stepped_down..]
            .iter()
            .any(|l| l.starts_with("run ")),
        "A ran the job after stepping down: {:?}",
        &a_lines[a_stepped_down..]
    );
    assert!(
        !a_lines
            .iter()
            .any(|l| l.starts_with("role master epoch=")
                && *l != format!("role master epoch={first}")),
        "A became master again: {a_lines:?}"
    );
    let (_, a_last_seq) = *a_runs.last().expect("A ran");
    assert!(
        b_first_seq == a_last_seq + 1 || b_first_seq == a_last_seq + 2,
        "A ran up to seq {a_last_seq}, B started at {b_first_seq}"
    );
    let b_seqs: Vec<u64> = b_runs.iter().map(|(_, s)| *s).collect();
    assert!(
        b_seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "B's runs are not consecutive: {b_seqs:?}"
    );
    assert!(current.seq >= b_first_seq);
}
