//! `zoorpc xds` as an xDS client sees it, over the wire (an ADS stream of tonic's own, the
//! protocol types from `envoy-types`): pushes on every change of the registry, ACK, NACK (no
//! resend loop), a reconnecting client served at once, a `--master` cluster following the master
//! node, the resources' shape, `--metrics`, and ZooKeeper out of reach (the last assignment kept
//! and said to be so); `shared_watch`: names on one base path share one ZooKeeper watch;
//! `names`: names released, refused at once, given twice. The
//! stock client (Python grpcio) is `tests/calls/xds.rs`.

mod names;
mod shared_watch;

use crate::common;

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, route};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status;
use prost::{Message, Name};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::prometheus::{free_addr, scrape, value, wait_value};
use common::{raw_client, runtime, spawn_provider, start_xds, zk};
use zoorpc_testkit::{ZkServer, unique_path};

/// One ADS stream to `zoorpc xds`.
struct Ads {
    requests: mpsc::Sender<DiscoveryRequest>,
    responses: tonic::Streaming<DiscoveryResponse>,
}

impl Ads {
    async fn open(address: &str) -> Ads {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{address}"))
            .await
            .unwrap();
        let (requests, rx) = mpsc::channel(16);
        let responses = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Ads {
            requests,
            responses,
        }
    }

