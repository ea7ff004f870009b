//! The four xDS resources one service name is served as, in the shape gRPC's own xDS client
//! accepts (gRFC A27, A28, A44, A50), nothing Envoy-only:
//!
//! - Listener `NAME`: an API listener whose HTTP connection manager takes its routes by RDS over
//!   the same ADS stream, with the router filter (the last and only HTTP filter).
//! - RouteConfiguration `NAME`: one virtual host (`*`), one route (every path) to the cluster,
//!   retrying `UNAVAILABLE` (gRFC A44: [`RETRIES`] retries after a short backoff).
//! - Cluster `NAME`: EDS over ADS, round robin, outlier detection by failure percentage (gRFC
//!   A50; what gRPC implements of Envoy's), as zoorpc's own ejection: 1 s doubling to 30 s, never
//!   more than half of the endpoints out.
//! - ClusterLoadAssignment `NAME`: the endpoints. Every endpoint is a locality of its own (named
//!   by its node) whose locality weight is its `?weight=N`: gRPC's round robin ignores endpoint
//!   weights but its locality picking honours locality weights, so this is how weights reach a
//!   stock client (the endpoint carries the weight too, for Envoy). Weight 0 (a backup) is
//!   priority 1 with weight 1: used only while no weighted endpoint is reachable, as zoorpc's
//!   balancer picks backups; a service of backups only has them at priority 0.
//!
//! An endpoint gRPC cannot dial as given is left out (with a warning by the caller): a host that
//! is not an IP address (gRPC's EDS takes addresses, not names) and an `https://` provider (the
//! resources carry no TLS settings).

use std::net::IpAddr;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, OutlierDetection, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ConfigSource, Locality, SocketAddress, address, config_source,
    socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, retry_policy, route,
    route_action, route_match,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::util::pack_any;
use zoorpc_registry::{ProviderUrl, Providers};

/// How many times a route retries a call answered `UNAVAILABLE` (gRPC caps attempts at 5).
pub const RETRIES: u32 = 3;

/// The resource types served, in the order a gRPC client asks for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Listener,
    Route,
    Cluster,
    Endpoints,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Listener, Kind::Route, Kind::Cluster, Kind::Endpoints];

    /// The type URL requests and responses name the kind by.
    pub fn type_url(self) -> String {
        use prost::Name;
        match self {
            Kind::Listener => Listener::type_url(),
            Kind::Route => RouteConfiguration::type_url(),
            Kind::Cluster => Cluster::type_url(),
            Kind::Endpoints => ClusterLoadAssignment::type_url(),
        }
    }

    /// The kind a type URL names, if served.
    pub fn of(type_url: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.type_url() == type_url)
    }

    /// A short name for logs and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Listener => "listener",
            Kind::Route => "route",
            Kind::Cluster => "cluster",
            Kind::Endpoints => "endpoints",
        }
    }

    /// The resource of this kind for `name`, except the endpoints (which change).
    pub fn fixed(self, name: &str) -> Option<Any> {
        match self {
            Kind::Listener => Some(listener(name)),
            Kind::Route => Some(route_configuration(name)),
            Kind::Cluster => Some(cluster(name)),
            Kind::Endpoints => None,
        }
    }
}

/// Where routes and endpoints come from: this ADS stream.
fn over_ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        // V3 (the enum's 2): what gRPC's client checks a config source for.
        resource_api_version: 2,
        ..Default::default()
    }
}

