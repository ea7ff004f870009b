//! One lifecycle, both servers: a provider and an active/standby server take the same settings
//! and entry points (`serve_with` and `Services` for several services) and stop the same way:
//! NOT_SERVING, withdraw from ZooKeeper, the drain grace (still answering), then closed.

use crate::common;

use std::time::Duration;

use common::{raw_client, zk};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use zoorpc::apps::echo::{EchoClient, EchoRequest, EchoServer, EchoService};
use zoorpc::apps::hello::Greeter;
use zoorpc::proto::{HelloRequest, HelloServiceClient, HelloServiceServer};
use zoorpc::provider::{
    HaServer, HaServerConfig, Provider, ProviderConfig, Services, is_standby_refusal,
};
use zoorpc::registry::Role;
use zoorpc_testkit::unique_path;

const SETTLE: Duration = Duration::from_secs(10);

/// A drain grace long enough for a few calls on a loaded machine.
const GRACE: Duration = Duration::from_secs(3);

async fn connect(endpoint: String) -> Channel {
    tonic::transport::Endpoint::from_shared(endpoint)
        .expect("endpoint")
        .connect()
        .await
        .expect("the server accepts connections")
}

async fn health(channel: &Channel, service: &str) -> ServingStatus {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    HealthClient::new(channel.clone())
        .check(request)
        .await
        .expect("health answers")
        .into_inner()
        .status()
}

/// Waits until ZooKeeper reports `path` deleted.
async fn deleted(raw: &zookeeper_client::Client, path: &str) -> impl Future<Output = ()> {
    let (stat, watch) = raw.check_and_watch_stat(path).await.expect("watch");
    assert!(stat.is_some(), "{path} exists before the stop");
    let path = path.to_owned();
    async move {
        let event = tokio::time::timeout(SETTLE, watch.changed())
            .await
            .unwrap_or_else(|_| panic!("{path} was not deleted within {SETTLE:?}"));
        assert_eq!(event.event_type, zookeeper_client::EventType::NodeDeleted);
    }
}

/// Waits for `stop` (begun at `began`): a clean stop, not before the drain grace passed.
async fn stops_after_the_grace(
    stop: tokio::task::JoinHandle<Result<(), zoorpc::provider::Error>>,
    began: tokio::time::Instant,
) {
    let stopped = tokio::time::timeout(GRACE + SETTLE, stop)
        .await
        .expect("the stop ends after the grace and the drain");
    stopped.expect("task").expect("a clean stop");
    assert!(
        began.elapsed() >= GRACE,
        "stopped before its drain grace passed"
    );
}

fn say(text: &str) -> EchoRequest {
    EchoRequest {
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_serving_several_services_reports_each_and_deregisters_before_it_closes() {
    let base = unique_path("several-services");
    let config = ProviderConfig::new(zk().connect_string(), &base, 0).drain_grace(GRACE);
    let provider = Provider::serve_with(config, |url| {
        Services::new()
            .add_service(EchoServer::new(EchoService::default()))
            .add_service(HelloServiceServer::new(Greeter::new(url.as_str())))
    })
    .await
    .expect("the provider starts");
    let channel = connect(provider.url().endpoint()).await;
    for name in ["", "echo.v1.Echo", "hello.v1.HelloService"] {
        assert_eq!(
            health(&channel, name).await,
            ServingStatus::Serving,
            "{name:?}"
        );
    }
    let hello = HelloServiceClient::new(channel.clone())
        .say_hello(HelloRequest { name: "zoo".into() })
        .await
        .expect("HelloService answers")
        .into_inner();
    assert_eq!(hello.provider, provider.url().as_str());
    let node = provider.node_path().expect("registered");
    let raw = raw_client(&zk().connect_string()).await;
    let node_deleted = deleted(&raw, &node).await;

    let began = tokio::time::Instant::now();
    let stop = tokio::spawn(provider.shutdown());
    node_deleted.await;
    // Deregistered, in the drain grace: every name NOT_SERVING, calls still answered.
    for name in ["", "echo.v1.Echo", "hello.v1.HelloService"] {
        assert_eq!(
            health(&channel, name).await,
            ServingStatus::NotServing,
            "{name:?}"
        );
    }
    EchoClient::new(channel.clone())
        .say(say("late"))
        .await
        .expect("a call in the drain grace is answered");
    drop(channel);
    stops_after_the_grace(stop, began).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_server_resigns_then_refuses_during_its_drain_grace_then_closes() {
    let path = format!("{}/Echo:1.0.0", unique_path("ha-grace"));
    let config = HaServerConfig::new(zk().connect_string(), &path, 0)
        .session_timeout(Duration::from_secs(2))
        .drain_grace(GRACE);
    let server = HaServer::serve(config, EchoServer::new(EchoService::default()))
        .await
        .expect("the HA server starts");
    let election = server.election().expect("contending");
    assert!(
        election.wait_for(SETTLE, Role::is_master).await.is_some(),
        "never master: {}",
        server.role()
    );
    let address = server.address().to_owned();
    let mut client = EchoClient::new(connect(format!("http://{address}")).await);
    client.say(say("early")).await.expect("the master answers");
    let raw = raw_client(&zk().connect_string()).await;
    let node_deleted = deleted(&raw, &path).await;

    let began = tokio::time::Instant::now();
    let stop = tokio::spawn(server.shutdown());
    node_deleted.await;
    // Resigned, in the drain grace: the listener is open and answers with the standby refusal,
    // which a client retries on the next master (a closed port would be a transport error).
    let refused = client
        .say(say("late"))
        .await
        .expect_err("a resigned server runs no handler");
    assert!(is_standby_refusal(&refused), "{refused:?}");
    drop(client);
    stops_after_the_grace(stop, began).await;
    assert!(
        EchoClient::connect(format!("http://{address}"))
            .await
            .is_err(),
        "still accepting connections after the stop"
    );
}
