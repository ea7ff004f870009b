//! The Aggregated Discovery Service, state of the world: one task per client stream, holding
//! what the client subscribed to per resource type and what was last sent to it.
//!
//! Guarantees (the xDS protocol's, as gRPC's client expects them):
//! - A request naming resources is answered at once with every one of them the catalog has
//!   (all of them for a Listener or Cluster wildcard: no name); the first request of a type on
//!   a stream is always answered, whatever nonce it carries, so a client that reconnects gets the
//!   current state at once.
//! - A change of any subscribed resource sends a new response of its type to every stream
//!   subscribed to it, with a new version and a new nonce; nothing is sent when what the
//!   stream would get equals what it got last.
//! - A request carrying a nonce other than the last one sent for its type is stale and ignored
//!   (a newer request follows it). An ACK sends nothing. A NACK (`error_detail`) is logged and
//!   counted (`zoorpc_xds_nacks_total`), never answered by sending the same resources again:
//!   the next change of the resources is the next response.
//! - The names a stream subscribes to (of any type) are held in the catalog while it does, and
//!   released when it unsubscribes or ends (the catalog lets them linger, then drops their
//!   watches). A name refused (past the cap on names) is asked for again at every change of the
//!   catalog, so a client gets it once a name is released.
//! - Counted: `zoorpc_xds_clients` (streams open), `zoorpc_xds_pushes_total` (responses).
//! - A stream ends when its client goes, or when the server stops.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::ControlPlane;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::catalog::{Catalog, Refused};
use super::resources::Kind;

/// The ADS service: every stream is served from `catalog`, until `stop` turns true.
pub struct Ads {
    pub catalog: Arc<Catalog>,
    pub stop: watch::Receiver<bool>,
}

type Responses = mpsc::Sender<Result<DiscoveryResponse, Status>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let (tx, rx) = mpsc::channel(16);
        let stream = Stream::new(self.catalog.clone(), peer, tx);
        tokio::spawn(stream.serve(request.into_inner(), self.stop.clone()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented(
            "zoorpc xds serves the state-of-the-world protocol only (gRPC's default): \
             turn incremental xDS off in the client",
        ))
    }
}

/// Resolves once `stop` turns true (never, if its sender is gone).
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What one type's subscription on one stream is.
#[derive(Default)]
struct Subscription {
    /// The names asked for (empty with `wildcard`).
    names: BTreeSet<String>,
    /// Every name (a Listener or Cluster request naming none).
    wildcard: bool,
    /// The last response sent: its nonce and the (name, version) pairs it carried.
    sent: Option<(String, BTreeMap<String, u64>)>,
}

/// One client's stream.
struct Stream {
    catalog: Arc<Catalog>,
    peer: String,
    responses: Responses,
    subscriptions: BTreeMap<Kind, Subscription>,
    /// The last nonce used on this stream.
    nonce: u64,
    /// The names this stream holds in the catalog (see [`Catalog::hold`]).
    held: BTreeSet<String>,
}

/// Counts a stream as connected while it lives.
struct Connected;

impl Connected {
    fn new() -> Connected {
        metrics::gauge!("zoorpc_xds_clients").increment(1.0);
        Connected
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        metrics::gauge!("zoorpc_xds_clients").decrement(1.0);
    }
}

impl Stream {
    fn new(catalog: Arc<Catalog>, peer: String, responses: Responses) -> Stream {
        Stream {
            catalog,
            peer,
            responses,
            subscriptions: BTreeMap::new(),
            nonce: 0,
            held: BTreeSet::new(),
        }
    }

    /// Holds every name subscribed to (of any type) and releases the others; says why a name
    /// `asked` for is refused.
    fn hold_subscribed(&mut self, asked: &BTreeSet<String>) {
        let wanted: BTreeSet<String> = self
            .subscriptions
            .values()
            .flat_map(|s| s.names.iter().cloned())
            .collect();
        for name in self.held.difference(&wanted) {
            self.catalog.release(name);
        }
        self.held.retain(|name| wanted.contains(name));
        for name in wanted {
            if self.held.contains(&name) {
                continue;
            }
            match self.catalog.hold(&name) {
                Ok(()) => {
                    self.held.insert(name);
                }
                Err(Refused::NotAName) if asked.contains(&name) => debug!(
                    peer = %self.peer,
                    name,
                    "not a service name (letters, digits and -._): answered with a listener \
                     routing nowhere, so the client's calls fail at once",
                ),
                Err(Refused::TooMany) if asked.contains(&name) => warn!(
                    peer = %self.peer,
                    name,
                    "not serving another name: {} names with subscribers are followed already; \
                     the client's calls fail until a name is released",
                    super::catalog::MAX_NAMES,
                ),
                Err(_) => {}
            }
        }
    }

