//! The strategies spread calls as they say.

use super::*;

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

/// The slow provider is 40 times slower than the others: on a loaded machine (a full test run,
/// six tests at a time on two cores) the fast ones' latencies grow with the CPU's queue, and
/// a provider only ten times slower was once seen within 1.6 times of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_sends_most_calls_away_from_a_much_slower_provider() {
    let base = unique_path("echo-slow");
    let (fast_a, _) = echo_provider(&base, Duration::from_millis(5)).await;
    let (fast_b, _) = echo_provider(&base, Duration::from_millis(5)).await;
    let (slow, slow_calls) = echo_provider(&base, Duration::from_millis(200)).await;
    let consumer = consumer(&base, Strategy::LeastLoaded, 3).await;
    let load = Load::start(EchoClient::new(consumer.channel()));
    let mut load = load;
    load.calls(800).await;
    let (answers, failures) = load.finish().await;
    assert_no_failures(&failures);
    let total: u64 = answers.values().sum();
    let to_slow = slow_calls.load(Ordering::Relaxed);
    assert!(
        to_slow * 100 < total * 15,
        "the slow provider got {to_slow} of {total} calls (random would give it a third)"
    );
    for p in [fast_a, fast_b, slow] {
        p.shutdown().await.unwrap();
    }
}