    /// Sends a request for `names` of type `T`, acknowledging `last` (or rejecting it with
    /// `nack`).
    async fn ask<T: Name>(
        &self,
        names: &[&str],
        last: Option<&DiscoveryResponse>,
        nack: Option<&str>,
    ) {
        let request = DiscoveryRequest {
            type_url: T::type_url(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            version_info: last.map(|r| r.version_info.clone()).unwrap_or_default(),
            response_nonce: last.map(|r| r.nonce.clone()).unwrap_or_default(),
            error_detail: nack.map(|message| Status {
                code: 3,
                message: message.to_owned(),
                details: Vec::new(),
            }),
            ..Default::default()
        };
        self.requests.send(request).await.unwrap();
    }

    /// The next response within `within`, if any.
    async fn next(&mut self, within: Duration) -> Option<DiscoveryResponse> {
        match tokio::time::timeout(within, self.responses.message()).await {
            Ok(Ok(Some(response))) => Some(response),
            Ok(other) => panic!("the ADS stream ended: {other:?}"),
            Err(_) => None,
        }
    }

    /// Reads responses (acknowledging each) until one carries the assignment `name` with the
    /// endpoints on `ports` (sorted); returns it.
    async fn until_ports(
        &mut self,
        names: &[&str],
        name: &str,
        ports: &[u16],
    ) -> DiscoveryResponse {
        let mut seen = Vec::new();
        loop {
            let Some(response) = self.next(Duration::from_secs(10)).await else {
                panic!("no assignment of {name} with ports {ports:?}; seen {seen:?}");
            };
            self.ask::<ClusterLoadAssignment>(names, Some(&response), None)
                .await;
            let got = assignment_ports(&response, name);
            if got.as_deref() == Some(ports) {
                return response;
            }
            seen.push(got);
        }
    }
}

/// The decoded resources of a response.
fn decoded<T: Message + Default>(response: &DiscoveryResponse) -> Vec<T> {
    response
        .resources
        .iter()
        .map(|any| T::decode(any.value.as_slice()).unwrap())
        .collect()
}

/// The sorted endpoint ports of the assignment `name` in `response`, if it holds one.
fn assignment_ports(response: &DiscoveryResponse, name: &str) -> Option<Vec<u16>> {
    let assignment = decoded::<ClusterLoadAssignment>(response)
        .into_iter()
        .find(|a| a.cluster_name == name)?;
    let mut ports: Vec<u16> = assignment
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(e)) => e.address.clone(),
            _ => None,
        })
        .filter_map(|a| match a.address {
            Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(s)) => {
                match s.port_specifier {
                    Some(envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(p)) => Some(p as u16),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    ports.sort();
    Some(ports)
}

#[test]
fn ads_pushes_every_change_acks_nacks_and_serves_a_client_back_at_once() {
    let connect = zk().connect_string();
    let base = unique_path("xds-ads");
    let metrics = free_addr();
    let service = format!("hello={base}");
    let (mut xds, address) = start_xds(
        &connect,
        &["--service", &service, "--metrics", &metrics],
        None,
    );
    runtime().block_on(async {
        let names = ["hello"];
        let mut ads = Ads::open(&address).await;
        ads.ask::<ClusterLoadAssignment>(&names, None, None).await;
        ads.until_ports(&names, "hello", &[]).await;

        // A provider joins: pushed.
        let a = spawn_provider(&connect, &base, 0, &[]);
        let pushed = ads.until_ports(&names, "hello", &[a.port]).await;
        // Rejected: logged and counted, never sent again in a loop.
        ads.ask::<ClusterLoadAssignment>(&names, Some(&pushed), Some("rejected by the test"))
            .await;
        assert!(ads.next(Duration::from_secs(1)).await.is_none());
        let nacks = "zoorpc_xds_nacks_total{type=\"endpoints\"}";
        assert_eq!(value(&scrape(&metrics), nacks), Some(1.0));
        // The next change is the next response.
        let b = spawn_provider(&connect, &base, 0, &[]);
        let mut both = vec![a.port, b.port];
        both.sort();
        let last = ads.until_ports(&names, "hello", &both).await;
        assert_ne!(last.nonce, pushed.nonce);
        assert_ne!(last.version_info, pushed.version_info);

        // A client back on a new stream, naming what it had: the current state at once.
        let mut again = Ads::open(&address).await;
        again
            .ask::<ClusterLoadAssignment>(&names, Some(&last), None)
            .await;
        let now = again.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(assignment_ports(&now, "hello"), Some(both.clone()));

        let body = scrape(&metrics);
        assert_eq!(value(&body, "zoorpc_xds_clients"), Some(2.0), "{body}");
        assert!(value(&body, "zoorpc_xds_pushes_total{type=\"endpoints\"}").unwrap() >= 4.0);
        assert_eq!(value(&body, "zoorpc_xds_zookeeper_connected"), Some(1.0));
    });
    xds.signal(libc::SIGTERM).unwrap();
    xds.wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();
}

/// The first response to a request for `names` of type `T` on a new stream, decoded.
async fn first_answer<T: Name + Message + Default>(address: &str, names: &[&str]) -> Vec<T> {
    let mut ads = Ads::open(address).await;
    ads.ask::<T>(names, None, None).await;
    decoded::<T>(&ads.next(Duration::from_secs(5)).await.unwrap())
}

#[test]
fn ads_serves_the_resources_grpc_asks_for_and_follows_a_master() {
    let connect = zk().connect_string();
    let election = format!("{}/Hello:1.0.0", unique_path("xds-master"));
    let (_xds, address) = start_xds(
        &connect,
        &[
            "--service",
            "hello=/hello",
            "--master",
            &format!("boss={election}"),
        ],
        None,
    );
    let rt = runtime();
    let raw = rt.block_on(raw_client(&connect));
    rt.block_on(async {
        // The route retries UNAVAILABLE; the listener routes by RDS; a wildcard gets every name.
        let routes = first_answer::<RouteConfiguration>(&address, &["hello"]).await;
        let Some(route::Action::Route(action)) = &routes[0].virtual_hosts[0].routes[0].action
        else {
            panic!("{routes:?}");
        };
        let retry = action.retry_policy.as_ref().unwrap();
        assert_eq!(retry.retry_on, "unavailable");
        let retries = retry.num_retries.as_ref().unwrap().value;
        assert_eq!(retries, zoorpc::apps::xds::RETRIES);
        let listeners = first_answer::<Listener>(&address, &[]).await;
        let mut listed: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        listed.sort();
        assert_eq!(listed, ["boss", "hello"]);
        assert!(listeners.iter().all(|l| l.api_listener.is_some()));
        let clusters = first_answer::<Cluster>(&address, &["boss"]).await;
        assert_eq!(clusters[0].name, "boss");
        assert!(clusters[0].outlier_detection.is_some());

        // The master's cluster: no master yet, then the node's address, then a new one.
        let boss = ["boss"];
        let mut master = Ads::open(&address).await;
        master.ask::<ClusterLoadAssignment>(&boss, None, None).await;
        master.until_ports(&boss, "boss", &[]).await;
        let open = |mode: zookeeper_client::CreateMode| {
            mode.with_acls(zookeeper_client::Acls::anyone_all())
        };
        let (parent, _) = election.rsplit_once('/').unwrap();
        raw.mkdir(parent, &open(zookeeper_client::CreateMode::Persistent))
            .await
            .unwrap();
        let ephemeral = open(zookeeper_client::CreateMode::Ephemeral);
        raw.create(&election, b"127.0.0.1:4242", &ephemeral)
            .await
            .unwrap();
        master.until_ports(&boss, "boss", &[4242]).await;
        raw.set_data(&election, b"127.0.0.1:4343", None)
            .await
            .unwrap();
        master.until_ports(&boss, "boss", &[4343]).await;
    });
}

#[test]
fn zookeeper_out_of_reach_keeps_the_last_assignment_and_says_so() {
    let mut server = ZkServer::start().unwrap();
    let connect = server.connect_string();
    let base = unique_path("xds-outage");
    let a = spawn_provider(&connect, &base, 0, &[]);
    let metrics = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("xds.log");
    let (_xds, address) = start_xds(
        &connect,
        &["--service", &format!("hello={base}"), "--metrics", &metrics],
        Some(&log),
    );
    let rt = runtime();
    rt.block_on(async {
        let names = ["hello"];
        let mut ads = Ads::open(&address).await;
        ads.ask::<ClusterLoadAssignment>(&names, None, None).await;
        ads.until_ports(&names, "hello", &[a.port]).await;
    });
    server.stop();
    wait_value(&metrics, "zoorpc_xds_zookeeper_connected", 0.0);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("ZooKeeper is out of reach: serving the last known state"),
        "{logged}"
    );
    rt.block_on(async {
        // A client arriving during the outage gets the last assignment, not an empty one.
        let names = ["hello"];
        let mut ads = Ads::open(&address).await;
        ads.ask::<ClusterLoadAssignment>(&names, None, None).await;
        let response = ads.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(assignment_ports(&response, "hello"), Some(vec![a.port]));
    });
    server.restart().unwrap();
    wait_value(&metrics, "zoorpc_xds_zookeeper_connected", 1.0);
    // Following again: a new provider is pushed.
    let b = spawn_provider(&connect, &base, 0, &[]);
    let mut both = vec![a.port, b.port];
    both.sort();
    rt.block_on(async {
        let names = ["hello"];
        let mut ads = Ads::open(&address).await;
        ads.ask::<ClusterLoadAssignment>(&names, None, None).await;
        ads.until_ports(&names, "hello", &both).await;
    });
}

#[test]
fn a_large_assignment_is_pushed_whole_at_every_change() {
    // 1,000 providers make an assignment of about 60 KB, several writes per push. (How long a
    // push takes is `bench xds`'s figure; that accepted connections have Nagle's algorithm off,
    // which made every such push wait for the client's delayed ACK, is a unit test of
    // `without_nagle`.)
    let connect = zk().connect_string();
    let base = unique_path("xds-large");
    let (_xds, address) = start_xds(&connect, &["--service", &format!("big={base}")], None);
    let rt = runtime();
    let raw = rt.block_on(raw_client(&connect));
    rt.block_on(async {
        let open = |mode: zookeeper_client::CreateMode| {
            mode.with_acls(zookeeper_client::Acls::anyone_all())
        };
        raw.mkdir(&base, &open(zookeeper_client::CreateMode::Persistent))
            .await
            .unwrap();
        let mut creates = tokio::task::JoinSet::new();
        for port in 20_000..21_000u16 {
            let (raw, path) = (raw.clone(), format!("{base}/provider{port}"));
            let data = format!("http://127.0.0.1:{port}");
            creates.spawn(async move {
                let persistent = open(zookeeper_client::CreateMode::Persistent);
                raw.create(&path, data.as_bytes(), &persistent)
                    .await
                    .map(|_| ())
            });
        }
        while let Some(created) = creates.join_next().await {
            created.unwrap().unwrap();
        }
        let names = ["big"];
        let mut ads = Ads::open(&address).await;
        ads.ask::<ClusterLoadAssignment>(&names, None, None).await;
        let all: Vec<u16> = (20_000..21_000).collect();
        ads.until_ports(&names, "big", &all).await;
        // Ten changes, each pushed whole before the next.
        for round in 0..10u16 {
            let mut ports = all.clone();
            ports[0] = 30_000 + round;
            ports.sort();
            let data = format!("http://127.0.0.1:{}", ports[ports.len() - 1]);
            raw.set_data(&format!("{base}/provider20000"), data.as_bytes(), None)
                .await
                .unwrap();
            ads.until_ports(&names, "big", &ports).await;
        }
    });
}
