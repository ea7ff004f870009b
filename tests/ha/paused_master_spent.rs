//! Calls through a `MasterClient` whose attempts on a paused master (SIGSTOP) are all spent
//! before the standby (another `zoorpc-ha-server` process) takes over when the paused master's
//! session expires: 1 s attempts, a 4 s session timeout. Checked, as the module docs of the
//! master client promise:
//! - idempotent calls made as the pause begins, without a deadline or with one longer than the
//!   takeover, wait for the switch-over and are all answered by the new master;
//! - one whose deadline ends before the takeover ends `DEADLINE_EXCEEDED` at its deadline (not
//!   earlier, not `UNAVAILABLE`);
//! - with a switch-over bound shorter than the takeover, a call fails once the bound passes,
//!   saying that ZooKeeper still named the silent master (or, with no standby, that nobody
//!   holds the node) and which setting to raise.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ha_servers::HaServer;
use common::{runtime, zk};
use tokio::task::JoinSet;
use zoorpc::consumer::{Answered, CallPolicy, MasterClient, MasterClientConfig};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::unique_path;

/// The servers' session timeout: the takeover comes some 4 s into the pause.
const SESSION_TIMEOUT_MS: u64 = 4000;
/// The client's attempt timeout: with [`POLICY`]'s two attempts, spent some 2.2 s into the
/// pause, well before the takeover.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Idempotent, two attempts that may have been processed at most.
const POLICY: CallPolicy = CallPolicy::IDEMPOTENT.with_max_attempts(2);
/// A caller's deadline that ends before the takeover.
const SHORT_DEADLINE: Duration = Duration::from_millis(2500);
/// A caller's deadline longer than the takeover.
const LONG_DEADLINE: Duration = Duration::from_secs(14);
/// A switch-over bound shorter than the takeover.
const SHORT_BOUND: Duration = Duration::from_secs(2);

/// One idempotent `SayHello` through `client`, with `deadline` if any: the answering node, or
/// the status and when it came.
async fn hello(
    client: Arc<MasterClient>,
    deadline: Option<Duration>,
) -> (Instant, Result<String, tonic::Status>) {
    let mut hello = HelloServiceClient::new(client.channel_with(POLICY));
    let mut request = tonic::Request::new(HelloRequest {
        name: "spent".into(),
    });
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    let result = hello.say_hello(request).await.map(|response| {
        response
            .extensions()
            .get::<Answered>()
            .map(|a| a.node.to_string())
            .unwrap_or_default()
    });
    (Instant::now(), result)
}

/// A client of `path` with 1 s attempts and `bound` for a switch-over.
fn client(
    rt: &tokio::runtime::Runtime,
    connect: &str,
    path: &str,
    bound: Duration,
) -> Arc<MasterClient> {
    let config = MasterClientConfig::new(connect, path)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .switch_over_timeout(bound);
    Arc::new(
        rt.block_on(MasterClient::connect_with(config))
            .expect("a master client"),
    )
}

