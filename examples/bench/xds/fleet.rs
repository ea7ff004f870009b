//! The fleet measure of `xds`: many providers, many subscribed ADS streams, and what the
//! `zoorpc xds` process costs for them (resident memory, CPU) and how long a change takes to
//! reach every stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use prost::{Message, Name};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use zoorpc::registry::{ProviderUrl, Registration, Session, SessionConfig};

use super::Options;
use crate::harness::ChildProcess;
use crate::scale::measure::{cpu_ms_of, rss_kib_of};
use crate::{json_num, quantile_ms};

/// The name the streams subscribe to.
const NAME: &str = "fleet";

pub async fn run(
    zk: &str,
    root: &str,
    xds: &ChildProcess,
    address: &str,
    options: &Options,
) -> Result<String, String> {
    let base = format!("{root}/{NAME}");
    let session = Session::connect(SessionConfig::new(zk))
        .await
        .map_err(|e| e.to_string())?;
    let mut registrations = Vec::with_capacity(options.providers);
    for i in 0..options.providers {
        registrations.push(register(&session, &base, i).await?);
    }
    let pid = xds.pid().to_string();
    let rss_before = rss_kib_of(&pid)?;
    // Every stream publishes the size of the last assignment it got.
    let mut sizes = Vec::with_capacity(options.clients);
    for _ in 0..options.clients {
        let (tx, rx) = watch::channel(0usize);
        tokio::spawn(subscribe(address.to_owned(), tx));
        sizes.push(rx);
    }
    let started = Instant::now();
    all_hold(&mut sizes, options.providers, Duration::from_secs(60)).await?;
    let converged = started.elapsed().as_secs_f64() * 1000.0;
    let rss = rss_kib_of(&pid)? / 1024.0;
    let cpu_before = cpu_ms_of(&pid)?;
    let mut fan_out = churn(&session, &base, &mut sizes, options).await?;
    let per_change = (cpu_ms_of(&pid)? - cpu_before) / options.changes as f64;
    let rss_after = rss_kib_of(&pid)? / 1024.0;
    drop(registrations);
    let (p50, p99) = (
        quantile_ms(&mut fan_out, 0.5),
        quantile_ms(&mut fan_out, 0.99),
    );
    let (providers, clients, changes) = (options.providers, options.clients, options.changes);
    println!(
        "zoorpc xds with {providers} providers and {clients} ADS streams: RSS {rss:.1} MiB \
         (before the streams {:.1} MiB, after {changes} changes {rss_after:.1} MiB); every stream \
         had the assignment {converged:.0} ms after they opened; a change reached every stream \
         in p50 {p50:.1} ms p99 {p99:.1} ms; CPU {per_change:.1} ms per change",
        rss_before / 1024.0,
    );
    Ok(format!(
        "\"providers\":{providers},\"clients\":{clients},\"rss_mib\":{},\
         \"rss_after_changes_mib\":{},\"fan_out_p50_ms\":{},\"fan_out_p99_ms\":{},\
         \"cpu_ms_per_change\":{}",
        json_num(rss),
        json_num(rss_after),
        json_num(p50),
        json_num(p99),
        json_num(per_change)
    ))
}

/// Registers the `i`-th provider of the fleet (no server behind it).
async fn register(session: &Session, base: &str, i: usize) -> Result<Registration, String> {
    let url =
        ProviderUrl::http("127.0.0.1", (20_000 + i % 40_000) as u16).map_err(|e| e.to_string())?;
    Registration::register(session, base, &url)
        .await
        .map_err(|e| e.to_string())
}

/// `options.changes` changes one at a time (one more provider joins, then leaves), each waited
/// for until every stream holds it: how long each took.
async fn churn(
    session: &Session,
    base: &str,
    sizes: &mut [watch::Receiver<usize>],
    options: &Options,
) -> Result<Vec<Duration>, String> {
    let mut fan_out = Vec::with_capacity(options.changes);
    let mut joined = None;
    for _ in 0..options.changes {
        let t = Instant::now();
        let expected = match joined.take() {
            None => {
                joined = Some(register(session, base, options.providers).await?);
                options.providers + 1
            }
            Some(registration) => {
                registration.deregister().await.map_err(|e| e.to_string())?;
                options.providers
            }
        };
        all_hold(sizes, expected, Duration::from_secs(30)).await?;
        fan_out.push(t.elapsed());
    }
    Ok(fan_out)
}

/// Waits until every stream's last assignment has `count` endpoints.
async fn all_hold(
    sizes: &mut [watch::Receiver<usize>],
    count: usize,
    within: Duration,
) -> Result<(), String> {
    let wait = async {
        for size in sizes.iter_mut() {
            if size.wait_for(|n| *n == count).await.is_err() {
                return Err("an ADS stream ended".to_owned());
            }
        }
        Ok(())
    };
    tokio::time::timeout(within, wait)
        .await
        .map_err(|_| format!("not every stream had {count} endpoints within {within:?}"))?
}

/// One simulated client: subscribes to the four resources of [`NAME`], acknowledges every
/// response and publishes the size of every assignment it gets, until the stream ends.
async fn subscribe(address: String, sizes: watch::Sender<usize>) {
    let Ok(mut client) =
        AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await
    else {
        return;
    };
    let (requests, rx) = mpsc::channel(16);
    let Ok(response) = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
    else {
        return;
    };
    let mut responses = response.into_inner();
    let names = Arc::new(vec![NAME.to_owned()]);
    for type_url in [
        Listener::type_url(),
        RouteConfiguration::type_url(),
        Cluster::type_url(),
        ClusterLoadAssignment::type_url(),
    ] {
        let request = DiscoveryRequest {
            type_url,
            resource_names: names.to_vec(),
            ..Default::default()
        };
        if requests.send(request).await.is_err() {
            return;
        }
    }
    while let Ok(Some(response)) = responses.message().await {
        let ack = DiscoveryRequest {
            type_url: response.type_url.clone(),
            resource_names: names.to_vec(),
            version_info: response.version_info.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        };
        if response.type_url == ClusterLoadAssignment::type_url() {
            for any in &response.resources {
                if let Ok(assignment) = ClusterLoadAssignment::decode(any.value.as_slice()) {
                    sizes.send_replace(assignment.endpoints.len());
                }
            }
        }
        if requests.send(ack).await.is_err() {
            return;
        }
    }
}
