//! The endpoint set's picking, ejection and update rules, without I/O.
use std::collections::HashSet;
use std::time::Duration;

use super::*;

fn node(name: &str, url: &str) -> ProviderNode {
    ProviderNode {
        name: name.into(),
        url: url.parse().unwrap(),
        created: 1,
    }
}

/// The seed of the tests' random picking: the shares they measure are the same in every run.
const SEED: u64 = 0x5EED;

/// An empty set picking with `strategy`, its random numbers from [`SEED`].
fn seeded_set(strategy: &Strategy) -> EndpointSet {
    EndpointSet::seeded(strategy, EjectionPolicy::default(), Some(SEED))
}

fn share_of_a(set: &EndpointSet, exclude: &[String]) -> f64 {
    let picks = 4000;
    let a = (0..picks)
        .filter(|_| set.pick(exclude).unwrap().node() == "a")
        .count();
    a as f64 / picks as f64
}

#[tokio::test]
async fn uniform_weighted_ejected_and_fail_open() {
    let set = seeded_set(&Strategy::Random);
    assert!(set.pick(&[]).is_none());
    set.update(&[
        node("a", "http://127.0.0.1:1"),
        node("b", "http://127.0.0.1:2"),
    ]);
    let share = share_of_a(&set, &[]);
    assert!((0.45..0.55).contains(&share), "{share}");

    set.update(&[
        node("a", "http://127.0.0.1:1?weight=300"),
        node("b", "http://127.0.0.1:2?weight=100"),
    ]);
    let share = share_of_a(&set, &[]);
    assert!((0.70..0.80).contains(&share), "{share}");

    // An ejected endpoint is skipped while another is healthy...
    let a = set
        .snapshot()
        .iter()
        .find(|e| e.node() == "a")
        .cloned()
        .unwrap();
    set.record_failure(&a);
    assert!(a.is_ejected());
    assert_eq!(share_of_a(&set, &[]), 0.0);
    // ...but picked when it is the only one left (fail open).
    assert_eq!(set.pick(&["b".into()]).unwrap().node(), "a");
    a.record_success();
    assert!(!a.is_ejected());

    // Weight 0 takes traffic only when nothing else can.
    set.update(&[
        node("a", "http://127.0.0.1:1?weight=0"),
        node("b", "http://127.0.0.1:2"),
    ]);
    assert_eq!(share_of_a(&set, &[]), 0.0);
    assert_eq!(set.pick(&["b".into()]).unwrap().node(), "a");
    assert!(set.pick(&["a".into(), "b".into()]).is_none());
}

