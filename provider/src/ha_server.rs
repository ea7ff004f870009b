//! `HaServer` and `HaServerConfig`: the active/standby server (see [`HaServer`]).

use std::net::SocketAddr;

use tokio::sync::watch;
use tracing::info;
use zoorpc_registry::election::FastTakeover;
use zoorpc_registry::provider_url::host_port;
use zoorpc_registry::{ElectionOptions, MasterElection, Role, Session};

use crate::error::{Error, Result};
use crate::master_gate::MasterGate;
use crate::reflection::{REFLECTION_V1, REFLECTION_V1ALPHA};
use crate::server::services::{GrpcService, Services};
use crate::server::settings::{ServerSettings, settings_builders};
use crate::server::{Announce, Server};

/// The gRPC health service's name: exempt from the gate.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// How to run an HA server: [`HaServerConfig::new`], then the builder methods.
///
/// ```
/// use zoorpc_provider::HaServerConfig;
/// use zoorpc_registry::default_master_path;
/// let config = HaServerConfig::new("127.0.0.1:2181", default_master_path("Echo", "1.0.0"), 9090)
///     .advertise_host("10.0.0.7");
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct HaServerConfig {
    /// What every server is configured with.
    settings: ServerSettings,
    /// Election path, e.g. `/soa/master/services/Echo:1.0.0`.
    path: String,
    /// Election tuning.
    election: ElectionOptions,
}

impl HaServerConfig {
    /// An HA server on `127.0.0.1:port` (0 picks a free port) contending at `path` through the
    /// ZooKeeper at `zk`: 10 s session timeout, no drain grace, 30 s drain timeout, plaintext,
    /// open nodes, and the fast takeover on (see [`HaServerConfig::election`]).
    pub fn new(zk: impl Into<String>, path: impl Into<String>, port: u16) -> Self {
        HaServerConfig {
            settings: ServerSettings::new(zk.into(), port),
            path: path.into(),
            election: ElectionOptions {
                fast_takeover: FastTakeover::on(),
                ..ElectionOptions::default()
            },
        }
    }

    /// Election tuning. [`HaServerConfig::new`] switches the fast takeover on
    /// ([`zoorpc_registry::election::FastTakeover`]): this server's own process serves the
    /// address it contends with (checked before it contends), so a standby that finds that
    /// address refusing connections takes over at once instead of after the session timeout.
    pub fn election(mut self, options: ElectionOptions) -> Self {
        self.election = options;
        self
    }

    settings_builders!(
        "a standby takes over",
        "the master node (`host:port`; with TLS every contender of one path and every client \
         must agree: clients set `MasterClientConfig::tls` to match)"
    );
}

/// An active/standby gRPC server. It serves any tonic service, but answers its
/// requests only while this process is the master of an election path; otherwise it refuses
/// them with the standby refusal ([`crate::standby`]) that clients retry on the master.
///
/// Lifecycle: the one every zoorpc server runs, [`Provider`](crate::Provider)'s, with a
/// [`MasterGate`] in front of the services and a candidacy where a provider registers:
/// 1. decide the advertised address `host:port` (written into the master node) as a provider
///    does (`0.0.0.0`/`::` refused, IPv6 bracketed);
/// 2. bind the listener (a taken port is a clear [`Error::PortInUse`](crate::Error::PortInUse))
///    and serve, every request refused until this process is master;
/// 3. check with a gRPC health call *to the advertised address* that the server answers there
///    ([`Error::AdvertisedUnreachable`](crate::Error::AdvertisedUnreachable) otherwise): only an
///    address that reaches this server is ever written into the master node;
/// 4. open the ZooKeeper session and join the election; [`HaServer::serve`] returns once the
///    first role is decided (master or standby).
///
/// Guarantees:
/// - The user's services run a request only if this process is master when it arrives, within
///   its lease (the gate reads the election's own role and lease, per request: a process
///   resumed after a pause longer than the lease refuses from its first request on, see
///   [`zoorpc_registry::election::Mastership`]); a standby, or a contender electing or
///   disconnected, answers a trailers-only `UNAVAILABLE` marked with
///   [`STANDBY_METADATA`](zoorpc_proto::STANDBY_METADATA) naming the master it knows, and never
///   runs the handler. What "master" means is [`MasterElection`]'s guarantee.
/// - gRPC health (`grpc.health.v1.Health`) and reflection answer whatever the role: the whole
///   server (`""`) is SERVING while the process runs; each service's own name is SERVING only
///   while master, so a health-checking load balancer finds the master.
/// - Stopping ([`HaServer::shutdown`], or the future of [`HaServer::run_until`], or SIGTERM /
///   Ctrl-C in [`HaServer::run_until_signal`]): resign first (requests are refused from that
///   instant; once the requests admitted as master have been answered, at most one lease
///   later, the node is deleted and a standby takes over at once), wait the drain grace (none
///   by default), then stop accepting and let calls in flight finish (at most the drain
///   timeout).
///
/// ```no_run
/// # async fn demo<S: zoorpc_provider::GrpcService>(my_service: S) -> Result<(), zoorpc_provider::Error> {
/// use zoorpc_provider::{HaServer, HaServerConfig};
/// let config = HaServerConfig::new("127.0.0.1:2181", "/soa/master/services/Hello:1.0.0", 0);
/// let server = HaServer::serve(config, my_service).await?;
/// println!("{} is {}", server.address(), server.role());
/// server.run_until_signal().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HaServer {
    /// The lifecycle, contending.
    server: Server<Contend>,
}

