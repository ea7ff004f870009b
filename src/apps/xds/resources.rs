//! The four xDS resources one service name is served as, in the shape gRPC's own xDS client
//! accepts (gRFC A27, A28, A44, A50), nothing Envoy-only:
//!
//! - Listener `NAME`: an API listener whose HTTP connection manager takes its routes by RDS over
//!   the same ADS stream, with the router filter (the last and only HTTP filter).
//! - RouteConfiguration `NAME`: one virtual host (`*`), one route (every path) to the cluster,
//!   retrying `UNAVAILABLE` (gRFC A44: [`RETRIES`] retries after a short backoff).
//! - Cluster `NAME`: EDS over ADS, round robin, outlier detection by failure percentage (gRFC
//!   A50; what gRPC implements of Envoy's): every second, an endpoint failing more than half of
//!   at least 10 calls is ejected for 30 s (Envoy's default), doubling up to 300 s, never more
//!   than half of the endpoints out. Not 1 s as zoorpc's own ejection: a stock client sees a
//!   paused provider only when calls sent to it reach their deadline, so a short ejection let it
//!   back before the failures of the calls sent to it since could show, and every call in that
//!   window failed again.
//! - ClusterLoadAssignment `NAME`: the endpoints ([`super::assignment`]: weights, backups, one
//!   endpoint per address).

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, OutlierDetection, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ConfigSource, config_source,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
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
    api_listener(
        name,
        http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(over_ads()),
            route_config_name: name.to_owned(),
        }),
    )
}

/// The Listener of a name not served (not a service name, or past the cap on names): its
/// route configuration, inline, has no virtual host, so gRPC fails the client's calls at once
/// (`UNAVAILABLE`, "could not find VirtualHost"). gRPC's client takes a state-of-the-world
/// response without a resource it has never had for no answer, and waits for its resource
/// timer (15 s) before failing them.
pub fn unserved_listener(name: &str) -> Any {
    api_listener(
        name,
        http_connection_manager::RouteSpecifier::RouteConfig(RouteConfiguration {
            name: name.to_owned(),
            ..Default::default()
        }),
    )
}

/// An API listener `name` with the router filter, its routes from `routes`.
fn api_listener(name: &str, routes: http_connection_manager::RouteSpecifier) -> Any {
    let manager = HttpConnectionManager {
        stat_prefix: name.to_owned(),
        route_specifier: Some(routes),
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
        base_ejection_time: Some(duration(Duration::from_secs(30))),
        max_ejection_time: Some(duration(Duration::from_secs(300))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_type_urls() {
        for kind in Kind::ALL {
            assert_eq!(Kind::of(&kind.type_url()), Some(kind));
        }
        assert_eq!(Kind::of("type.googleapis.com/nothing"), None);
    }
}
