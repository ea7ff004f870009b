//! [`Endpoint`]: one provider as the consumer sees it: its node (name and creation), URL, weight,
//! one reusable tonic channel (dialled by the `Dialer`: connect, TLS for `https://`, and HTTP/2
//! greeting within 1 s; a watchdog finding a silent connection, see [`liveness`](super::liveness)),
//! its ejection state and its load.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tonic::transport::Channel;
use tracing::warn;
use zoorpc_registry::{ProviderNode, ProviderUrl};

use super::dialer::{DIAL_TIMEOUT, Dialer, Transport};
use super::ejection::{AttemptStart, Health};
use super::liveness::{Liveness, OpenCall};
use super::load::Load;
use super::metrics as metrics_key;
use crate::tls::ConsumerTls;

/// How many attempts in a row that reached their caller's deadline with no response headers
/// eject a provider as hung (Envoy's `consecutive_gateway_failure` default); an answer of any
/// kind starts the count over.
pub(crate) const SILENT_DEADLINES: u32 = 5;

/// How many spare channel clones an endpoint keeps (see [`Endpoint::give_back`]).
const MAX_SPARE: usize = 64;

/// Weight used when a provider URL has no (valid) `weight` parameter.
pub const DEFAULT_WEIGHT: u32 = 100;

/// A provider's picking weight from `?weight=N`: [`DEFAULT_WEIGHT`] without one, or with one that
/// is not a number (a warning); 0 makes it a backup (picked only when no weighted provider is
/// healthy). The one rule for every user of a weight (the balancer, `zoorpc xds`).
///
/// ```
/// use zoorpc_consumer::balance::{DEFAULT_WEIGHT, weight_of};
/// let url = |s: &str| s.parse().unwrap();
/// assert_eq!(weight_of(&url("http://127.0.0.1:1?weight=5")), 5);
/// assert_eq!(weight_of(&url("http://127.0.0.1:1")), DEFAULT_WEIGHT);
/// assert_eq!(weight_of(&url("http://127.0.0.1:1?weight=x")), DEFAULT_WEIGHT);
/// ```
pub fn weight_of(url: &ProviderUrl) -> u32 {
    match url.metadata("weight").map(str::parse::<u32>) {
        None => DEFAULT_WEIGHT,
        Some(Ok(w)) => w,
        Some(Err(_)) => {
            warn!(url = %url, "ignoring a weight that is not a number; using {DEFAULT_WEIGHT}");
            DEFAULT_WEIGHT
        }
    }
}

/// One provider as the consumer sees it.
#[derive(Debug)]
pub struct Endpoint {
    /// The node's name, shared with the [`ProviderNode`] it came from (compared by pointer first).
    pub(super) node: Arc<str>,
    /// The node's `czxid`: with the name, which node this endpoint belongs to.
    pub(super) created: i64,
    pub(super) url: ProviderUrl,
    /// One connection, shared by every request to this provider.
    channel: Channel,
    /// Clones of `channel` between attempts (see [`Endpoint::lend_channel`]).
    spare: Mutex<Vec<Channel>>,
    /// Ejection state (atomics).
    pub(super) health: Health,
    /// In-flight requests and latency, for least-loaded picking.
    load: Load,
    /// Attempts in a row that reached their caller's deadline without response headers.
    silent_in_a_row: AtomicU32,
    /// `?weight=N`, default 100.
    pub(super) weight: u32,
    /// `scheme://host:port`, made once: the `endpoint` label of the metrics counted per call.
    label: Arc<str>,
    /// The key of this endpoint's answered-OK counter, made once (see `metrics::answered`).
    answered_ok: metrics::Key,
    /// Open calls and the connection's reads, for the watchdog that finds a silent provider.
    liveness: Arc<Liveness>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.liveness.endpoint_gone();
    }
}

