//! Active/standby with contenders in their own processes (`zoorpc-ha-server`), killed, paused
//! and stopped with real signals; the `zoorpc-ha-client` program calling through it all.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::ha_servers::{HaServer, SESSION_TIMEOUT_MS, parse_run, wait_any_master};
use common::{runtime, zk};
use zoorpc::registry::master_job::{read_record, record_path};
use zoorpc::registry::{Error, Fence, Session, SessionConfig};
use zoorpc_testkit::{ChildProcess, unique_path};

#[test]
fn sigkill_of_the_master_makes_a_standby_master_within_session_timeout_plus_1s() {
    let path = unique_path("ha-kill");
    let connect = zk().connect_string();
    let mut a = HaServer::spawn(&connect, &path, &[]);
    let first = a.wait_master(Duration::from_secs(10));
    let mut b = HaServer::spawn(&connect, &path, &[]);
    let mut c = HaServer::spawn(&connect, &path, &[]);
    b.wait_standby_of(&a.address, Duration::from_secs(10));
    c.wait_standby_of(&a.address, Duration::from_secs(10));

    // A client calling the master through the kill, as `ha_client` does.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-client"));
    cmd.args(["--zk", &connect, "--path", &path])
        .args(["--calls", "80", "--interval-ms", "25"]);
    let mut client = ChildProcess::spawn("ha-client", cmd).unwrap();
    client
        .wait_for_line(&format!("ok {}", a.address), Duration::from_secs(20))
        .expect("the client reaches the first master");

    a.process.signal(libc::SIGKILL).unwrap();
    let killed = Instant::now();
    let (winner, second) = wait_any_master(&mut [&mut b, &mut c], Duration::from_secs(5));
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_millis(SESSION_TIMEOUT_MS + 1000),
        "a standby became master {took:?} after the kill"
    );
    assert!(second > first, "epoch {second} <= {first}");
    let (new_master, other) = if winner == 0 {
        (&mut b, &mut c)
    } else {
        (&mut c, &mut b)
    };
    let new_address = new_master.address.clone();
    other.wait_standby_of(&new_address, Duration::from_secs(5));

    // Every call succeeded: the ones in flight during the switch-over were retried.
    let summary = client
        .wait_for_line("calls=", Duration::from_secs(30))
        .unwrap();
    assert_eq!(summary, "calls=80 ok=80 failed=0");
    let lines = client.seen_lines().to_vec();
    assert!(
        lines.iter().any(|l| *l == format!("ok {new_address}")),
        "the client never reached the new master: {lines:?}"
    );
    for line in &lines[..lines.len() - 1] {
        assert!(
            *line == format!("ok {}", a.address) || *line == format!("ok {new_address}"),
            "{line}"
        );
    }
}

#[test]
fn sigterm_resigns_and_a_standby_takes_over_long_before_the_session_could_expire() {
    let path = unique_path("ha-term");
    let connect = zk().connect_string();
    let long = ["--session-timeout-ms", "20000"];
    let mut a = HaServer::spawn(&connect, &path, &long);
    a.wait_master(Duration::from_secs(10));
    let mut b = HaServer::spawn(&connect, &path, &long);
    b.wait_standby_of(&a.address, Duration::from_secs(10));

    a.process.signal(libc::SIGTERM).unwrap();
    let signalled = Instant::now();
    b.wait_master(Duration::from_secs(5));
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "took {:?}",
        signalled.elapsed()
    );
    a.next_line("resigned", Duration::from_secs(5)).unwrap();
    assert!(
        a.process
            .wait_exit(Duration::from_secs(10))
            .unwrap()
            .success()
    );
}

