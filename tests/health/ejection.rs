//! Ejection: one outage is one ejection of the base length; `UNAVAILABLE` answers eject only in
//! a row, briefly, and name their provider.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status, Streaming};
use zoorpc::apps::echo::{Echo, EchoClient, EchoReply, EchoRequest, EchoServer, EchoService};
use zoorpc::consumer::balance::PROVIDER_METADATA;
use zoorpc::consumer::{CallPolicy, Strategy};
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc_testkit::unique_path;

use crate::common::echo_load::{echo_provider, say, server_of};
use crate::common::eventually;
use crate::common::zk;
use crate::traffic::{Traffic, consumer, ejections, metrics, spawn_echo_with};

/// A stall of 400 ms with many calls in flight (attempts limited to 250 ms, so they fail): one
/// ejection, of the base length; the provider answers again about a second after it stalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_with_calls_in_flight_is_one_ejection_of_the_base_length() {
    metrics();
    let base = unique_path("health-stall");
    let stalled = spawn_echo_with(&base, &[]);
    let _other = spawn_echo_with(&base, &[]);
    let consumer = consumer(&base, Strategy::Random, 2).await;
    let policy = CallPolicy::IDEMPOTENT.with_attempt_timeout(Duration::from_millis(250));
    let mut traffic = Traffic::start(EchoClient::new(consumer.channel_with(policy)), 16);
    let server = server_of(&stalled.url);
    let warm = traffic
        .first_from(&server, Instant::now(), Duration::from_secs(10))
        .await;
    assert!(
        warm.is_some(),
        "the provider never answered before the stall"
    );

    let paused = Instant::now();
    stalled.process.pause().expect("SIGSTOP");
    // The calls in flight time out; the first failure ejects.
    eventually(
        "the stalled provider ejected",
        Duration::from_secs(5),
        || async {
            match ejections(&stalled.url) {
                ejected if ejected >= 1.0 => Ok(()),
                ejected => Err(ejected),
            }
        },
    )
    .await;
    // The stall itself lasts 400 ms: a fault's length, not a wait for a state.
    tokio::time::sleep_until((paused + Duration::from_millis(400)).into()).await;
    stalled.process.resume().expect("SIGCONT");
    let resumed = Instant::now();

    let back = traffic
        .first_from(&server, resumed, Duration::from_secs(40))
        .await;
    traffic.finish().await;
    let back = back.map(|at| at - resumed);
    assert!(
        back.is_some_and(|after| after < Duration::from_secs(2)),
        "the provider came back {back:?} after the 400 ms stall ended (ejected once, for 1 s, \
         it is back within about a second)"
    );
    assert_eq!(
        ejections(&stalled.url),
        1.0,
        "one stall is one ejection, however many calls were in flight"
    );
}

/// Echo that answers `UNAVAILABLE` (as a server whose dependency is down does) during an
/// outage, or for its next `fail_next` calls.
#[derive(Clone)]
struct Flaky {
    echo: EchoService,
    outage: Arc<AtomicBool>,
    fail_next: Arc<AtomicU32>,
}

impl Flaky {
    fn refuses(&self) -> bool {
        self.outage.load(Ordering::Relaxed)
            || self
                .fail_next
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
    }
}

#[tonic::async_trait]
impl Echo for Flaky {
    async fn say(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        if self.refuses() {
            return Err(Status::unavailable("the database is down"));
        }
        self.echo.say(request).await
    }

    type ExpandStream = <EchoService as Echo>::ExpandStream;

    async fn expand(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ExpandStream>, Status> {
        self.echo.expand(request).await
    }

    async fn collect(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.echo.collect(request).await
    }
}

/// One `UNAVAILABLE` answer ejects nobody, and names its provider; an outage of 1.5 s ejects
/// the provider only for the rule's time (5 in a row, 1 s each time, not doubling) and it has
/// calls again within a second of the outage's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_answers_eject_only_in_a_row_and_briefly() {
    metrics();
    let base = unique_path("health-unavailable");
    let flaky = Flaky {
        echo: EchoService::new(Duration::ZERO),
        outage: Arc::default(),
        fail_next: Arc::default(),
    };
    let config =
        ProviderConfig::new(zk().connect_string(), &base, 0).drain_grace(Duration::from_millis(50));
    let provider = Provider::serve(config, EchoServer::new(flaky.clone()))
        .await
        .expect("flaky provider");
    let url = provider.url().endpoint();
    let (other, _) = echo_provider(&base, Duration::ZERO).await;
    let consumer = consumer(&base, Strategy::Random, 2).await;
    let mut client = EchoClient::new(consumer.channel());

    // One answer: the caller gets it, naming the provider; the provider stays in.
    flaky.fail_next.store(1, Ordering::Relaxed);
    let mut refused = None;
    for _ in 0..200 {
        if let Err(status) = client.say(say("once")).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("the provider's UNAVAILABLE reached the caller");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(
        refused
            .metadata()
            .get(PROVIDER_METADATA)
            .and_then(|v| v.to_str().ok()),
        Some(provider.url().as_str()),
        "the answer names its provider: {refused:?}"
    );
    let endpoint = consumer
        .endpoints()
        .iter()
        .find(|e| e.url().endpoint() == url)
        .cloned()
        .expect("the flaky provider is listed");
    assert!(!endpoint.is_ejected(), "one UNAVAILABLE answer ejected it");
    assert_eq!(ejections(&url), 0.0);
    // The same through `Consumer::call` (a closure over the balanced channel).
    flaky.fail_next.store(1, Ordering::Relaxed);
    let mut refused_once = false;
    for _ in 0..200 {
        let answer = consumer
            .call(CallPolicy::DEFAULT, |channel| async move {
                EchoClient::new(channel).say(say("call")).await
            })
            .await;
        if answer.is_err() {
            refused_once = true;
            break;
        }
    }
    assert!(
        refused_once,
        "the provider's UNAVAILABLE never reached Consumer::call"
    );
    assert!(
        !endpoint.is_ejected(),
        "one UNAVAILABLE answer through Consumer::call ejected it"
    );

    // An outage of 1.5 s under load.
    let mut traffic = Traffic::start(EchoClient::new(consumer.channel()), 8);
    let server = server_of(&url);
    let warm = traffic
        .first_from(&server, Instant::now(), Duration::from_secs(10))
        .await;
    assert!(
        warm.is_some(),
        "the provider never answered before the outage"
    );
    flaky.outage.store(true, Ordering::Relaxed);
    let began = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_500)).await; // the outage's length
    flaky.outage.store(false, Ordering::Relaxed);
    let ended = Instant::now();
    let (_, failures) = traffic.window(began, ended).await;
    let back = traffic
        .first_from(&server, ended, Duration::from_secs(40))
        .await;
    traffic.finish().await;
    assert!(!failures.is_empty(), "the outage failed no call");
    for status in &failures {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert_eq!(
            status
                .metadata()
                .get(PROVIDER_METADATA)
                .and_then(|v| v.to_str().ok()),
            Some(provider.url().as_str()),
            "{status:?}"
        );
    }
    let back = back.map(|at| at - ended);
    assert!(
        back.is_some_and(|after| after < Duration::from_millis(1_800)),
        "the provider had calls again {back:?} after its outage ended (an ejection for \
         answers lasts 1 s)"
    );
    let count = ejections(&url);
    assert!(
        (1.0..=3.0).contains(&count),
        "{count} ejections in a 1.5 s outage (at most one per second, and one at its start)"
    );
    provider.shutdown().await.expect("shutdown");
    other.shutdown().await.expect("shutdown");
}