impl Endpoint {
    /// The endpoint of a master's `host:port` (its name is the address): `https://` with
    /// `tls`, else `http://`.
    pub(crate) fn for_address(address: &str, tls: Option<&ConsumerTls>) -> Option<Endpoint> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = match format!("{scheme}://{address}").parse() {
            Ok(url) => url,
            Err(e) => {
                warn!(%address, error = %e, "the master's address does not make a URL; not calling it");
                return None;
            }
        };
        Endpoint::new(
            &ProviderNode {
                name: address.into(),
                url,
                created: 0,
            },
            tls,
        )
    }

    /// The endpoint of `node`; an `https://` node is dialled with `tls` (refused without it).
    pub(super) fn new(node: &ProviderNode, tls: Option<&ConsumerTls>) -> Option<Endpoint> {
        let skip = |e: &dyn std::fmt::Display| {
            warn!(url = %node.url, error = %e, "cannot build a channel; skipping this provider");
        };
        let transport = match (node.url.scheme(), tls) {
            ("https", Some(tls)) => match tls.for_host(node.url.host()) {
                Ok(target) => Transport::Tls(target),
                Err(reason) => Transport::Refused(reason),
            },
            ("https", None) => Transport::Refused(no_tls()),
            _ => Transport::Plain,
        };
        let endpoint = match &transport {
            Transport::Plain => tonic::transport::Endpoint::from_shared(node.url.endpoint())
                .map_err(|e| e.to_string()),
            // The TLS is the dialer's: tonic's connector gets an http:// URI (it would refuse an
            // https:// one it has no TLS for), the requests still carry the https origin.
            _ => {
                let dialled = tonic::transport::Endpoint::from_shared(format!(
                    "http://{}",
                    node.url.authority()
                ));
                match (dialled, node.url.endpoint().parse::<http::Uri>()) {
                    (Ok(e), Ok(origin)) => Ok(e.origin(origin)),
                    (Err(e), _) => Err(e.to_string()),
                    (_, Err(e)) => Err(e.to_string()),
                }
            }
        };
        let endpoint = match endpoint {
            Ok(e) => e,
            Err(e) => {
                skip(&e);
                return None;
            }
        };
        let liveness = Arc::new(Liveness::default());
        let channel = connect_lazy(endpoint, transport, liveness.clone());
        // Without a tokio runtime (a unit test building endpoints) nothing is watched.
        let _ = liveness.spawn_watchdog(channel.clone(), node.url.to_string());
        let label: Arc<str> = node.url.endpoint().into();
        Some(Endpoint {
            node: node.name.clone(),
            created: node.created,
            url: node.url.clone(),
            channel,
            spare: Mutex::new(Vec::new()),
            health: Health::default(),
            load: Load::default(),
            silent_in_a_row: AtomicU32::new(0),
            weight: weight_of(&node.url),
            answered_ok: metrics_key::answered_ok_key(&label),
            label,
            liveness,
        })
    }

    /// The znode name, e.g. `provider0000000042`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The node's name, shared.
    pub(crate) fn node_name(&self) -> &Arc<str> {
        &self.node
    }

    /// The endpoint's channel (all clones share one connection). Not public on its own: a
    /// request sent on it bypasses the balanced channel's ejection and retries (the
    /// tower-discovery adapter hands it to tower's balancer, which says so).
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The node's creation (`czxid`); with [`Endpoint::node`] it identifies the node.
    pub fn created(&self) -> i64 {
        self.created
    }

    /// The provider URL.
    pub fn url(&self) -> &ProviderUrl {
        &self.url
    }

    /// A clone of the channel for one attempt, to be given back with
    /// [`Endpoint::give_back`] once the request is handed over. A fresh clone of a tonic
    /// channel allocates its send state and takes four reference counts that every core shares;
    /// a clone given back keeps that state for the next attempt (measured with `bench qps`).
    pub(crate) fn lend_channel(&self) -> Channel {
        // Never waits for the lock: a thread that finds it taken makes a fresh clone.
        let spare = match self.spare.try_lock() {
            Ok(mut spare) => spare.pop(),
            Err(_) => None,
        };
        spare.unwrap_or_else(|| self.channel.clone())
    }

    /// Gives back a channel from [`Endpoint::lend_channel`] after its `call` (never one whose
    /// readiness failed or was abandoned: that one is dropped). At most `MAX_SPARE` are kept:
    /// as many as attempts ever handed over at the same instant.
    pub(crate) fn give_back(&self, channel: Channel) {
        if let Ok(mut spare) = self.spare.try_lock()
            && spare.len() < MAX_SPARE
        {
            spare.push(channel);
        }
    }

    /// The picking weight (`?weight=N`, default 100; 0 takes traffic only when nothing else can).
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Whether this endpoint is ejected now.
    pub fn is_ejected(&self) -> bool {
        self.health.is_ejected()
    }

    /// In-flight requests and latency EWMA, kept by the balanced channel when the consumer's
    /// picking rule reads them ([`Pick::reads_load`](super::Pick::reads_load): least-loaded, and
    /// a rule of your own unless it says otherwise); zero otherwise.
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// `scheme://host:port`, as the metrics label it.
    pub(crate) fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// A call on this endpoint, open (for the watchdog of its connection) until dropped: held by
    /// the response body of an answered attempt. (An attempt itself holds the endpoint, which is
    /// not gone while it does: the watchdog runs on.)
    pub(crate) fn open_call(&self) -> OpenCall {
        self.liveness.open_call()
    }

    /// The key of this endpoint's `zoorpc_attempts_total{code="OK"}` counter.
    pub(crate) fn answered_ok_key(&self) -> &metrics::Key {
        &self.answered_ok
    }

    /// What an attempt notes as it starts, to be given back with its failure: failures of an
    /// outage already judged by an ejection change nothing.
    pub(crate) fn attempt_started(&self) -> AttemptStart {
        self.health.started()
    }

    /// An attempt ended at its caller's deadline with its request sent and no response headers:
    /// whether that makes [`SILENT_DEADLINES`] in a row (no answer of any kind between them),
    /// the sign of a hung provider that callers with deadlines shorter than any attempt timeout
    /// would otherwise never report.
    pub(crate) fn silent_until_deadline(&self) -> bool {
        self.silent_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= SILENT_DEADLINES
    }

    /// The provider answered (any status): it is not hung.
    pub(crate) fn answered(&self) {
        if self.silent_in_a_row.load(Ordering::Relaxed) != 0 {
            self.silent_in_a_row.store(0, Ordering::Relaxed);
        }
    }

    /// Records a success: clears any ejection.
    pub(crate) fn record_success(&self) {
        self.answered();
        self.health.record_success();
    }
}

/// The provider's channel, connected on first use through the [`Dialer`] (which bounds the
/// connect and the server's greeting together), each connection watched by `liveness`.
///
/// No HTTP/2 keepalive: stock gRPC servers close a connection pinged more often than every
/// 5 minutes, with every call on it; the watchdog probes a silent connection with a request
/// instead (see [`liveness`](super::liveness)).
fn connect_lazy(
    endpoint: tonic::transport::Endpoint,
    transport: Transport,
    liveness: Arc<Liveness>,
) -> Channel {
    endpoint.connect_with_connector_lazy(Dialer {
        timeout: DIAL_TIMEOUT,
        transport,
        liveness,
    })
}

/// Why an `https://` provider is not called by a consumer without TLS.
fn no_tls() -> String {
    format!(
        "an https:// provider and this consumer has no TLS configured: give {} to call it; it is \
         never called in plaintext",
        crate::error::settings::TLS_CA
    )
}
