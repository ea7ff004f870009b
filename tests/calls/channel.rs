//! The balanced channel with a service that is not HelloService (`tests/proto/echo.proto`):
//! one client made once and kept, failing over kills, stops and newcomers; streaming both ways;
//! buffering; empty and dead lists; each picking strategy.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::echo_load::{
    Load, assert_no_failures, consumer, echo_provider, say, server_of, spawn_echo,
};
use common::{eventually, raw_client, wait_node_gone, zk};
use zookeeper_client as zkc;
use zoorpc::apps::echo::{EchoClient, EchoRequest, EchoServer, EchoService};
use zoorpc::consumer::{Answered, BalancedChannel, CallPolicy, Consumer, Strategy};
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc_testkit::unique_path;

/// Registers `n` providers under `base` at loopback ports nothing listens on (connections are
/// refused), from a raw session of their own: returned, since dropping it removes the nodes.
async fn register_dead(base: &str, n: usize) -> zkc::Client {
    let raw = raw_client(&zk().connect_string()).await;
    match raw
        .mkdir(
            base,
            &zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all()),
        )
        .await
    {
        Ok(()) | Err(zkc::Error::NodeExists) => {}
        Err(e) => panic!("creating {base}: {e}"),
    }
    for _ in 0..n {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        raw.create(
            &format!("{base}/provider"),
            format!("http://127.0.0.1:{port}").as_bytes(),
            &zkc::CreateMode::EphemeralSequential.with_acls(zkc::Acls::anyone_all()),
        )
        .await
        .unwrap();
    }
    raw
}

