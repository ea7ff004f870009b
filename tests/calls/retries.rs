//! Retries as gRFC A6 describes them, through the balanced channel against real tonic
//! providers: the status codes a policy retries, and the backoff with jitter between retries of
//! attempts that may have been processed.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::echo_load::{say, serve_echo};
use common::zk;
use tonic::{Code, Request, Response, Status, Streaming};
use zoorpc::apps::echo::{Echo, EchoClient, EchoReply, EchoRequest};
use zoorpc::consumer::{
    Backoff, CallPolicy, Consumer, ConsumerConfig, EjectionPolicy, RetryableCodes, Strategy,
};
use zoorpc::provider::Provider;
use zoorpc_testkit::unique_path;

/// An echo whose `Say` answers `code` (`Ok`: the text), noting when each call arrived.
#[derive(Clone)]
struct Answering {
    code: Code,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

type ReplyStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<EchoReply, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for Answering {
    async fn say(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Instant::now());
        match self.code {
            Code::Ok => Ok(Response::new(EchoReply {
                text: request.into_inner().text,
                ..EchoReply::default()
            })),
            code => Err(Status::new(code, "answered by the test's provider")),
        }
    }

    type ExpandStream = ReplyStream;

    async fn expand(&self, _: Request<EchoRequest>) -> Result<Response<ReplyStream>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn collect(
        &self,
        _: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

/// A provider of `base` answering `code`, and when its calls arrived.
async fn provider(base: &str, code: Code) -> (Provider, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let service = Answering {
        code,
        arrivals: arrivals.clone(),
    };
    (serve_echo(base, service).await, arrivals)
}

/// A consumer of `base` once it lists `n` providers, picking the first in node order (the
/// order they registered in); answers never eject (this test is about retries).
async fn first_consumer(base: &str, n: usize) -> Consumer {
    let mut config = ConsumerConfig::new(zk().connect_string(), base).strategy(Strategy::First);
    config.ejection = EjectionPolicy::DEFAULT.with_consecutive_unavailable(0);
    let consumer = Consumer::connect_with(config).await.expect("consumer");
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |u| u.len() == n)
            .await
    );
    consumer
}

/// The retryable codes are the policy's: `RESOURCE_EXHAUSTED` from the first provider is
/// returned as it is by default (only `UNAVAILABLE` is retried), and retried on the second
/// provider when the policy lists it; `UNAVAILABLE` is not retried when the policy lists
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retryable_status_codes_are_the_policys() {
    let base = unique_path("retry-codes");
    let (exhausted, _) = provider(&base, Code::ResourceExhausted).await;
    let (ok, _) = provider(&base, Code::Ok).await;
    let consumer = first_consumer(&base, 2).await;

    let mut default = EchoClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT));
    let status = default.say(say("a")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");

    let codes = RetryableCodes::of(&[Code::Unavailable, Code::ResourceExhausted]);
    let policy = CallPolicy::IDEMPOTENT.with_retryable(codes);
    let mut retrying = EchoClient::new(consumer.channel_with(policy));
    let reply = retrying.say(say("b")).await.expect("retried on the other");
    assert_eq!(reply.get_ref().text, "b");
    // `Consumer::call` keeps the same policy.
    let ask = |channel| async move { EchoClient::new(channel).say(say("e")).await };
    let refused = consumer
        .call(CallPolicy::IDEMPOTENT, ask)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("answered by the test"),
        "{refused}"
    );
    let answer = consumer
        .call(policy, ask)
        .await
        .expect("retried on the other");
    assert_eq!(answer.attempts, 2);
    exhausted.shutdown().await.unwrap();
    ok.shutdown().await.unwrap();

    let base = unique_path("retry-codes-none");
    let (unavailable, _) = provider(&base, Code::Unavailable).await;
    let (ok, calls) = provider(&base, Code::Ok).await;
    let consumer = first_consumer(&base, 2).await;
    let never = CallPolicy::IDEMPOTENT.with_retryable(RetryableCodes::NONE);
    let mut client = EchoClient::new(consumer.channel_with(never));
    let status = client.say(say("c")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(
        calls.lock().unwrap().is_empty(),
        "retried although no code is retryable"
    );
    let mut default = EchoClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT));
    default
        .say(say("d"))
        .await
        .expect("UNAVAILABLE retried by default");
    unavailable.shutdown().await.unwrap();
    ok.shutdown().await.unwrap();
}

/// A retry of an attempt that may have been processed waits a random time up to the backoff's
/// ceiling (gRFC A6: `random(0, initial)` for the first retry): over 12 calls the pauses stay
/// under the ceiling and are spread across it, not all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_with_jitter() {
    let base = unique_path("retry-backoff");
    let (first, first_arrivals) = provider(&base, Code::Unavailable).await;
    let (second, second_arrivals) = provider(&base, Code::Unavailable).await;
    let consumer = first_consumer(&base, 2).await;
    let ceiling = Duration::from_millis(400);
    let policy = CallPolicy::IDEMPOTENT.with_backoff(Backoff::new(ceiling, ceiling));
    let mut client = EchoClient::new(consumer.channel_with(policy));
    for i in 0..12 {
        let status = client.say(say(&format!("{i}"))).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status}");
    }
    let first_arrivals = first_arrivals.lock().unwrap().clone();
    let second_arrivals = second_arrivals.lock().unwrap().clone();
    assert_eq!((first_arrivals.len(), second_arrivals.len()), (12, 12));
    let pauses: Vec<Duration> = first_arrivals
        .iter()
        .zip(&second_arrivals)
        .map(|(a, b)| b.saturating_duration_since(*a))
        .collect();
    let (shortest, longest) = (
        pauses.iter().min().copied().unwrap_or_default(),
        pauses.iter().max().copied().unwrap_or_default(),
    );
    // Room for a loaded machine above the ceiling; a spread of 100 ms among 12 uniform draws
    // over 400 ms fails with a chance below 1e-6.
    assert!(longest < ceiling + Duration::from_millis(200), "{pauses:?}");
    assert!(
        longest - shortest >= Duration::from_millis(100),
        "{pauses:?}"
    );
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
}