#[test]
fn a_master_paused_past_its_session_timeout_reports_not_master_before_any_job_and_is_fenced() {
    let path = unique_path("ha-pause");
    let connect = zk().connect_string();
    let job = ["--job-interval-ms", "100", "--job-name", "tick"];
    let mut a = HaServer::spawn(&connect, &path, &job);
    let first = a.wait_master(Duration::from_secs(10));
    a.next_line(&format!("run epoch={first} seq=3"), Duration::from_secs(5))
        .expect("the master runs its job");
    let mut b = HaServer::spawn(&connect, &path, &job);
    b.wait_standby_of(&a.address, Duration::from_secs(10));

    a.process.pause().unwrap();
    let second = b.wait_master(Duration::from_secs(5));
    assert!(second > first, "epoch {second} <= {first}");
    let b_first_run = b
        .next_line(&format!("run epoch={second} seq="), Duration::from_secs(5))
        .unwrap();
    let (_, b_first_seq) = parse_run(&b_first_run).unwrap();
    // Everything A printed before the pause has been read by now (it printed nothing since).
    let a_runs = a.runs();
    let (_, a_last_seq) = *a_runs.last().unwrap();
    assert!(a_runs.iter().all(|(e, _)| *e == first));
    assert!(
        b_first_seq == a_last_seq + 1 || b_first_seq == a_last_seq + 2,
        "A ran up to seq {a_last_seq}, B started at {b_first_seq}"
    );
    let seen_before_resume = a.process.seen_lines().len();
    a.cursor = seen_before_resume;

    a.process.resume().unwrap();
    // The first thing A says after resuming is that it is not master.
    let role = a.next_role(Duration::from_secs(5));
    assert!(!role.starts_with("master"), "A resumed as {role}");
    let after: Vec<String> = a.process.seen_lines()[seen_before_resume..].to_vec();
    assert!(
        !after.iter().any(|l| l.starts_with("run ")),
        "A ran a job after resuming: {after:?}"
    );
    if role != format!("standby master={}", b.address) {
        a.wait_standby_of(&b.address, Duration::from_secs(5));
    }

    // A's fencing token no longer lets anything through, and the schedule is B's.
    let rt = runtime();
    rt.block_on(async {
        let session = Session::connect(SessionConfig::new(&connect))
            .await
            .unwrap();
        let stale = Fence {
            path: path.clone(),
            address: a.address.clone(),
            epoch: first,
        };
        let record = record_path(&path, "tick");
        let err = stale
            .write(&session, &record, b"seq=999999 epoch=0 at_ms=0")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Fenced { .. }), "{err}");
        let current = read_record(&session, &record).await.unwrap().unwrap();
        assert_eq!(current.epoch, second);
        assert!(current.seq >= b_first_seq);
    });

    // B keeps running; A never runs again while B is master.
    b.next_line(
        &format!("run epoch={second} seq={}", b_first_seq + 3),
        Duration::from_secs(5),
    )
    .unwrap();
    let a_after: Vec<String> = a.process.drain_lines()[seen_before_resume..].to_vec();
    assert!(
        !a_after.iter().any(|l| l.starts_with("run ")),
        "{a_after:?}"
    );
    let b_seqs: Vec<u64> = b.runs().iter().map(|(_, s)| *s).collect();
    assert!(
        b_seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "B's runs are not consecutive: {b_seqs:?}"
    );
}

/// A master client whose master is paused (SIGSTOP): each attempt is abandoned after the attempt
/// timeout, the call goes to the standby once it took over, and with no standby the call ends
/// at the switch-over bound (after at most its five attempts on the paused master) instead of
/// hanging until the master resumes.
#[test]
fn a_master_client_abandons_a_paused_master_after_the_attempt_timeout() {
    use zoorpc::consumer::{Answered, CallPolicy, MasterClient, MasterClientConfig};
    use zoorpc::proto::{HelloRequest, HelloServiceClient};

    let connect = zk().connect_string();
    let rt = runtime();
    let client_for = |path: &str, bound: Duration| {
        let mut config = MasterClientConfig::new(&connect, path);
        config.attempt_timeout = Duration::from_millis(500);
        config.switch_over_timeout = bound;
        rt.block_on(MasterClient::connect_with(config)).unwrap()
    };

    // With a standby: the call lands on it once it is master.
    let path = unique_path("ha-paused-client");
    let mut a = HaServer::spawn(&connect, &path, &[]);
    a.wait_master(Duration::from_secs(10));
    let mut b = HaServer::spawn(&connect, &path, &[]);
    b.wait_standby_of(&a.address, Duration::from_secs(10));
    let client = client_for(&path, Duration::from_secs(10));
    rt.block_on(client.say_hello("warm")).unwrap();
    a.process.pause().unwrap();
    let started = Instant::now();
    let policy = CallPolicy::IDEMPOTENT.with_max_attempts(20);
    let mut hello = HelloServiceClient::new(client.channel_with(policy));
    let answer = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                hello.say_hello(HelloRequest { name: "p".into() }),
            )
            .await
        })
        .expect("the call hung on the paused master")
        .expect("the standby answers once it is master");
    let answered = answer.extensions().get::<Answered>().cloned().unwrap();
    assert_eq!(&*answered.node, b.address);
    assert!(
        started.elapsed() < Duration::from_millis(SESSION_TIMEOUT_MS + 3000),
        "took {:?}",
        started.elapsed()
    );
    a.process.resume().unwrap();

    // Alone: the call ends (an error) at the switch-over bound, long before the master resumes.
    let path = unique_path("ha-paused-alone");
    let mut c = HaServer::spawn(&connect, &path, &["--session-timeout-ms", "20000"]);
    c.wait_master(Duration::from_secs(10));
    let bound = Duration::from_secs(3);
    let client = client_for(&path, bound);
    rt.block_on(client.say_hello("warm")).unwrap();
    c.process.pause().unwrap();
    let started = Instant::now();
    let result = rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(20), client.say_hello("alone")).await
        })
        .expect("the call hung on the paused master");
    let error = result.expect_err("nobody else to answer").to_string();
    assert!(error.contains(&c.address), "{error}");
    // At most five idempotent attempts of 0.5 s and the backoff between them (the paused
    // master's load is not multiplied), then the wait for a switch-over within the bound.
    let attempts = error
        .split("after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(attempts.is_some_and(|n| n <= 5), "{error}");
    assert!(
        started.elapsed() >= bound && started.elapsed() < bound + Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    c.process.resume().unwrap();
}