fn duration(d: Duration) -> envoy_types::pb::google::protobuf::Duration {
    envoy_types::pb::google::protobuf::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn uint32(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

/// The Listener `name`: an API listener (no socket: a client's channel) routing by RDS.
pub fn listener(name: &str) -> Any {
    let manager = HttpConnectionManager {
        stat_prefix: name.to_owned(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(over_ads()),
            route_config_name: name.to_owned(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".to_owned(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    pack_any(Listener {
        name: name.to_owned(),
        api_listener: Some(ApiListener {
            api_listener: Some(pack_any(manager)),
        }),
        ..Default::default()
    })
}

/// The RouteConfiguration `name`: every call to the cluster `name`, `UNAVAILABLE` retried.
pub fn route_configuration(name: &str) -> Any {
    let retry = envoy_types::pb::envoy::config::route::v3::RetryPolicy {
        retry_on: "unavailable".to_owned(),
        num_retries: uint32(RETRIES),
        retry_back_off: Some(retry_policy::RetryBackOff {
            base_interval: Some(duration(Duration::from_millis(25))),
            max_interval: Some(duration(Duration::from_millis(250))),
        }),
        ..Default::default()
    };
    let route = Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix(String::new())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(name.to_owned())),
            retry_policy: Some(retry),
            ..Default::default()
        })),
        ..Default::default()
    };
    pack_any(RouteConfiguration {
        name: name.to_owned(),
        virtual_hosts: vec![VirtualHost {
            name: name.to_owned(),
            domains: vec!["*".to_owned()],
            routes: vec![route],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// The Cluster `name`: endpoints by EDS (`name`), round robin, outlier detection.
pub fn cluster(name: &str) -> Any {
    let outliers = OutlierDetection {
        interval: Some(duration(Duration::from_secs(1))),
        base_ejection_time: Some(duration(Duration::from_secs(1))),
        max_ejection_time: Some(duration(Duration::from_secs(30))),
        max_ejection_percent: uint32(50),
        // Failure percentage only (success-rate ejection off: it needs many endpoints).
        enforcing_success_rate: uint32(0),
        failure_percentage_threshold: uint32(50),
        enforcing_failure_percentage: uint32(100),
        failure_percentage_minimum_hosts: uint32(2),
        failure_percentage_request_volume: uint32(10),
        ..Default::default()
    };
    pack_any(Cluster {
        name: name.to_owned(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(over_ads()),
            service_name: name.to_owned(),
        }),
        lb_policy: cluster::LbPolicy::RoundRobin as i32,
        connect_timeout: Some(duration(Duration::from_secs(1))),
        outlier_detection: Some(outliers),
        ..Default::default()
    })
}

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

/// The endpoints of a discovery snapshot, and the providers left out with why.
pub fn endpoints_of(providers: &Providers) -> (Vec<XdsEndpoint>, Vec<(String, &'static str)>) {
    let mut endpoints = Vec::with_capacity(providers.len());
    let mut left_out = Vec::new();
    for provider in providers.iter() {
        match XdsEndpoint::of_url(&provider.name, &provider.url) {
            Ok(endpoint) => endpoints.push(endpoint),
            Err(why) => left_out.push((provider.url.to_string(), why)),
        }
    }
    (endpoints, left_out)
}

/// The ClusterLoadAssignment `name` of `endpoints` (see the module docs for the weights).
pub fn assignment(name: &str, endpoints: &[XdsEndpoint]) -> Any {
    let any_weighted = endpoints.iter().any(|e| e.weight > 0);
    let localities = endpoints
        .iter()
        .map(|e| {
            let backup = e.weight == 0;
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
                load_balancing_weight: uint32(e.weight.max(1)),
                ..Default::default()
            };
            LocalityLbEndpoints {
                locality: Some(Locality {
                    sub_zone: e.locality.clone(),
                    ..Default::default()
                }),
                lb_endpoints: vec![endpoint],
                load_balancing_weight: uint32(e.weight.max(1)),
                priority: u32::from(backup && any_weighted),
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

    #[test]
    fn weights_are_locality_weights_and_backups_are_priority_one() {
        let cla = decoded(&assignment(
            "svc",
            &[endpoint(1, 300), endpoint(2, 100), endpoint(3, 0)],
        ));
        let shape: Vec<(u32, u32)> = cla
            .endpoints
            .iter()
            .map(|l| (l.load_balancing_weight.unwrap().value, l.priority))
            .collect();
        assert_eq!(shape, [(300, 0), (100, 0), (1, 1)]);
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

    #[test]
    fn kinds_round_trip_their_type_urls() {
        for kind in Kind::ALL {
            assert_eq!(Kind::of(&kind.type_url()), Some(kind));
        }
        assert_eq!(Kind::of("type.googleapis.com/nothing"), None);
    }
}