fn endpoint(set: &EndpointSet, name: &str) -> Arc<Endpoint> {
    set.snapshot()
        .iter()
        .find(|e| e.node() == name)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn a_healthy_weight_0_backup_comes_before_an_ejected_weighted_endpoint() {
    let set = seeded_set(&Strategy::Random);
    set.update(&[
        node("a", "http://127.0.0.1:1?weight=0"),
        node("b", "http://127.0.0.1:2?weight=100"),
    ]);
    set.record_failure(&endpoint(&set, "b"));
    assert_eq!(share_of_a(&set, &[]), 1.0, "the backup takes every call");
}

#[tokio::test]
async fn at_most_half_of_the_endpoints_are_ejected() {
    let set = seeded_set(&Strategy::Random);
    set.update(&[
        node("a", "http://127.0.0.1:1"),
        node("b", "http://127.0.0.1:2"),
        node("c", "http://127.0.0.1:3"),
        node("d", "http://127.0.0.1:4"),
    ]);
    for e in set.snapshot().iter() {
        set.record_failure(e);
    }
    let ejected = set.snapshot().iter().filter(|e| e.is_ejected()).count();
    assert_eq!(ejected, 2);
}

#[tokio::test]
async fn all_weights_0_pick_uniformly() {
    let set = seeded_set(&Strategy::Random);
    set.update(&[
        node("a", "http://127.0.0.1:1?weight=0"),
        node("b", "http://127.0.0.1:2?weight=0"),
    ]);
    let share = share_of_a(&set, &[]);
    assert!((0.45..0.55).contains(&share), "{share}");
}

#[tokio::test]
async fn https_nodes_are_kept_and_a_changed_url_or_creation_gets_a_new_endpoint() {
    let set = seeded_set(&Strategy::Random);
    set.update(&[
        node("a", "https://127.0.0.1:1"),
        node("b", "http://127.0.0.1:2"),
    ]);
    // Kept in the list (their dial fails without TLS, which ejects them), never plaintext:
    // tests/calls/tls.rs calls them.
    assert_eq!(set.len(), 2);
    let b = endpoint(&set, "b");
    let mut reused = node("b", "http://127.0.0.1:2");
    reused.created = 2;
    set.update(std::slice::from_ref(&reused));
    assert!(
        !Arc::ptr_eq(&b, &endpoint(&set, "b")),
        "a new node under an old name"
    );
    let b = endpoint(&set, "b");
    reused.url = "http://127.0.0.1:3".parse().unwrap();
    set.update(&[reused]);
    assert!(
        !Arc::ptr_eq(&b, &endpoint(&set, "b")),
        "a node whose URL was set"
    );
    assert_eq!(endpoint(&set, "b").url().port(), 3);
}

#[tokio::test]
async fn every_strategy_skips_ejected_and_excluded_endpoints_of_a_long_list() {
    let nodes: Vec<ProviderNode> = (0..40)
        .map(|i| node(&format!("n{i:02}"), &format!("http://127.0.0.1:{}", i + 1)))
        .collect();
    for strategy in [
        Strategy::Random,
        Strategy::RoundRobin,
        Strategy::LeastLoaded,
        Strategy::First,
    ] {
        let set = seeded_set(&strategy);
        set.update(&nodes);
        // Every other endpoint out: half of them, the most the policy allows.
        for e in set.snapshot().iter().step_by(2) {
            set.record_failure(e);
        }
        let out: HashSet<String> = set
            .snapshot()
            .iter()
            .filter(|e| e.is_ejected())
            .map(|e| e.node().to_owned())
            .collect();
        assert_eq!(out.len(), 20, "{strategy:?}");
        let exclude = vec!["n01".to_owned(), "n03".to_owned()];
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let picked = set.pick(&exclude).unwrap().node().to_owned();
            assert!(
                !out.contains(&picked),
                "{strategy:?} picked ejected {picked}"
            );
            assert!(
                !exclude.contains(&picked),
                "{strategy:?} picked excluded {picked}"
            );
            seen.insert(picked);
        }
        let expected = if matches!(strategy, Strategy::First) {
            1
        } else {
            18
        };
        assert_eq!(seen.len(), expected, "{strategy:?} reached {seen:?}");
    }
}

#[tokio::test]
async fn weighted_random_and_round_robin_keep_their_shares_with_backups_beside() {
    for strategy in [Strategy::Random, Strategy::RoundRobin] {
        let set = seeded_set(&strategy);
        set.update(&[
            node("a", "http://127.0.0.1:1?weight=300"),
            node("z", "http://127.0.0.1:9?weight=0"),
            node("b", "http://127.0.0.1:2?weight=100"),
        ]);
        let share = share_of_a(&set, &[]);
        assert!((0.70..0.80).contains(&share), "{strategy:?}: {share}");
        assert_eq!(set.pick(&["a".into(), "b".into()]).unwrap().node(), "z");
    }
}

#[tokio::test]
async fn update_keeps_endpoints_of_surviving_nodes() {
    let set = seeded_set(&Strategy::Random);
    set.update(&[
        node("a", "http://127.0.0.1:1"),
        node("b", "http://127.0.0.1:2"),
    ]);
    let before = set.snapshot();
    set.update(&[
        node("b", "http://127.0.0.1:2"),
        node("c", "http://127.0.0.1:1"),
    ]);
    let after = set.snapshot();
    assert!(
        Arc::ptr_eq(&before[1], &after[0]),
        "b keeps its endpoint and channel"
    );
    assert_eq!(after[1].node(), "c");
    assert_eq!(set.len(), 2);
}