/// SIGKILL of a provider under load, the one full scenario (the proxy, the metrics and the
/// other front ends test only what they add to it): one client made once and kept, eight
/// tasks calling through it; the killed provider's node outlives it until its session expires
/// (1.5 s), no call fails meanwhile or after, and a newcomer gets its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_kept_client_rides_out_a_sigkill_and_picks_up_a_newcomer() {
    let base = unique_path("echo-kill");
    let mut providers = [spawn_echo(&base), spawn_echo(&base), spawn_echo(&base)];
    let consumer = consumer(&base, Strategy::Random, 3).await;
    let client = EchoClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT));
    let raw = raw_client(&zk().connect_string()).await;
    let mut load = Load::start(client);
    load.calls(300).await;

    let victim = &mut providers[0];
    victim.process.signal(libc::SIGKILL).unwrap();
    victim.process.wait_exit(Duration::from_secs(5)).unwrap();
    let killed_at = Instant::now();
    assert!(
        raw.check_stat(&victim.node).await.unwrap().is_some(),
        "the ephemeral node outlives the process until its session expires"
    );
    // ZooKeeper expires sessions on tick boundaries: gone after about the session timeout.
    assert!(
        wait_node_gone(&raw, &victim.node, Duration::from_secs(4)).await,
        "the node is not gone after the session timeout"
    );
    let gone_after = killed_at.elapsed();
    assert!(
        gone_after >= Duration::from_millis(1000),
        "gone too early: {gone_after:?}"
    );
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |u| u.len() == 2)
            .await,
        "the consumer still lists the killed provider: {:?}",
        consumer.urls()
    );
    load.calls(300).await;

    let newcomer = spawn_echo(&base);
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |u| u.len() == 3)
            .await
    );
    load.calls(600).await;
    let (answers, failures) = load.finish().await;
    assert_no_failures(&failures);
    assert!(
        answers.get(&server_of(&newcomer.url)).copied().unwrap_or(0) > 50,
        "the newcomer got too few calls: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_call_on_the_default_channel() {
    let base = unique_path("echo-term");
    let mut providers = [spawn_echo(&base), spawn_echo(&base), spawn_echo(&base)];
    let consumer = consumer(&base, Strategy::Random, 3).await;
    // Never-sent requests only: what a draining provider refuses must go elsewhere unseen.
    let mut load = Load::start(EchoClient::new(consumer.channel()));
    load.calls(300).await;
    providers[1].process.signal(libc::SIGTERM).unwrap();
    let status = providers[1]
        .process
        .wait_exit(Duration::from_secs(10))
        .unwrap();
    assert!(status.success(), "{status:?}");
    load.calls(300).await;
    let (answers, failures) = load.finish().await;
    assert_no_failures(&failures);
    assert!(answers.len() >= 2, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_client_streams_run_through_the_channel() {
    let base = unique_path("echo-streams");
    let (a, _) = echo_provider(&base, Duration::ZERO).await;
    let (b, _) = echo_provider(&base, Duration::ZERO).await;
    let consumer = consumer(&base, Strategy::Random, 2).await;
    let mut client = EchoClient::new(consumer.channel());

    let mut stream = client
        .expand(EchoRequest {
            text: "s".into(),
            count: 5,
            interval_ms: 10,
            ..EchoRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(reply) = stream.message().await.unwrap() {
        seen.push(reply.messages);
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);

    // A client stream that is complete at once (replayable) and one still streaming.
    let requests: Vec<EchoRequest> = (0..10)
        .map(|i| EchoRequest {
            text: format!("m{i}"),
            payload: vec![1; 100],
            ..EchoRequest::default()
        })
        .collect();
    let reply = client
        .collect(tokio_stream::iter(requests.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (reply.messages, reply.payload_bytes, reply.text.as_str()),
        (10, 1000, "m9")
    );

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let call = tokio::spawn({
        let mut client = client.clone();
        async move {
            client
                .collect(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        }
    });
    for request in requests {
        tx.send(request).await.unwrap();
    }
    drop(tx);
    let reply = call.await.unwrap().unwrap().into_inner();
    assert_eq!((reply.messages, reply.payload_bytes), (10, 1000));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_buffer_limit_is_sent_once_a_small_one_is_retried() {
    let base = unique_path("echo-buffer");
    // Both providers answer after 2 s; the attempt timeout is 300 ms, so an idempotent call is
    // abandoned and tried on the other one, but only if its body could be kept.
    let (a, a_calls) = echo_provider(&base, Duration::from_secs(2)).await;
    let (b, b_calls) = echo_provider(&base, Duration::from_secs(2)).await;
    let consumer = consumer(&base, Strategy::Random, 2).await;
    let policy = CallPolicy::IDEMPOTENT.with_attempt_timeout(Duration::from_millis(300));
    let mut client = EchoClient::new(consumer.channel_with(policy));
    let total = || a_calls.load(Ordering::Relaxed) + b_calls.load(Ordering::Relaxed);

    let small = client.say(say("small")).await;
    assert!(small.is_err());
    assert_eq!(
        total(),
        2,
        "a small idempotent body is tried on both providers"
    );

    let large = EchoRequest {
        text: "large".into(),
        payload: vec![7; 300 * 1024],
        ..EchoRequest::default()
    };
    let before = total();
    let status = client.say(large).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
    assert_eq!(
        total() - before,
        1,
        "a body over 256 KiB must go to one provider only"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_list_is_unavailable_at_once_and_a_dead_list_fails_fast() {
    let base = unique_path("echo-empty");
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    let mut client = EchoClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT));
    let started = Instant::now();
    let status = client.say(say("nobody")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(status.message().contains(&base), "{}", status.message());

    // Three registered, none alive.
    let _raw = register_dead(&base, 3).await;
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |u| u.len() == 3)
            .await
    );
    let started = Instant::now();
    let status = client.say(say("dead")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    assert!(
        status.message().contains("3 attempt(s)"),
        "{}",
        status.message()
    );
}

/// Calls per server for `calls` sequential calls.
async fn spread(client: &mut EchoClient<BalancedChannel>, calls: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..calls {
        let response = client.say(say("spread")).await.unwrap();
        let answered = response.extensions().get::<Answered>().cloned().unwrap();
        assert_eq!(
            response.into_inner().server,
            server_of(answered.url.as_str())
        );
        *counts.entry(answered.url.to_string()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_round_robin_and_first_spread_as_they_say() {
    let base = unique_path("echo-strategies");
    let mut providers = Vec::new();
    for _ in 0..3 {
        providers.push(echo_provider(&base, Duration::ZERO).await.0);
    }
    let random = spread(
        &mut EchoClient::new(consumer(&base, Strategy::Random, 3).await.channel()),
        600,
    )
    .await;
    assert_eq!(random.len(), 3);
    assert!(
        random.values().all(|n| (120..=280).contains(n)),
        "{random:?}"
    );

    let round_robin = spread(
        &mut EchoClient::new(consumer(&base, Strategy::RoundRobin, 3).await.channel()),
        300,
    )
    .await;
    assert!(round_robin.values().all(|n| *n == 100), "{round_robin:?}");

    let first_consumer = consumer(&base, Strategy::First, 3).await;
    let mut first = EchoClient::new(first_consumer.channel());
    let counts = spread(&mut first, 50).await;
    let head = first_consumer.endpoints()[0].url().to_string();
    assert_eq!(counts.get(&head), Some(&50), "{counts:?}");
    // The first entry stops: the next one takes every call.
    let i = providers
        .iter()
        .position(|p| p.url().to_string() == head)
        .unwrap();
    providers.remove(i).shutdown().await.unwrap();
    assert!(
        first_consumer
            .wait_until(Duration::from_secs(5), |u| u.len() == 2)
            .await
    );
    let next = first_consumer.endpoints()[0].url().to_string();
    let counts = spread(&mut first, 50).await;
    assert_eq!(counts.get(&next), Some(&50), "{counts:?}");
    for p in providers {
        p.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_sends_most_calls_away_from_a_ten_times_slower_provider() {
    let base = unique_path("echo-slow");
    let (fast_a, _) = echo_provider(&base, Duration::from_millis(5)).await;
    let (fast_b, _) = echo_provider(&base, Duration::from_millis(5)).await;
    let (slow, slow_calls) = echo_provider(&base, Duration::from_millis(50)).await;
    let consumer = consumer(&base, Strategy::LeastLoaded, 3).await;
    let load = Load::start(EchoClient::new(consumer.channel()));
    let mut load = load;
    load.calls(800).await;
    let (answers, failures) = load.finish().await;
    assert_no_failures(&failures);
    let total: u64 = answers.values().sum();
    let to_slow = slow_calls.load(Ordering::Relaxed);
    assert!(
        to_slow * 100 < total * 12,
        "the slow provider got {to_slow} of {total} calls (random would give it a third)"
    );
    for p in [fast_a, fast_b, slow] {
        p.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_users_service_and_goes_not_serving_when_the_stop_starts() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let base = unique_path("echo-health");
    let config =
        ProviderConfig::new(zk().connect_string(), &base, 0).drain_grace(Duration::from_secs(2));
    let provider = Provider::serve(config, EchoServer::new(EchoService::default()))
        .await
        .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(provider.url().endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let status = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    let serving = health.check(status("echo.v1.Echo")).await.unwrap();
    assert_eq!(serving.get_ref().status(), ServingStatus::Serving);

    let stop = tokio::spawn(provider.shutdown());
    // During the drain grace the server still answers, and says it is going.
    let mut watch = health
        .watch(status("echo.v1.Echo"))
        .await
        .unwrap()
        .into_inner();
    let went = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(update) = watch.message().await.unwrap() {
            if update.status() == ServingStatus::NotServing {
                return;
            }
        }
    })
    .await;
    assert!(went.is_ok(), "echo.v1.Echo never went NOT_SERVING");
    // A health watch is a call that never ends by itself: the drain would wait for it.
    drop((watch, health));
    stop.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_from_lookup_kept_for_long_follows_the_list() {
    let base = unique_path("kept-lookup");
    let config =
        ProviderConfig::new(zk().connect_string(), &base, 0).drain_grace(Duration::from_millis(50));
    let first = zoorpc::apps::hello::serve(config.clone()).await.unwrap();
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    let mut kept = consumer.lookup().unwrap();
    let hello = |name: &str| zoorpc::proto::HelloRequest { name: name.into() };
    kept.say_hello(hello("a")).await.unwrap();
    // Its provider goes, another comes: the same client reaches the new one.
    let second = zoorpc::apps::hello::serve(config).await.unwrap();
    first.shutdown().await.unwrap();
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |u| u == [second.url().clone()])
            .await
    );
    for _ in 0..20 {
        let reply = kept.say_hello(hello("b")).await.unwrap().into_inner();
        assert_eq!(reply.provider, second.url().as_str());
    }
    second.shutdown().await.unwrap();
}

/// A request over the buffer limit that meets a dead provider (refused: never sent) still goes to
/// a live one: the body is committed only once an attempt starts sending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_request_refused_by_a_dead_provider_goes_to_a_live_one() {
    let base = unique_path("echo-large-refused");
    let (live, live_calls) = echo_provider(&base, Duration::ZERO).await;
    let _raw = register_dead(&base, 3).await;
    let consumer = consumer(&base, Strategy::Random, 4).await;
    let mut client = EchoClient::new(consumer.channel());
    for i in 0..20 {
        let request = EchoRequest {
            text: format!("large {i}"),
            payload: vec![7; 300 * 1024],
            ..EchoRequest::default()
        };
        let reply = client.say(request).await.unwrap().into_inner();
        assert_eq!(reply.payload_bytes, 300 * 1024);
    }
    assert_eq!(live_calls.load(Ordering::Relaxed), 20, "each sent once");
    live.shutdown().await.unwrap();
}

/// What the caller put in a request's metadata reaches the provider whole on every attempt: on a
/// retry after a never-sent first attempt (the attempt's headers are rebuilt from a copy) as on
/// a first attempt (the caller's own map). Repeated keys keep every value in order, binary values
/// survive, and more entries than the channel keeps inline are no different.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_reaches_the_provider_whole_on_a_retry_and_a_first_attempt() {
    type Seen = Arc<std::sync::Mutex<Vec<tonic::metadata::MetadataMap>>>;
    let base = unique_path("echo-metadata");
    // A dead provider first in node order: the first attempt of the first call is refused.
    let _raw = register_dead(&base, 1).await;
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let service = EchoServer::with_interceptor(
        EchoService::new(Duration::ZERO),
        move |request: tonic::Request<()>| {
            record.lock().unwrap().push(request.metadata().clone());
            Ok(request)
        },
    );
    let live = Provider::serve(
        ProviderConfig::new(zk().connect_string(), &base, 0),
        service,
    )
    .await
    .expect("provider");
    let consumer = consumer(&base, Strategy::First, 2).await;
    let mut client = EchoClient::new(consumer.channel());

    let request = || {
        let mut request = tonic::Request::new(say("with metadata"));
        let metadata = request.metadata_mut();
        metadata.insert("x-tenant", "zoo".parse().unwrap());
        metadata.append("x-tag", "first".parse().unwrap());
        metadata.append("x-tag", "second".parse().unwrap());
        metadata.append("x-tag", "third".parse().unwrap());
        metadata.insert_bin(
            "x-blob-bin",
            tonic::metadata::MetadataValue::from_bytes(&[0, 255, 7]),
        );
        metadata.insert("authorization", "Bearer t0k3n".parse().unwrap());
        request
    };
    let expect = |metadata: &tonic::metadata::MetadataMap, attempts: usize| {
        assert_eq!(
            metadata.get("x-tenant").unwrap(),
            "zoo",
            "attempt {attempts}"
        );
        let tags: Vec<_> = metadata
            .get_all("x-tag")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(tags, ["first", "second", "third"], "attempt {attempts}");
        assert_eq!(
            metadata.get_bin("x-blob-bin").unwrap().to_bytes().unwrap(),
            &[0u8, 255, 7][..]
        );
        assert_eq!(metadata.get("authorization").unwrap(), "Bearer t0k3n");
    };

    let retried = client.say(request()).await.expect("retried call");
    assert_eq!(
        retried.extensions().get::<Answered>().unwrap().attempts,
        2,
        "the dead provider first, then the live one"
    );
    let first = client.say(request()).await.expect("second call");
    assert_eq!(
        first.extensions().get::<Answered>().unwrap().attempts,
        1,
        "the dead provider is ejected: the live one answers the first attempt"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    expect(&seen[0], 2);
    expect(&seen[1], 1);
    live.shutdown().await.unwrap();
}

/// A channel kept after its `Consumer` was dropped (a client built in a helper function) still
/// follows the list: a provider that joins later is called, one that left is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_kept_after_its_consumer_is_dropped_follows_the_list() {
    let base = unique_path("echo-orphan");
    let (a, _) = echo_provider(&base, Duration::ZERO).await;
    let mut client = {
        let consumer = consumer(&base, Strategy::Random, 1).await;
        EchoClient::new(consumer.channel())
    };
    let a_server = client
        .say(say("a"))
        .await
        .expect("a answers")
        .into_inner()
        .server;
    let (b, _) = echo_provider(&base, Duration::ZERO).await;
    let b_server = b.local_addr().to_string();
    a.shutdown().await.expect("a stops");
    // Within a few seconds every call goes to b (the list dropped a, found b).
    let what = format!("an answer from b ({b_server}; a was {a_server})");
    eventually(&what, Duration::from_secs(10), || {
        let (mut client, b_server) = (client.clone(), &b_server);
        async move {
            match client.say(say("b?")).await {
                Ok(reply) if reply.get_ref().server == *b_server => Ok(()),
                Ok(reply) => Err(format!("answered by {}", reply.into_inner().server)),
                Err(status) => Err(status.to_string()),
            }
        }
    })
    .await;
    for _ in 0..20 {
        let reply = client.say(say("b")).await.unwrap_or_else(|s| {
            panic!("a call failed with {b_server} registered (a was {a_server}): {s}")
        });
        assert_eq!(reply.into_inner().server, b_server);
    }
    b.shutdown().await.expect("b stops");
}
