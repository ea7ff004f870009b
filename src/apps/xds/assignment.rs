//! The ClusterLoadAssignment of one service name: its live providers as endpoints, in a shape
//! gRPC's xDS client accepts whatever the registry holds.
//!
//! Guarantees:
//! - Every endpoint is a locality of its own (named by its node) whose locality weight is its
//!   `?weight=N`: gRPC's round robin ignores endpoint weights but its locality picking honours
//!   locality weights, so this is how weights reach a stock client (the endpoint carries the
//!   same weight, for Envoy). Weight 0 (a backup) is priority 1 with weight 1: used only while
//!   no weighted endpoint is reachable, as zoorpc's balancer picks backups; a service of backups
//!   only has them at priority 0.
//! - One endpoint per address (IP and port), across localities and priorities: gRPC rejects a
//!   whole assignment naming an address twice (`duplicate endpoint address`), which two nodes
//!   do while a provider restarted on its port waits for its old session to expire, or when an
//!   operator's node repeats a provider's URL. The newest node (the greatest `czxid`) is the one
//!   kept, with its weight: a restarted provider's current registration, not the dead one's.
//! - The locality weights of each priority sum to at most `u32::MAX` (gRPC rejects a bigger
//!   sum): when the weights given are bigger, they are scaled down keeping their ratios as
//!   closely as integers allow, and a weight is never scaled to 0.
//! - An endpoint gRPC cannot dial as given is left out (with a warning by the caller): a host
//!   that is not an IP address (gRPC's EDS takes addresses, not names) and an `https://`
//!   provider (the resources carry no TLS settings).

use std::collections::HashMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::{Locality, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;
use tracing::debug;
use zoorpc_registry::{ProviderNode, ProviderUrl, Providers};

/// One endpoint of an assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdsEndpoint {
    pub ip: IpAddr,
    pub port: u16,
    /// The picking weight (0: a backup).
    pub weight: u32,
    /// The locality's name: the provider's node (unique within the base path).
    pub locality: String,
}

impl XdsEndpoint {
    /// The endpoint of a provider URL, or why gRPC could not dial it as given.
    pub fn of_url(node: &str, url: &ProviderUrl) -> Result<XdsEndpoint, &'static str> {
        if url.scheme() != "http" {
            return Err("https providers are not served over xDS (no TLS settings are sent)");
        }
        let host = url.host().trim_start_matches('[').trim_end_matches(']');
        let ip = host
            .parse()
            .map_err(|_| "its host is not an IP address (gRPC's EDS takes addresses)")?;
        Ok(XdsEndpoint {
            ip,
            port: url.port(),
            weight: zoorpc_consumer::balance::weight_of(url),
            locality: node.to_owned(),
        })
    }

    /// The endpoint of a master's `host:port` (weight 1), if its host is an IP address.
    pub fn of_master(address: &str) -> Option<XdsEndpoint> {
        let (host, port) = address.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(XdsEndpoint {
            ip: host.parse().ok()?,
            port: port.parse().ok()?,
            weight: 1,
            locality: "master".to_owned(),
        })
    }
}