#[test]
fn calls_whose_attempts_on_a_paused_master_are_spent_wait_for_the_takeover() {
    let connect = zk().connect_string();
    let path = unique_path("paused-master-spent");
    let rt = runtime();
    let (a, mut b) = HaServer::master_and_standby(&connect, &path, SESSION_TIMEOUT_MS);
    let waiting = client(&rt, &connect, &path, Duration::from_secs(15));
    let bounded = client(&rt, &connect, &path, SHORT_BOUND);
    for client in [&waiting, &bounded] {
        let warm = rt.block_on(client.say_hello("warm")).expect("A answers");
        assert_eq!(warm.master, a.address);
    }

    a.process.pause().expect("SIGSTOP");
    let paused = Instant::now();
    let mut calls = JoinSet::new();
    let _guard = rt.enter();
    // A loop of calls without a deadline, 20 a second for the first second of the pause.
    for i in 0..20u64 {
        let client = waiting.clone();
        calls.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50 * i)).await;
            ("no deadline", hello(client, None).await)
        });
    }
    let long = rt.spawn(hello(waiting.clone(), Some(LONG_DEADLINE)));
    let short = rt.spawn(hello(waiting.clone(), Some(SHORT_DEADLINE)));
    let bound = rt.spawn(hello(bounded.clone(), None));
    b.wait_master(Duration::from_secs(20));
    let took_over = paused.elapsed();
    let outcomes = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(40), async {
            let mut outcomes = Vec::new();
            while let Some(outcome) = calls.join_next().await {
                outcomes.push(outcome.expect("a call task"));
            }
            let long = long.await.expect("the long deadline's call");
            let short = short.await.expect("the short deadline's call");
            let bound = bound.await.expect("the bounded client's call");
            (outcomes, long, short, bound)
        })
        .await
        .expect("every call ends within its bounds")
    });
    a.process.resume().expect("SIGCONT");
    let (outcomes, long, short, bound) = outcomes;
    assert!(
        took_over > SHORT_DEADLINE + ATTEMPT_TIMEOUT,
        "the takeover came after the attempts were spent ({took_over:?})"
    );

    let mut failures = Vec::new();
    for (kind, (_, result)) in outcomes.iter().chain([&("long deadline", long)]) {
        match result {
            Ok(node) => assert_eq!(node, &b.address, "{kind}: answered by the new master"),
            Err(status) => failures.push(format!("{kind}: {status:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} idempotent calls failed although the takeover came within their bounds: {failures:#?}",
        failures.len(),
        outcomes.len() + 1
    );

    let (ended, result) = short;
    let status = result.expect_err("a call whose deadline ends before the takeover fails");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    let after = ended.duration_since(paused);
    assert!(
        after >= SHORT_DEADLINE && after < SHORT_DEADLINE + Duration::from_millis(900),
        "ended at its deadline, not {after:?} into the pause: {status:?}"
    );

    let (ended, result) = bound;
    let status = result.expect_err("no other master within the bound");
    let message = status.message();
    assert!(
        message.contains(&a.address) && message.contains("switch_over_timeout"),
        "the status names the silent master and the setting to raise: {status:?}"
    );
    let after = ended.duration_since(paused);
    assert!(
        after >= SHORT_BOUND && after < SHORT_BOUND + ATTEMPT_TIMEOUT + Duration::from_millis(900),
        "failed once the bound passed (plus at most one attempt), not {after:?} into the pause"
    );
}

/// A paused master with no standby: its node goes with its session, nobody takes over, and a
/// call whose attempts on it were spent fails once the switch-over bound passes, saying that
/// nobody holds the node and which setting to raise (not only the last attempt's timeout).
#[test]
fn a_call_past_the_bound_with_the_node_vacant_says_so() {
    let connect = zk().connect_string();
    let path = unique_path("paused-master-vacant");
    let rt = runtime();
    let mut a = HaServer::spawn_with_timeout(&connect, &path, 2000, &[]);
    a.wait_master(Duration::from_secs(10));
    let bound = Duration::from_secs(4);
    let client = client(&rt, &connect, &path, bound);
    let warm = rt.block_on(client.say_hello("warm")).expect("A answers");
    assert_eq!(warm.master, a.address);

    a.process.pause().expect("SIGSTOP");
    let paused = Instant::now();
    let call = rt.spawn(hello(client.clone(), None));
    let (ended, result) = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), call).await })
        .expect("the call ends within its bound")
        .expect("the call's task");
    let vacant = client.master();
    a.process.resume().expect("SIGCONT");
    assert_eq!(
        vacant, None,
        "the paused master's node went with its session"
    );
    let status = result.expect_err("nobody took over");
    let message = status.message();
    assert!(
        message.contains(&format!("no master at {path}"))
            && message.contains("switch_over_timeout"),
        "the status says nobody holds the node and which setting to raise: {status:?}"
    );
    let after = ended.duration_since(paused);
    assert!(
        after >= bound && after < bound + ATTEMPT_TIMEOUT + Duration::from_millis(900),
        "failed once the bound passed, not {after:?} into the pause"
    );
}