#[tokio::test]
async fn update_keeps_endpoints_whatever_the_order_of_either_list() {
    let set = seeded_set(&Strategy::Random);
    let a = node("a", "http://127.0.0.1:1");
    let b = node("b", "http://127.0.0.1:2");
    let c = node("c", "http://127.0.0.1:3");
    // Out of order first, then in order, then out of order again, then in order.
    for list in [
        vec![b.clone(), a.clone()],
        vec![a.clone(), b.clone(), c.clone()],
        vec![c.clone(), a.clone(), b.clone()],
        vec![a.clone(), c.clone()],
    ] {
        let before = set.snapshot();
        set.update(&list);
        let after = set.snapshot();
        let names: Vec<&str> = after.iter().map(|e| e.node()).collect();
        let expected: Vec<&str> = list.iter().map(|p| &*p.name).collect();
        assert_eq!(names, expected);
        for e in after.iter() {
            if let Some(old) = before.iter().find(|o| o.node() == e.node()) {
                assert!(Arc::ptr_eq(old, e), "{} lost its endpoint", e.node());
            }
        }
    }
}

#[tokio::test]
async fn the_picking_tables_give_each_endpoint_its_weight_in_tickets() {
    let set = seeded_set(&Strategy::Random);
    set.update(&[
        node("a", "http://127.0.0.1:1?weight=0"),
        node("b", "http://127.0.0.1:2?weight=100"),
        node("c", "http://127.0.0.1:3?weight=300"),
    ]);
    let listing = set.listing.load();
    let all = |_: &Endpoint| true;
    let weighted = Candidates::new(&listing.endpoints, &listing.weighted, &all);
    assert_eq!(weighted.len(), 2);
    assert_eq!(weighted.total_weight(), 400);
    assert!(!weighted.is_uniform());
    assert_eq!(
        [weighted.nth(0), weighted.nth(1), weighted.nth(2)],
        [Some(1), Some(2), None]
    );
    let owners: Vec<_> = [0, 99, 100, 399, 400]
        .map(|t| weighted.by_ticket(t))
        .to_vec();
    assert_eq!(owners, [Some(1), Some(1), Some(2), Some(2), None]);
    let backups = Candidates::new(&listing.endpoints, &listing.backups, &all);
    assert_eq!((backups.len(), backups.total_weight()), (1, 0));
    assert!(backups.is_uniform());
    assert_eq!([backups.nth(0), backups.nth(1)], [Some(0), None]);
    assert_eq!(backups.by_ticket(0), None);

    // Every endpoint in the class, equal weights: positions and tickets without tables.
    set.update(&[
        node("b", "http://127.0.0.1:2?weight=100"),
        node("c", "http://127.0.0.1:3?weight=100"),
        node("d", "http://127.0.0.1:4?weight=100"),
    ]);
    let listing = set.listing.load();
    let weighted = Candidates::new(&listing.endpoints, &listing.weighted, &all);
    assert_eq!((weighted.len(), weighted.total_weight()), (3, 300));
    assert!(weighted.is_uniform());
    assert_eq!([weighted.nth(2), weighted.nth(3)], [Some(2), None]);
    let owners: Vec<_> = [0, 99, 100, 250, 299, 300]
        .map(|t| weighted.by_ticket(t))
        .to_vec();
    assert_eq!(owners, [Some(0), Some(0), Some(1), Some(2), Some(2), None]);
    let backups = Candidates::new(&listing.endpoints, &listing.backups, &all);
    assert!(backups.is_empty() && backups.nth(0).is_none());
}

