//! The caller's deadline (`tonic::Request::set_timeout`) and the per-attempt timeout through the
//! balanced channel: the deadline bounds the whole call, retries and waits for a master
//! included, ends it with `DEADLINE_EXCEEDED` and ejects no one; the default attempt timeout
//! gives way to a caller's deadline, one that was set holds within it; the per-attempt timeout
//! counts from the end of the request, so a client stream longer than it is not cut.

use crate::common;

use std::time::{Duration, Instant};

use common::echo_load::{consumer, echo_provider, say};
use common::zk;
use zoorpc::apps::echo::{EchoClient, EchoRequest};
use zoorpc::consumer::{Backoff, CallPolicy, MasterClient, MasterClientConfig, Strategy};
use zoorpc_testkit::unique_path;

fn with_deadline(text: &str, deadline: Duration) -> tonic::Request<EchoRequest> {
    let mut request = tonic::Request::new(say(text));
    request.set_timeout(deadline);
    request
}

/// Retrying slow providers stops at the caller's deadline: `DEADLINE_EXCEEDED` after about the
/// deadline (it took one whole attempt per provider before), and the retries were made with
/// what remained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_end_at_the_callers_deadline() {
    let base = unique_path("deadline-retries");
    let mut providers = Vec::new();
    for _ in 0..3 {
        providers.push(echo_provider(&base, Duration::from_secs(3)).await);
    }
    let consumer = consumer(&base, Strategy::Random, 3).await;
    // Attempts of 400 ms, retried at once (no backoff, which would leave a random share of
    // the second): the third one is cut by the deadline at 1 s.
    let policy = CallPolicy::IDEMPOTENT
        .with_attempt_timeout(Duration::from_millis(400))
        .with_backoff(Backoff::NONE);
    let mut client = EchoClient::new(consumer.channel_with(policy));
    let started = Instant::now();
    let status = client
        .say(with_deadline("slow", Duration::from_secs(1)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1800),
        "{took:?}"
    );
    assert!(status.message().contains("deadline"), "{status}");
    let handled: u64 = providers
        .iter()
        .map(|(_, calls)| calls.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!(handled, 3, "one attempt per provider within the deadline");
    for (provider, _) in providers {
        provider.shutdown().await.unwrap();
    }
}

/// `Consumer::call` is the balanced channel's call: the caller's deadline bounds the whole
/// call (`DEADLINE_EXCEEDED` at the deadline, not one more attempt per provider), ejects no one,
/// and the error names the provider. (`call` once had a retry loop of its own that gave each
/// attempt the deadline again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_call_ends_at_the_callers_deadline() {
    let base = unique_path("deadline-call");
    let mut providers = Vec::new();
    for _ in 0..3 {
        providers.push(echo_provider(&base, Duration::from_secs(3)).await);
    }
    let consumer = consumer(&base, Strategy::Random, 3).await;
    let started = Instant::now();
    let error = consumer
        .call(CallPolicy::IDEMPOTENT, |channel| async move {
            EchoClient::new(channel)
                .say(with_deadline("slow", Duration::from_secs(1)))
                .await
        })
        .await
        .unwrap_err();
    let took = started.elapsed();
    let status = error.status().expect("a call's failure carries its status");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{error}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1800),
        "{took:?}"
    );
    assert!(error.to_string().contains("http://127.0.0.1:"), "{error}");
    assert!(
        consumer.endpoints().iter().all(|e| !e.is_ejected()),
        "a caller's deadline ejected a provider"
    );
    for (provider, _) in providers {
        provider.shutdown().await.unwrap();
    }
}

