//! Providers as callers see them: spread and weights of the random pick, gRPC health, a taken port.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_providers_each_get_at_least_a_fifth_of_300_calls() {
    let base = unique_path("spread");
    let providers = [
        provider(&base).await,
        provider(&base).await,
        provider(&base).await,
    ];
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert_eq!(consumer.urls().len(), 3);
    let mut counts = std::collections::HashMap::new();
    for i in 0..300 {
        let answer = consumer.say_hello(&format!("n{i}")).await.unwrap();
        assert_eq!(answer.value.message, format!("Hello n{i}!"));
        assert_eq!(answer.value.provider, answer.url.as_str());
        *counts.entry(answer.url.to_string()).or_insert(0) += 1;
    }
    for p in &providers {
        let n = counts.get(p.url().as_str()).copied().unwrap_or(0);
        assert!(n >= 60, "{} got {n} of 300 calls: {counts:?}", p.url());
    }
    // lookup(): a plain generated client on a random live provider's reusable channel.
    let mut via_lookup = std::collections::HashSet::new();
    for _ in 0..60 {
        let mut client = consumer.lookup().unwrap();
        let reply = client
            .say_hello(zoorpc::proto::HelloRequest { name: "l".into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.message, "Hello l!");
        via_lookup.insert(reply.provider);
    }
    assert_eq!(via_lookup.len(), 3, "{via_lookup:?}");
    for p in providers {
        p.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = zoorpc::apps::hello::serve(ProviderConfig::new(
        zk().connect_string(),
        unique_path("port"),
        port,
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&port.to_string()) && text.contains("already in use"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_serve_grpc_health_for_hello_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let base = unique_path("health");
    let p = provider(&base).await;
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |urls| urls.len() == 1)
            .await
    );
    let channel = tonic::transport::Endpoint::from_shared(consumer.urls()[0].endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "hello.v1.HelloService".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.get_ref().status(), ServingStatus::Serving);
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_in_the_url_steer_the_random_pick() {
    let base = unique_path("weights");
    let weighted =
        |w: &str| ProviderConfig::new(zk().connect_string(), &base, 0).metadata("weight", w);
    let heavy = zoorpc::apps::hello::serve(weighted("300")).await.unwrap();
    let light = zoorpc::apps::hello::serve(weighted("100")).await.unwrap();
    assert!(heavy.url().as_str().ends_with("?weight=300"));
    let consumer = Consumer::connect(&zk().connect_string(), &base)
        .await
        .unwrap();
    assert_eq!(consumer.urls().len(), 2);
    let mut to_heavy = 0;
    for _ in 0..400 {
        let answer = consumer.say_hello("w").await.unwrap();
        // The reply names the provider by its registered URL, metadata included.
        assert_eq!(answer.value.provider, answer.url.as_str());
        if answer.url == *heavy.url() {
            to_heavy += 1;
        }
    }
    assert!(
        (260..=340).contains(&to_heavy),
        "heavy got {to_heavy} of 400"
    );
    heavy.shutdown().await.unwrap();
    light.shutdown().await.unwrap();
}