impl HaServer {
    /// Serves any tonic service (plus gRPC health and reflection) while master, as described in
    /// [`HaServer`]'s docs; returns once the first role is decided.
    pub async fn serve<S: GrpcService>(config: HaServerConfig, service: S) -> Result<HaServer> {
        HaServer::serve_with(config, move |_| Services::new().add_service(service)).await
    }

    /// Serves the services `services(address)` builds (several services; `address` is the
    /// advertised `host:port` it contends with) while master, plus gRPC health and reflection.
    /// Health reports the whole server SERVING, and each service added with [`Services::add_service`]
    /// SERVING while master, so a health-checking load balancer finds the master by any of them.
    pub async fn serve_with(
        config: HaServerConfig,
        services: impl FnOnce(&str) -> Services,
    ) -> Result<HaServer> {
        let contend = Contend {
            path: config.path,
            options: config.election,
        };
        let server = Server::launch(&config.settings, contend, |address: &String| {
            services(address)
        })
        .await?;
        Ok(HaServer { server })
    }

    /// The advertised address, `host:port`, as written into the master node.
    pub fn address(&self) -> &str {
        &self.server.advertised
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The current role ([`Role::Left`] once resigned).
    pub fn role(&self) -> Role {
        self.election().map_or(Role::Left, MasterElection::role)
    }

    /// The election this server contends in (for its role changes, its fence, a
    /// [`zoorpc_registry::MasterJob`]); `None` once resigned.
    pub fn election(&self) -> Option<&MasterElection> {
        self.server.held.as_ref()
    }

    /// The ZooKeeper session.
    pub fn session(&self) -> &Session {
        &self.server.session
    }

    /// Leaves the election, keeping the server up: reports [`Role::Left`] (every request is
    /// refused from this instant), deletes the master node if held (a standby takes over at
    /// once) and returns once ZooKeeper confirmed it. Doing it again does nothing.
    pub async fn resign(&mut self) -> Result<()> {
        self.server.withdraw().await
    }

    /// Resigns (if not done yet), then stops accepting and lets calls in flight finish (at most
    /// the drain timeout). A failed resign (the node then goes with the session) is returned
    /// after the server stopped.
    pub async fn shutdown(self) -> Result<()> {
        self.server.stop().await
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down (resign, drain, stop).
    pub async fn run_until_signal(self) -> Result<()> {
        self.server.run_until_signal().await
    }

    /// Serves until `shutdown` completes, then shuts down (resign, drain, stop): the program
    /// decides what stops it.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        self.server.run_until(shutdown).await
    }
}

/// An HA server's announcement: a candidacy at `path` with `host:port`, the gate following it.
#[derive(Debug)]
struct Contend {
    /// The election path.
    path: String,
    /// Election tuning.
    options: ElectionOptions,
}

impl Announce for Contend {
    type Advertised = String;
    type Held = MasterElection;
    const WITHHELD: &'static str = "not contending (not joining the election)";

    fn advertise(&self, host: &str, port: u16, _tls: bool) -> Result<String> {
        // An IPv6 literal is bracketed, as in a URL, so `host:port` stays dialable.
        Ok(host_port(host, port))
    }

    fn endpoint(address: &String, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{address}")
    }

    fn gate(&self) -> Option<MasterGate> {
        Some(
            MasterGate::unbound()
                .exempt(HEALTH_SERVICE)
                .exempt(REFLECTION_V1)
                .exempt(REFLECTION_V1ALPHA),
        )
    }

    async fn announce(
        self,
        session: &Session,
        address: &String,
        gate: Option<MasterGate>,
    ) -> Result<MasterElection> {
        let election =
            MasterElection::join_with(session, &self.path, address, self.options).await?;
        if let Some(gate) = gate {
            gate.bind(election.mastership());
        }
        info!(%address, path = %self.path, role = %election.role(), "HA server contending");
        Ok(election)
    }

    fn roles(election: &MasterElection) -> Option<watch::Receiver<Role>> {
        Some(election.subscribe())
    }

    async fn withdraw(election: MasterElection) -> Result<()> {
        election.resign().await.map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_take_over_fast_and_do_not_linger_and_addresses_stay_dialable() {
        let config = HaServerConfig::new("127.0.0.1:2181", "/soa/master/services/E:1", 0);
        assert!(config.election.fast_takeover.enabled);
        assert_eq!(config.settings.drain_grace, Duration::ZERO);
        assert_eq!(config.settings.session_timeout, Duration::from_secs(10));
        let contend = Contend {
            path: config.path,
            options: config.election,
        };
        let address = contend.advertise("::1", 9, false).unwrap();
        assert_eq!(address, "[::1]:9");
        assert_eq!(Contend::endpoint(&address, true), "https://[::1]:9");
        assert!(contend.gate().is_some());
    }
}
