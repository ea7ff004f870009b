//! Calls through a `MasterClient` while its master is paused (SIGSTOP) past its session timeout
//! and the standby (another `zoorpc-ha-server` process) takes over when the paused master's
//! session expires. Checked: every idempotent call made during the pause is answered, by the
//! new master, both with a caller's deadline longer than the session timeout (the attempt
//! waiting on the paused master is abandoned once ZooKeeper names the new one) and without one
//! (attempts timing out on the paused master past the attempt count and the retry budget wait
//! for the switch-over); a non-idempotent call fails `DEADLINE_EXCEEDED` naming the paused
//! master and is never sent to the new one.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ha_servers::HaServer;
use common::{runtime, zk};
use tokio::task::JoinSet;
use zoorpc::consumer::{Answered, CallPolicy, MasterClient, MasterClientConfig};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::unique_path;

/// The servers' session timeout: the paused master's node goes some 2.5 s into the pause.
const SESSION_TIMEOUT_MS: u64 = 2500;
/// Calls are made during the first part of the pause, well before the session can expire.
const SENDING: Duration = Duration::from_millis(1500);
/// A deadline longer than the session timeout, as a caller riding out a switch-over sets it.
const LONG_DEADLINE: Duration = Duration::from_secs(12);
/// The client's attempt timeout: several attempts time out on the paused master.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);

/// What one call made during the pause came to.
#[derive(Debug)]
struct Outcome {
    kind: &'static str,
    /// The master the client followed when the call was made.
    master_then: Option<String>,
    /// The answering server (`Answered` and the reply's `provider` field), or the error.
    result: Result<(String, String), tonic::Status>,
}

/// One `SayHello` on `channel_with(policy)`, with `deadline` if any.
async fn hello(
    client: Arc<MasterClient>,
    policy: CallPolicy,
    deadline: Option<Duration>,
) -> Result<(String, String), tonic::Status> {
    let mut hello = HelloServiceClient::new(client.channel_with(policy));
    let mut request = tonic::Request::new(HelloRequest {
        name: "paused".into(),
    });
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    let response = hello.say_hello(request).await?;
    let node = response
        .extensions()
        .get::<Answered>()
        .map(|a| a.node.to_string())
        .unwrap_or_default();
    Ok((node, response.into_inner().provider))
}

/// Makes calls of every kind during [`SENDING`], each in flight on its own; returns them all.
async fn calls_during_pause(client: Arc<MasterClient>) -> Vec<Outcome> {
    let mut calls = JoinSet::new();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    let mut n = 0u32;
    while started.elapsed() < SENDING {
        tick.tick().await;
        let kinds: &[&'static str] = match n {
            0 => &[
                "idempotent",
                "non-idempotent",
                "non-idempotent with deadline",
            ],
            n if n % 4 == 0 => &["idempotent", "idempotent with deadline"],
            _ => &["idempotent"],
        };
        n += 1;
        for &kind in kinds {
            let (client, master_then) = (client.clone(), client.master());
            calls.spawn(async move {
                let result = match kind {
                    "idempotent" => hello(client, CallPolicy::IDEMPOTENT, None).await,
                    "idempotent with deadline" => {
                        hello(client, CallPolicy::IDEMPOTENT, Some(LONG_DEADLINE)).await
                    }
                    "non-idempotent" => hello(client, CallPolicy::DEFAULT, None).await,
                    _ => hello(client, CallPolicy::DEFAULT, Some(Duration::from_secs(4))).await,
                };
                Outcome {
                    kind,
                    master_then,
                    result,
                }
            });
        }
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = calls.join_next().await {
        outcomes.push(outcome.expect("a call task"));
    }
    outcomes
}

#[test]
fn idempotent_calls_during_a_pause_of_the_master_are_all_answered_by_the_new_master() {
    let connect = zk().connect_string();
    let path = unique_path("paused-master-calls");
    let rt = runtime();
    let (a, mut b) = HaServer::master_and_standby(&connect, &path, SESSION_TIMEOUT_MS);
    let mut config = MasterClientConfig::new(&connect, &path);
    config.attempt_timeout = ATTEMPT_TIMEOUT;
    let client = Arc::new(
        rt.block_on(MasterClient::connect_with(config))
            .expect("a client"),
    );
    let warm = rt.block_on(client.say_hello("warm")).expect("A answers");
    assert_eq!(warm.master, a.address);

    a.process.pause().expect("SIGSTOP");
    let calls = rt.spawn(calls_during_pause(client.clone()));
    b.wait_master(Duration::from_secs(20));
    let outcomes = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(40), calls).await })
        .expect("every call ends within its bounds")
        .expect("the calls' task");
    a.process.resume().expect("SIGCONT");

    let idempotent: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.kind.starts_with("idempotent"))
        .collect();
    assert!(idempotent.len() >= 60, "{} calls", idempotent.len());
    let mut failures = Vec::new();
    for outcome in &idempotent {
        assert_eq!(
            outcome.master_then.as_deref(),
            Some(a.address.as_str()),
            "a call made during the pause went to the paused master first"
        );
        match &outcome.result {
            Ok((node, provider)) => {
                assert_eq!(node, &b.address, "{} answered by {node}", outcome.kind);
                assert_eq!(provider, &b.address, "{}", outcome.kind);
            }
            Err(status) => failures.push(format!("{}: {}", outcome.kind, status.message())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} idempotent calls made during the pause failed: {failures:#?}",
        failures.len(),
        idempotent.len()
    );
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.kind.starts_with("non-idempotent"))
        .collect();
    assert_eq!(failed.len(), 2);
    for outcome in failed {
        let status = outcome
            .result
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{outcome:?}: a non-idempotent call was answered"));
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(
            status.message().contains(&a.address),
            "{}: the status names the paused master: {status:?}",
            outcome.kind
        );
    }
}
