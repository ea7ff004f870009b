//! Kept channels and clients follow the list: a SIGKILL, a SIGTERM under load, a newcomer, health, a dropped consumer.

use super::*;

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
