//! What a call through the channel carries: streams, bodies over and under the buffer limit, metadata on every attempt, and an empty or dead list.

use super::*;

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
