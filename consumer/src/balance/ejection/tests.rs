//! Ejection's rules on one endpoint's state, without I/O.
use super::*;

const CONNECTION: Strike = Strike::Connection;

#[test]
fn backoff_doubles_to_the_max_and_the_cap_allows_at_least_one() {
    let p = EjectionPolicy::default();
    assert_eq!(p.backoff(1), Duration::from_secs(1));
    assert_eq!(p.backoff(2), Duration::from_secs(2));
    assert_eq!(p.backoff(6), Duration::from_secs(30));
    assert_eq!(p.backoff(u32::MAX), Duration::from_secs(30));
    assert_eq!(p.max_ejected(1), 1);
    assert_eq!(p.max_ejected(5), 2);
    assert_eq!(p.max_ejected(10), 5);
}

#[test]
fn one_probe_at_a_time_after_the_ejection_and_success_reopens() {
    let p = EjectionPolicy {
        base: Duration::from_millis(0),
        ..EjectionPolicy::default()
    };
    let h = Health::default();
    assert_eq!(h.availability(&p), Availability::Open);
    assert_eq!(
        h.record_failure(&p, true, h.started(), CONNECTION),
        Some(Duration::ZERO)
    );
    assert_eq!(h.availability(&p), Availability::Probe);
    assert!(h.claim_probe(&p));
    assert!(!h.claim_probe(&p), "a second probe while one is in flight");
    assert_eq!(h.availability(&p), Availability::Closed);
    h.record_success();
    assert_eq!(h.availability(&p), Availability::Open);
}

#[test]
fn a_failure_beyond_the_cap_does_not_eject() {
    let p = EjectionPolicy::default();
    let h = Health::default();
    assert_eq!(h.record_failure(&p, false, h.started(), CONNECTION), None);
    assert_eq!(h.availability(&p), Availability::Open);
}

#[test]
fn failures_while_ejected_or_from_before_the_ejection_neither_extend_nor_count() {
    let p = EjectionPolicy::default();
    let h = Health::default();
    // Eight calls in flight when the endpoint stalls.
    let in_flight: Vec<AttemptStart> = (0..8).map(|_| h.started()).collect();
    assert_eq!(
        h.record_failure(&p, true, in_flight[0], CONNECTION),
        Some(Duration::from_secs(1))
    );
    let until = h.ejected_until();
    for &started in &in_flight[1..] {
        assert_eq!(h.record_failure(&p, true, started, CONNECTION), None);
    }
    // A call made while it is ejected (failing open) fails too: still the same ejection.
    assert_eq!(h.record_failure(&p, true, h.started(), CONNECTION), None);
    assert_eq!(h.ejected_until(), until, "the ejection was extended");
    assert_eq!(h.ejections.load(Ordering::Relaxed), 1);
}

#[test]
fn the_probe_failing_doubles_and_a_success_starts_over() {
    let p = EjectionPolicy {
        base: Duration::ZERO,
        ..EjectionPolicy::default()
    };
    let h = Health::default();
    let stale = h.started();
    assert!(
        h.record_failure(&p, true, h.started(), CONNECTION)
            .is_some()
    );
    // A call from before the ejection reports on probation: not the probe's verdict.
    assert_eq!(h.record_failure(&p, true, stale, CONNECTION), None);
    assert!(h.claim_probe(&p));
    let probe = h.started();
    assert!(h.record_failure(&p, true, probe, CONNECTION).is_some());
    assert_eq!(h.ejections.load(Ordering::Relaxed), 2);
    h.record_success();
    assert_eq!(h.ejections.load(Ordering::Relaxed), 0);
    assert_eq!(h.availability(&p), Availability::Open);
}

#[test]
fn unavailable_answers_eject_only_in_a_row() {
    let p = EjectionPolicy::default();
    let h = Health::default();
    for _ in 0..4 {
        assert_eq!(
            h.record_failure(&p, true, h.started(), Strike::Unavailable),
            None
        );
    }
    h.record_success(); // any other answer breaks the row
    for _ in 0..4 {
        assert_eq!(
            h.record_failure(&p, true, h.started(), Strike::Unavailable),
            None
        );
    }
    assert_eq!(h.availability(&p), Availability::Open);
    assert_eq!(
        h.record_failure(&p, true, h.started(), Strike::Unavailable),
        Some(Duration::from_secs(1))
    );
    // Its probe answering UNAVAILABLE again ejects it again, for `base` again.
    let quick = EjectionPolicy {
        base: Duration::ZERO,
        ..p
    };
    let h = Health::default();
    for _ in 0..5 {
        h.record_failure(&quick, true, h.started(), Strike::Unavailable);
    }
    assert_eq!(h.availability(&quick), Availability::Probe);
    assert!(h.claim_probe(&quick));
    assert_eq!(
        h.record_failure(&quick, true, h.started(), Strike::Unavailable),
        Some(Duration::ZERO),
        "the probe's UNAVAILABLE ejects at once, for base"
    );
    let never = EjectionPolicy {
        consecutive_unavailable: 0,
        ..p
    };
    let h = Health::default();
    for _ in 0..100 {
        assert_eq!(
            h.record_failure(&never, true, h.started(), Strike::Unavailable),
            None
        );
    }
}

/// The time rules on tokio's clock, paused: an ejection lasts exactly its backoff, a probe that
/// never reports is given up after the probe timeout, and the probe's failure doubles the next
/// ejection.
#[tokio::test(start_paused = true)]
async fn ejections_and_probes_end_on_time() {
    use tokio::time::advance;
    let p = EjectionPolicy::DEFAULT;
    let h = Health::default();
    assert_eq!(
        h.record_failure(&p, true, h.started(), CONNECTION),
        Some(Duration::from_secs(1))
    );
    advance(Duration::from_millis(998)).await;
    assert!(h.is_ejected());
    assert_eq!(h.availability(&p), Availability::Closed);
    advance(Duration::from_millis(3)).await;
    assert!(!h.is_ejected());
    assert_eq!(h.availability(&p), Availability::Probe);
    assert!(h.claim_probe(&p));
    // The probe in flight keeps everyone else out until it reports or the probe timeout passes.
    advance(p.probe_timeout - Duration::from_millis(2)).await;
    assert_eq!(h.availability(&p), Availability::Closed);
    advance(Duration::from_millis(3)).await;
    assert_eq!(
        h.availability(&p),
        Availability::Probe,
        "a silent probe is given up"
    );
    assert!(h.claim_probe(&p));
    // The probe fails: twice as long.
    assert_eq!(
        h.record_failure(&p, true, h.started(), CONNECTION),
        Some(Duration::from_secs(2))
    );
    advance(Duration::from_millis(1998)).await;
    assert!(h.is_ejected());
    advance(Duration::from_millis(3)).await;
    assert_eq!(h.availability(&p), Availability::Probe);
}