/// The endpoints of a discovery snapshot (one per address: the newest node's), and the
/// providers left out with why.
pub fn endpoints_of(providers: &Providers) -> (Vec<XdsEndpoint>, Vec<(String, &'static str)>) {
    let mut endpoints: Vec<(XdsEndpoint, &ProviderNode)> = Vec::with_capacity(providers.len());
    let mut at: HashMap<(IpAddr, u16), usize> = HashMap::with_capacity(providers.len());
    let mut left_out = Vec::new();
    for provider in providers.iter() {
        let endpoint = match XdsEndpoint::of_url(&provider.name, &provider.url) {
            Ok(endpoint) => endpoint,
            Err(why) => {
                left_out.push((provider.url.to_string(), why));
                continue;
            }
        };
        let Some(&kept) = at.get(&(endpoint.ip, endpoint.port)) else {
            at.insert((endpoint.ip, endpoint.port), endpoints.len());
            endpoints.push((endpoint, provider));
            continue;
        };
        let replace = provider.created > endpoints[kept].1.created;
        let (older, newer) = if replace {
            (endpoints[kept].1, provider)
        } else {
            (provider, endpoints[kept].1)
        };
        debug!(
            older = %older.name, newer = %newer.name, url = %newer.url,
            "two nodes name one address: serving the newer node's"
        );
        if replace {
            endpoints[kept] = (endpoint, provider);
        }
    }
    let endpoints = endpoints.into_iter().map(|(e, _)| e).collect();
    (endpoints, left_out)
}

/// `weights` (of one priority) scaled down so that they sum to at most `u32::MAX`, as gRPC
/// requires of the locality weights of a priority: unchanged when they do already; otherwise
/// in the same ratios as closely as integers allow, none becoming 0.
pub fn fitting_weights(weights: &[u32]) -> Vec<u32> {
    let max = u64::from(u32::MAX);
    let sum: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if sum <= max {
        return weights.to_vec();
    }
    // Each weight floors to its share of what is left once every weight may get the 1 that
    // keeps it non-zero: the shares sum to at most `budget`, the 1s to at most `len`.
    let budget = u128::from(max.saturating_sub(weights.len() as u64));
    weights
        .iter()
        .map(|w| {
            let share = u128::from(*w) * budget / u128::from(sum);
            u32::try_from(share).unwrap_or(u32::MAX).max(1)
        })
        .collect()
}

/// The ClusterLoadAssignment `name` of `endpoints` (see the module docs for the weights).
pub fn assignment(name: &str, endpoints: &[XdsEndpoint]) -> Any {
    let any_weighted = endpoints.iter().any(|e| e.weight > 0);
    let priority = |e: &XdsEndpoint| u32::from(e.weight == 0 && any_weighted);
    let mut weights: Vec<u32> = endpoints.iter().map(|e| e.weight.max(1)).collect();
    for level in [0, 1] {
        let at: Vec<usize> = (0..endpoints.len())
            .filter(|&i| priority(&endpoints[i]) == level)
            .collect();
        let level_weights: Vec<u32> = at.iter().map(|&i| weights[i]).collect();
        for (i, weight) in at.into_iter().zip(fitting_weights(&level_weights)) {
            weights[i] = weight;
        }
    }
    let localities = endpoints
        .iter()
        .zip(weights)
        .map(|(e, weight)| {
            let socket = SocketAddress {
                address: e.ip.to_string(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(e.port))),
                ..Default::default()
            };
            let endpoint = LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(envoy_types::pb::envoy::config::core::v3::Address {
                        address: Some(address::Address::SocketAddress(socket)),
                    }),
                    ..Default::default()
                })),
                load_balancing_weight: Some(UInt32Value { value: weight }),
                ..Default::default()
            };
            LocalityLbEndpoints {
                locality: Some(Locality {
                    sub_zone: e.locality.clone(),
                    ..Default::default()
                }),
                lb_endpoints: vec![endpoint],
                load_balancing_weight: Some(UInt32Value { value: weight }),
                priority: priority(e),
                ..Default::default()
            }
        })
        .collect();
    pack_any(ClusterLoadAssignment {
        cluster_name: name.to_owned(),
        endpoints: localities,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::sync::Arc;

    fn endpoint(port: u16, weight: u32) -> XdsEndpoint {
        XdsEndpoint {
            ip: "127.0.0.1".parse().unwrap(),
            port,
            weight,
            locality: format!("provider{port}"),
        }
    }

    fn decoded(any: &Any) -> ClusterLoadAssignment {
        ClusterLoadAssignment::decode(any.value.as_slice()).unwrap()
    }

    /// (locality weight, priority) of each locality.
    fn shape(cla: &ClusterLoadAssignment) -> Vec<(u32, u32)> {
        cla.endpoints
            .iter()
            .map(|l| (l.load_balancing_weight.unwrap().value, l.priority))
            .collect()
    }

    #[test]
    fn weights_are_locality_weights_and_backups_are_priority_one() {
        let cla = decoded(&assignment(
            "svc",
            &[endpoint(1, 300), endpoint(2, 100), endpoint(3, 0)],
        ));
        assert_eq!(shape(&cla), [(300, 0), (100, 0), (1, 1)]);
        let localities: Vec<&str> = cla
            .endpoints
            .iter()
            .map(|l| l.locality.as_ref().unwrap().sub_zone.as_str())
            .collect();
        assert_eq!(localities, ["provider1", "provider2", "provider3"]);
    }

    #[test]
    fn backups_alone_are_priority_zero() {
        let cla = decoded(&assignment("svc", &[endpoint(1, 0), endpoint(2, 0)]));
        assert!(cla.endpoints.iter().all(|l| l.priority == 0));
    }

    #[test]
    fn weights_past_u32_are_scaled_to_fit_keeping_their_ratios_and_none_zero() {
        let max = u32::MAX;
        assert_eq!(fitting_weights(&[max]), [max]);
        assert_eq!(fitting_weights(&[max - 1, 1]), [max - 1, 1]);
        for weights in [
            vec![max, max],
            vec![max, 1, 100],
            vec![max; 1000],
            vec![max, max / 2, 7, 1],
        ] {
            let fitted = fitting_weights(&weights);
            let sum: u64 = fitted.iter().map(|w| u64::from(*w)).sum();
            assert!(sum <= u64::from(max), "{weights:?} -> {fitted:?}");
            assert!(fitted.iter().all(|w| *w > 0), "{weights:?} -> {fitted:?}");
            // Every ratio kept to within what one unit of rounding moves it.
            for (w, f) in weights.iter().zip(&fitted) {
                let (share, kept) = (
                    f64::from(*w) / weights.iter().map(|w| f64::from(*w)).sum::<f64>(),
                    f64::from(*f) / sum as f64,
                );
                assert!((share - kept).abs() < 1e-6, "{weights:?} -> {fitted:?}");
            }
        }
        // Two equal weights stay equal; a big and a small one keep their order.
        let fitted = fitting_weights(&[max, max, 1]);
        assert_eq!(fitted[0], fitted[1]);
        assert!(fitted[2] >= 1 && fitted[2] < fitted[0]);
    }

    #[test]
    fn each_priority_of_an_assignment_sums_to_at_most_u32() {
        let cla = decoded(&assignment(
            "svc",
            &[endpoint(1, u32::MAX), endpoint(2, 100), endpoint(3, 0)],
        ));
        let shape = shape(&cla);
        let priority0: u64 = shape
            .iter()
            .filter(|(_, p)| *p == 0)
            .map(|(w, _)| u64::from(*w))
            .sum();
        assert!(priority0 <= u64::from(u32::MAX), "{shape:?}");
        assert!(
            shape[1].0 >= 1 && shape[0].0 > 1000 * shape[1].0,
            "{shape:?}"
        );
        assert_eq!(shape[2], (1, 1));
    }

    fn node(name: &str, url: &str, created: i64) -> ProviderNode {
        ProviderNode {
            name: name.into(),
            url: url.parse().unwrap(),
            created,
        }
    }

    #[test]
    fn one_endpoint_per_address_the_newest_nodes() {
        // The restarted provider's new node sorts first by name but was created last.
        let providers = Arc::new(vec![
            node("a-operator", "http://127.0.0.1:7?weight=5", 20),
            node("provider0000000001", "http://127.0.0.1:7?weight=1", 10),
            node("provider0000000002", "http://127.0.0.1:8", 11),
            node("provider0000000003", "http://[::1]:7", 12),
            node("provider0000000004", "http://127.0.0.1:8?weight=0", 13),
        ]);
        let (endpoints, left_out) = endpoints_of(&providers);
        assert!(left_out.is_empty());
        let kept: Vec<(String, u16, u32, &str)> = endpoints
            .iter()
            .map(|e| (e.ip.to_string(), e.port, e.weight, e.locality.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("127.0.0.1".into(), 7, 5, "a-operator"),
                ("127.0.0.1".into(), 8, 0, "provider0000000004"),
                ("::1".into(), 7, 100, "provider0000000003"),
            ]
        );
    }

    #[test]
    fn endpoints_grpc_cannot_dial_are_named_not_sent() {
        let url = |s: &str| s.parse::<ProviderUrl>().unwrap();
        assert!(XdsEndpoint::of_url("p", &url("https://127.0.0.1:1")).is_err());
        assert!(XdsEndpoint::of_url("p", &url("http://svc.example.org:1")).is_err());
        let ok = XdsEndpoint::of_url("p", &url("http://[::1]:7?weight=5")).unwrap();
        assert_eq!(
            (ok.ip.to_string(), ok.port, ok.weight),
            ("::1".into(), 7, 5)
        );
        assert_eq!(XdsEndpoint::of_master("[::1]:9").unwrap().port, 9);
        assert_eq!(XdsEndpoint::of_master("host:9"), None);
    }
}