/// A deadline that passes is the caller's limit: the provider is not ejected, the next calls
/// still reach it. An attempt timeout that was set applies within any deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_ejects_no_one_and_the_attempt_timeout_still_applies() {
    let base = unique_path("deadline-eject");
    let (slow, _) = echo_provider(&base, Duration::from_millis(700)).await;
    let consumer = consumer(&base, Strategy::Random, 1).await;
    let short = CallPolicy::DEFAULT.with_attempt_timeout(Duration::from_millis(300));
    let mut client = EchoClient::new(consumer.channel_with(short));

    let status = client
        .say(with_deadline("short", Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("deadline"), "{status}");
    assert!(
        consumer.endpoints().iter().all(|e| !e.is_ejected()),
        "a caller's deadline ejected the provider"
    );
    // A 2 s deadline, 700 ms of work, a 300 ms per-attempt timeout: the attempt timeout ends it.
    let started = Instant::now();
    let status = client
        .say(with_deadline("long", Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
    assert!(status.message().contains("no answer"), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // With a per-attempt timeout longer than the method, the deadline is what bounds it.
    let long = CallPolicy::DEFAULT.with_attempt_timeout(Duration::from_secs(1));
    let mut patient = EchoClient::new(consumer.channel_with(long));
    let reply = patient
        .say(with_deadline("patient", Duration::from_secs(2)))
        .await
        .expect("answered within the attempt timeout and the deadline");
    assert_eq!(reply.get_ref().text, "patient");
    slow.shutdown().await.unwrap();
}

/// The default attempt timeout (5 s) gives way to a caller's longer deadline: a 6.5 s method
/// called with a 10 s deadline is answered, and its provider is not ejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_longer_than_the_default_attempt_timeout_lets_a_slow_method_answer() {
    let base = unique_path("deadline-long");
    let (slow, _) = echo_provider(&base, Duration::from_millis(6500)).await;
    let consumer = consumer(&base, Strategy::Random, 1).await;
    let mut client = EchoClient::new(consumer.channel());
    let reply = client
        .say(with_deadline("slow", Duration::from_secs(10)))
        .await
        .expect("answered within the caller's deadline");
    assert_eq!(reply.get_ref().text, "slow");
    assert!(
        consumer.endpoints().iter().all(|e| !e.is_ejected()),
        "a slow provider that answered within the deadline was ejected"
    );
    slow.shutdown().await.unwrap();
}

/// Wait-for-ready (opt-in per policy): a call made before any provider registers waits for one
/// within its deadline and is answered once one registers; with none it ends
/// `DEADLINE_EXCEEDED` at the deadline; without the option it fails at once as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_ready_waits_for_a_provider_within_the_deadline() {
    let base = unique_path("wait-for-ready");
    let consumer = consumer(&base, Strategy::Random, 0).await;
    let waiting = CallPolicy::DEFAULT.with_wait_for_ready();

    // Without the option: UNAVAILABLE at once, naming the base path.
    let started = Instant::now();
    let status = EchoClient::new(consumer.channel())
        .say(with_deadline("now", Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    assert!(status.message().contains(&base), "{status}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    // With it and no provider: DEADLINE_EXCEEDED at the deadline, saying what it waited for.
    let started = Instant::now();
    let status = EchoClient::new(consumer.channel_with(waiting))
        .say(with_deadline("nobody", Duration::from_secs(1)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
    assert!(status.message().contains(&base), "{status}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "{took:?}"
    );

    // With it, and a provider registering while the call waits: answered.
    let mut client = EchoClient::new(consumer.channel_with(waiting));
    let mut call = tokio::spawn(async move {
        client
            .say(with_deadline("later", Duration::from_secs(15)))
            .await
    });
    let early = tokio::time::timeout(Duration::from_millis(500), &mut call).await;
    assert!(
        early.is_err(),
        "the call ended before any provider registered: {early:?}"
    );
    let (provider, _) = echo_provider(&base, Duration::ZERO).await;
    let reply = tokio::time::timeout(Duration::from_secs(15), call)
        .await
        .expect("answered within its deadline")
        .expect("call task")
        .expect("answered by the provider that registered");
    assert_eq!(reply.get_ref().text, "later");
    provider.shutdown().await.unwrap();
}

/// A server stream ends by the caller's deadline: the messages sent before it arrive, then
/// `DEADLINE_EXCEEDED` (a stream of 60 messages 100 ms apart under a 1 s deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stream_ends_at_the_callers_deadline() {
    let base = unique_path("deadline-server-stream");
    let (provider, _) = echo_provider(&base, Duration::ZERO).await;
    let consumer = consumer(&base, Strategy::Random, 1).await;
    let mut client = EchoClient::new(consumer.channel());
    let mut request = tonic::Request::new(EchoRequest {
        text: "s".into(),
        count: 60,
        interval_ms: 100,
        ..EchoRequest::default()
    });
    request.set_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let mut stream = client.expand(request).await.expect("headers").into_inner();
    let mut received = 0;
    let ended = loop {
        match stream.message().await {
            Ok(Some(_)) => received += 1,
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    let took = started.elapsed();
    let status = ended.expect("the stream must not end normally past the deadline");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
    assert!(took < Duration::from_millis(1600), "{took:?}");
    assert!((5..=11).contains(&received), "{received} messages");
    provider.shutdown().await.unwrap();
}

/// A client stream that takes longer than the per-attempt timeout is answered: the timeout
/// counts from its last message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stream_longer_than_the_attempt_timeout_is_answered() {
    let base = unique_path("deadline-stream");
    let (provider, _) = echo_provider(&base, Duration::ZERO).await;
    let consumer = consumer(&base, Strategy::Random, 1).await;
    let policy = CallPolicy::IDEMPOTENT.with_attempt_timeout(Duration::from_millis(300));
    let mut client = EchoClient::new(consumer.channel_with(policy));
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let call = tokio::spawn(async move {
        client
            .collect(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    for i in 0..8 {
        // Paced by the test: the stream lasts about 1.2 s, four times the attempt timeout.
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.send(EchoRequest {
            text: format!("m{i}"),
            ..EchoRequest::default()
        })
        .await
        .expect("the call is still open");
    }
    drop(tx);
    let reply = call.await.unwrap().expect("answered").into_inner();
    assert_eq!((reply.messages, reply.text.as_str()), (8, "m7"));
    provider.shutdown().await.unwrap();
}

/// Waiting for a master ends at the caller's deadline, not the 15 s switch-over bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_master_ends_at_the_callers_deadline() {
    let path = format!("{}/Echo:1.0.0", unique_path("deadline-master"));
    let master = MasterClient::connect_with(MasterClientConfig::new(zk().connect_string(), &path))
        .await
        .expect("master client");
    let mut client = EchoClient::new(master.channel());
    let started = Instant::now();
    let status = client
        .say(with_deadline("anyone?", Duration::from_secs(1)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
