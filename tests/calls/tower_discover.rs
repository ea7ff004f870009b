//! tower's own balancer on zoorpc's discovery: `tower::balance::p2c::Balance` over
//! `Consumer::discover()`, against a real ZooKeeper and real provider processes: every listed
//! provider answers through it, a provider that joins is inserted, a SIGKILLed one leaves it.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::echo_load::{EchoProcess, say, server_of, spawn_echo_with_session};
use common::zk;
use tower::ServiceExt;
use tower::balance::p2c::Balance;
use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
use zoorpc::apps::echo::EchoClient;
use zoorpc::consumer::{Consumer, ProviderChanges};
use zoorpc_testkit::unique_path;

type P2c = Balance<PendingRequestsDiscover<ProviderChanges>, http::Request<tonic::body::Body>>;

/// An echo provider whose node leaves 1.5 s after its process dies.
fn echo(base: &str) -> EchoProcess {
    spawn_echo_with_session(base, 0, Duration::from_millis(1500))
}

/// Makes the balancer take the discovery changes so far, and says how many providers it has.
async fn providers_in(balance: &mut P2c) -> usize {
    ServiceExt::<http::Request<tonic::body::Body>>::ready(&mut *balance)
        .await
        .expect("the balancer has a provider");
    balance.len()
}

/// The servers that answered `calls` calls through the balancer.
async fn answering(balance: &mut P2c, calls: usize) -> HashSet<String> {
    let mut servers = HashSet::new();
    for i in 0..calls {
        let reply = EchoClient::new(&mut *balance)
            .say(say(&format!("{i}")))
            .await
            .expect("answered through tower's balancer");
        servers.insert(reply.into_inner().server);
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_p2c_runs_on_zoorpc_discovery_and_loses_a_killed_provider() {
    let base = unique_path("tower-discover");
    let mut a = echo(&base);
    let b = echo(&base);
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .expect("consumer");
    assert!(
        consumer
            .wait_until(Duration::from_secs(10), |urls| urls.len() == 2)
            .await
    );
    let discover = PendingRequestsDiscover::new(consumer.discover(), CompleteOnResponse::default());
    let mut balance: P2c = Balance::new(discover);
    assert_eq!(providers_in(&mut balance).await, 2);
    let both: HashSet<String> = [server_of(&a.url), server_of(&b.url)].into();
    assert_eq!(answering(&mut balance, 40).await, both);

    // A provider that joins is inserted.
    let c = echo(&base);
    assert!(
        consumer
            .wait_until(Duration::from_secs(10), |urls| urls.len() == 3)
            .await
    );
    assert_eq!(providers_in(&mut balance).await, 3);
    assert!(
        answering(&mut balance, 60)
            .await
            .contains(&server_of(&c.url))
    );

    // A provider SIGKILLed leaves the balancer once its node expires.
    a.process.kill();
    assert!(
        consumer
            .wait_until(Duration::from_secs(15), |urls| urls.len() == 2)
            .await,
        "the killed provider's node never left the list"
    );
    assert_eq!(providers_in(&mut balance).await, 2);
    let left: HashSet<String> = [server_of(&b.url), server_of(&c.url)].into();
    assert_eq!(answering(&mut balance, 40).await, left);
}