/// Updates are announced; a weight-0 backup takes requests only when no weighted endpoint can;
/// the same node (name, creation, URL) keeps its endpoint.
#[tokio::test]
async fn updates_are_announced_and_backups_wait_their_turn() {
    let set = seeded_set(&Strategy::Random);
    let updates = set.updates();
    let providers = [
        node("provider0000000001", "http://127.0.0.1:11211?weight=0"),
        node("provider0000000002", "http://127.0.0.1:11212"),
    ];
    set.update(&providers);
    assert!(updates.has_changed().unwrap());
    let weights: Vec<u32> = set.snapshot().iter().map(|e| e.weight()).collect();
    assert_eq!(weights, [0, super::super::DEFAULT_WEIGHT]);
    for _ in 0..20 {
        assert_eq!(set.pick(&[]).unwrap().node(), "provider0000000002");
    }
    let backup = set.pick(&["provider0000000002".to_owned()]).unwrap();
    assert_eq!(backup.node(), "provider0000000001");
    let before = set.snapshot();
    set.update(&providers);
    assert!(Arc::ptr_eq(&before[1], &set.snapshot()[1]));
}

/// A rule of the user's own picks as it says; excluded endpoints are skipped.
#[tokio::test]
async fn a_custom_rule_picks_as_it_says() {
    #[derive(Debug)]
    struct ZoneAFirst;
    impl Pick for ZoneAFirst {
        fn pick(
            &self,
            endpoints: &[Arc<Endpoint>],
            usable: &dyn Fn(&Endpoint) -> bool,
        ) -> Option<usize> {
            let in_zone_a = |e: &Endpoint| e.url().metadata("zone") == Some("a");
            let first = |wanted: &dyn Fn(&Endpoint) -> bool| {
                endpoints.iter().position(|e| usable(e) && wanted(e))
            };
            first(&in_zone_a).or_else(|| first(&|_| true))
        }
    }
    let set = EndpointSet::with_policy(
        &Strategy::Custom(Arc::new(ZoneAFirst)),
        EjectionPolicy::default(),
    );
    set.update(&[
        node("provider0000000001", "http://127.0.0.1:11211?zone=b"),
        node("provider0000000002", "http://127.0.0.1:11212?zone=a"),
    ]);
    assert_eq!(set.pick(&[]).unwrap().node(), "provider0000000002");
    let elsewhere = set.pick(&["provider0000000002".to_owned()]).unwrap();
    assert_eq!(elsewhere.url().metadata("zone"), Some("b"));
}

/// A seed makes the random rules' picks repeat from run to run; another seed picks otherwise.
#[tokio::test]
async fn a_seed_repeats_the_picks_of_the_random_rules() {
    let nodes: Vec<ProviderNode> = (0..10)
        .map(|i| node(&format!("n{i}"), &format!("http://127.0.0.1:{}", i + 1)))
        .collect();
    for strategy in [Strategy::Random, Strategy::LeastLoaded] {
        let picks = |seed: u64| {
            let set = EndpointSet::seeded(&strategy, EjectionPolicy::default(), Some(seed));
            set.update(&nodes);
            (0..50)
                .map(|_| set.pick(&[]).unwrap().node().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(picks(1), picks(1), "{strategy:?}");
        assert_ne!(picks(1), picks(2), "{strategy:?}");
    }
}

/// On tokio's paused clock: with every endpoint ejected, picking fails open to the endpoint
/// whose ejection ends first, whatever the order the endpoints were created in (each counts its
/// time from its own creation).
#[tokio::test(start_paused = true)]
async fn failing_open_takes_the_endpoint_back_soonest() {
    use tokio::time::advance;
    let policy = EjectionPolicy::DEFAULT.with_max_ejection_percent(100);
    let set = EndpointSet::seeded(&Strategy::Random, policy, Some(SEED));
    let a = node("a", "http://127.0.0.1:1");
    set.update(std::slice::from_ref(&a));
    advance(Duration::from_secs(5)).await;
    set.update(&[a, node("b", "http://127.0.0.1:2")]);
    set.record_failure(&endpoint(&set, "a")); // back at 6 s
    advance(Duration::from_millis(500)).await;
    set.record_failure(&endpoint(&set, "b")); // back at 6.5 s
    assert!(set.snapshot().iter().all(|e| e.is_ejected()));
    assert_eq!(set.pick(&[]).unwrap().node(), "a");
    advance(Duration::from_millis(600)).await;
    // a is on probation: its probe goes to it; b is still out.
    assert_eq!(set.pick(&[]).unwrap().node(), "a");
}