    /// Serves the stream until the client goes or `stop` turns true.
    async fn serve(
        mut self,
        mut requests: Streaming<DiscoveryRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let _connected = Connected::new();
        let mut changes = self.catalog.subscribe();
        debug!(peer = %self.peer, "xDS client connected");
        loop {
            let sent = tokio::select! {
                request = requests.message() => match request {
                    Ok(Some(request)) => self.on_request(request).await,
                    Ok(None) => break,
                    Err(status) => {
                        debug!(peer = %self.peer, %status, "xDS stream broke");
                        break;
                    }
                },
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.on_change().await
                },
                () = stopped(&mut stop) => break,
            };
            if !sent {
                break;
            }
        }
        debug!(peer = %self.peer, "xDS client gone");
    }

    /// Takes in one request; `false` once the client cannot receive any more.
    async fn on_request(&mut self, request: DiscoveryRequest) -> bool {
        let Some(kind) = Kind::of(&request.type_url) else {
            debug!(peer = %self.peer, type_url = request.type_url, "type not served; ignored");
            return true;
        };
        let subscription = self.subscriptions.entry(kind).or_default();
        if let Some((nonce, _)) = &subscription.sent
            && !request.response_nonce.is_empty()
            && request.response_nonce != *nonce
        {
            debug!(peer = %self.peer, kind = kind.label(), "stale nonce; ignored");
            return true;
        }
        if subscription.sent.is_none()
            && let Some(node) = &request.node
        {
            info!(peer = %self.peer, node = node.id, kind = kind.label(), "xDS client subscribed");
        }
        if let Some(error) = &request.error_detail {
            warn!(
                peer = %self.peer,
                kind = kind.label(),
                nonce = request.response_nonce,
                error = error.message,
                "xDS client rejected (NACK) the resources sent; sending nothing until they change",
            );
            metrics::counter!("zoorpc_xds_nacks_total", "type" => kind.label()).increment(1);
        }
        let names: BTreeSet<String> = request.resource_names.into_iter().collect();
        let wildcard = names.is_empty() && matches!(kind, Kind::Listener | Kind::Cluster);
        let first = subscription.sent.is_none();
        let changed = first || names != subscription.names || wildcard != subscription.wildcard;
        // Newly asked Listeners: a refusal is said once per stream, not at every ACK.
        let asked: BTreeSet<String> = if kind == Kind::Listener {
            names.difference(&subscription.names).cloned().collect()
        } else {
            BTreeSet::new()
        };
        subscription.names = names;
        subscription.wildcard = wildcard;
        self.hold_subscribed(&asked);
        if changed {
            self.respond(kind, first).await
        } else {
            true
        }
    }

    /// After a change of the catalog: sends every type whose resources changed for this stream.
    async fn on_change(&mut self) -> bool {
        self.hold_subscribed(&BTreeSet::new());
        for kind in Kind::ALL {
            if self.subscriptions.contains_key(&kind) && !self.respond(kind, false).await {
                return false;
            }
        }
        true
    }

    /// Sends `kind`'s resources if they differ from those sent last (or `always`); `false`
    /// once the client cannot receive any more.
    async fn respond(&mut self, kind: Kind, always: bool) -> bool {
        let Some(subscription) = self.subscriptions.get(&kind) else {
            return true;
        };
        let names = if subscription.wildcard {
            self.catalog.names()
        } else {
            subscription.names.iter().cloned().collect()
        };
        let found: Vec<(String, super::catalog::Versioned)> = names
            .into_iter()
            .filter_map(|name| Some((name.clone(), self.catalog.resource(kind, &name)?)))
            .collect();
        let versions: BTreeMap<String, u64> =
            found.iter().map(|(n, r)| (n.clone(), r.version)).collect();
        if !always
            && subscription
                .sent
                .as_ref()
                .is_some_and(|(_, v)| *v == versions)
        {
            return true;
        }
        self.nonce += 1;
        let nonce = self.nonce.to_string();
        let response = DiscoveryResponse {
            version_info: self.catalog.generation().to_string(),
            resources: found.iter().map(|(_, r)| (*r.any).clone()).collect(),
            type_url: kind.type_url(),
            nonce: nonce.clone(),
            control_plane: Some(ControlPlane {
                identifier: concat!("zoorpc xds ", env!("CARGO_PKG_VERSION")).to_owned(),
            }),
            ..Default::default()
        };
        if let Some(subscription) = self.subscriptions.get_mut(&kind) {
            subscription.sent = Some((nonce, versions));
        }
        metrics::counter!("zoorpc_xds_pushes_total", "type" => kind.label()).increment(1);
        self.responses.send(Ok(response)).await.is_ok()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        for name in &self.held {
            self.catalog.release(name);
        }
    }
}
