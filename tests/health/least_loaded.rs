//! Least-loaded picking: a paused provider has its share back within two seconds, none is
//! starved at start-up, weights are honoured.

use std::time::{Duration, Instant};

use zoorpc::apps::echo::EchoClient;
use zoorpc::consumer::Strategy;
use zoorpc_testkit::unique_path;

use crate::common::echo_load::server_of;
use crate::traffic::{Traffic, consumer, share_of, shares, spawn_echo_with};

/// After a 500 ms pause, least-loaded gives the provider a fair share again within 1.5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_gives_a_paused_provider_its_share_back_within_two_seconds() {
    let base = unique_path("health-ll-pause");
    let paused = spawn_echo_with(&base, &[]);
    let _others = [spawn_echo_with(&base, &[]), spawn_echo_with(&base, &[])];
    let consumer = consumer(&base, Strategy::LeastLoaded, 3).await;
    let mut traffic = Traffic::start(EchoClient::new(consumer.channel()), 8);
    let server = server_of(&paused.url);
    let warm = traffic
        .first_from(&server, Instant::now(), Duration::from_secs(10))
        .await;
    assert!(
        warm.is_some(),
        "the provider never answered before the pause"
    );

    paused.process.pause().expect("SIGSTOP");
    tokio::time::sleep(Duration::from_millis(500)).await; // the pause's length
    paused.process.resume().expect("SIGCONT");
    let resumed = Instant::now();
    let (answers, failures) = traffic
        .window(
            resumed + Duration::from_millis(1_500),
            resumed + Duration::from_millis(2_500),
        )
        .await;
    traffic.finish().await;
    assert!(failures.is_empty(), "{:?}", failures.first());
    let share = share_of(&answers, &server);
    assert!(
        share > 0.15,
        "1.5 s after its 500 ms pause the provider got {:.1} % of the calls (a fair share is \
         33 %): {}",
        share * 100.0,
        shares(&answers)
    );
}

/// A fresh least-loaded consumer over three providers gives each a share from its first
/// seconds (the first connections' slow answers do not starve one); three consumers in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_starves_no_provider_at_start_up() {
    let base = unique_path("health-ll-start");
    let providers = [
        spawn_echo_with(&base, &[]),
        spawn_echo_with(&base, &[]),
        spawn_echo_with(&base, &[]),
    ];
    for round in 0..3 {
        let consumer = consumer(&base, Strategy::LeastLoaded, 3).await;
        let mut traffic = Traffic::start(EchoClient::new(consumer.channel()), 8);
        let started = Instant::now();
        let (answers, failures) = traffic
            .window(started, started + Duration::from_secs(2))
            .await;
        traffic.finish().await;
        assert!(failures.is_empty(), "{:?}", failures.first());
        for p in &providers {
            let share = share_of(&answers, &server_of(&p.url));
            assert!(
                share > 0.10,
                "round {round}: {} got {:.1} % of the first 2 s's calls: {}",
                p.url,
                share * 100.0,
                shares(&answers)
            );
        }
    }
}

/// Least-loaded honours `?weight=`: a weight-300 provider next to a weight-100 one gets about
/// three quarters of the calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_loaded_honours_weights() {
    let base = unique_path("health-ll-weights");
    let heavy = spawn_echo_with(&base, &["--weight", "300"]);
    let _light = spawn_echo_with(&base, &["--weight", "100"]);
    let consumer = consumer(&base, Strategy::LeastLoaded, 2).await;
    let mut traffic = Traffic::start(EchoClient::new(consumer.channel()), 8);
    let started = Instant::now();
    let (answers, failures) = traffic
        .window(
            started + Duration::from_millis(500),
            started + Duration::from_millis(2_500),
        )
        .await;
    traffic.finish().await;
    assert!(failures.is_empty(), "{:?}", failures.first());
    let heavy_server = server_of(heavy.url.split('?').next().unwrap_or_default());
    let share = share_of(&answers, &heavy_server);
    assert!(
        (0.62..0.88).contains(&share),
        "the weight-300 provider got {:.1} % of the calls (75 % wanted): {}",
        share * 100.0,
        shares(&answers)
    );
}
