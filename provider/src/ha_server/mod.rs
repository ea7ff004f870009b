//! `HaServer`: an active/standby gRPC server. It serves any tonic service, but answers its
//! requests only while this process is the master of an election path; otherwise it refuses
//! them with the standby refusal ([`crate::standby`]) that clients retry on the master.
//!
//! Lifecycle, in order:
//! 1. decide the advertised address `host:port` (written into the master node): as
//!    [`crate::Provider`] does (`advertised_host`; `0.0.0.0`/`::` refused, IPv6 bracketed);
//! 2. bind the listener (a taken port is a clear [`Error::PortInUse`]) and serve, every request
//!    refused until this process is master ([`MasterGate`]);
//! 3. check with a gRPC health call *to the advertised address* that the server answers there
//!    ([`Error::AdvertisedUnreachable`] otherwise): only an address that reaches this server is
//!    ever written into the master node;
//! 4. open the ZooKeeper session and join the election; [`HaServer::serve`] returns once the
//!    first role is decided (master or standby).
//!
//! Guarantees:
//! - The user's services run a request only if this process is master when it arrives, within
//!   its lease (the gate reads the election's own role and lease, per request: a process
//!   resumed after a pause longer than the lease refuses from its first request on, see
//!   [`zoorpc_registry::election::Mastership`]); a standby, or a contender electing or
//!   disconnected, answers a trailers-only `UNAVAILABLE` marked with
//!   [`STANDBY_METADATA`](zoorpc_proto::STANDBY_METADATA) naming the master it knows, and never
//!   runs the handler. What "master" means is [`MasterElection`]'s guarantee.
//! - gRPC health (`grpc.health.v1.Health`) answers whatever the role: the whole server (`""`)
//!   is SERVING while the process runs; the service's own name (with [`HaServer::serve`]) is
//!   SERVING only while master, so a health-checking load balancer finds the master.
//! - Stopping ([`HaServer::shutdown`], or the future of [`HaServer::run_until`], or SIGTERM /
//!   Ctrl-C in [`HaServer::run_until_signal`]): resign first (requests are refused from that
//!   instant; once the requests admitted as master have been answered, at most one lease later,
//!   the node is deleted and a standby takes over at once), then stop accepting and let the
//!   other calls in flight finish (at most [`HaServerConfig::drain_timeout`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_provider::Error> {
//! use zoorpc_provider::{Greeter, HaServer, HaServerConfig};
//! use zoorpc_proto::HelloServiceServer;
//! let config = HaServerConfig::new("127.0.0.1:2181", "/soa/master/services/Hello:1.0.0", 0);
//! let server = HaServer::serve(config, HelloServiceServer::new(Greeter::new("me"))).await?;
//! println!("{} is {}", server.address(), server.role());
//! server.run_until_signal().await?;
//! # Ok(()) }
//! ```

mod start;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};
use zoorpc_registry::election::FastTakeover;
use zoorpc_registry::provider_url::host_port;
use zoorpc_registry::{ElectionOptions, MasterElection, Role, Session, ZkCredential};

use crate::error::{Error, Result};
use crate::master_gate::MasterGate;
use crate::reflection::{REFLECTION_V1, REFLECTION_V1ALPHA, with_reflection};
use crate::shutdown::StopSignals;
use crate::startup::{GrpcService, listen};
use crate::tls::ProviderTls;

/// The gRPC health service's name: exempt from the gate.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// How to run an HA server.
#[derive(Clone, Debug)]
pub struct HaServerConfig {
    /// ZooKeeper connect string.
    pub zk: String,
    /// Election path, e.g. `/soa/master/services/Echo:1.0.0`.
    pub path: String,
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Host written into the master node (defaults to the listen IP, which must then not be
    /// `0.0.0.0` or `::`; see `advertised_host`). The server must answer there: it is checked
    /// before contending.
    pub advertise_host: Option<String>,
    /// ZooKeeper session timeout: how long after a crash a standby takes over.
    pub session_timeout: Duration,
    /// Election tuning. [`HaServerConfig::new`] switches the fast takeover on
    /// ([`zoorpc_registry::election::FastTakeover`]): this server's own process serves the
    /// address it contends with (checked before it contends), so a standby that finds that
    /// address refusing connections takes over at once instead of after the session timeout.
    pub election: ElectionOptions,
    /// Longest wait for calls in flight on shutdown.
    pub drain_timeout: Duration,
    /// The ZooKeeper digest identity (`user:password`) to authenticate with; nodes created are
    /// then readable by anyone and changeable only by it. `None` (default): open nodes.
    pub zk_auth: Option<ZkCredential>,
    /// Encoded `FileDescriptorSet`s of the services served, for server reflection (v1 and
    /// v1alpha; answered whatever the role, as health is).
    pub file_descriptor_sets: Vec<&'static [u8]>,
    /// Serve TLS (optionally requiring client certificates); `None` (default): plaintext. The
    /// master node holds `host:port` only, so every contender of one path and every client
    /// must agree: clients set `MasterClientConfig::tls` (zoorpc-consumer) to match.
    pub tls: Option<ProviderTls>,
}

impl HaServerConfig {
    /// An HA server on `127.0.0.1:port` contending at `path`; 10 s session timeout, 30 s drain.
    ///
    /// ```
    /// use zoorpc_provider::HaServerConfig;
    /// use zoorpc_registry::default_master_path;
    /// let mut config = HaServerConfig::new("127.0.0.1:2181", default_master_path("Echo", "1.0.0"), 9090);
    /// config.advertise_host = Some("10.0.0.7".into());
    /// assert_eq!(config.path, "/soa/master/services/Echo:1.0.0");
    /// assert_eq!(config.listen.port(), 9090);
    /// ```
    pub fn new(zk: impl Into<String>, path: impl Into<String>, port: u16) -> Self {
        HaServerConfig {
            zk: zk.into(),
            path: path.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            advertise_host: None,
            session_timeout: Duration::from_secs(10),
            election: ElectionOptions {
                fast_takeover: FastTakeover::on(),
                ..ElectionOptions::default()
            },
            drain_timeout: Duration::from_secs(30),
            zk_auth: None,
            file_descriptor_sets: Vec::new(),
            tls: None,
        }
    }
}

/// A running active/standby server.
#[derive(Debug)]
pub struct HaServer {
    /// The advertised `host:port`, this contender's address in the master node.
    address: String,
    /// Where the server listens.
    addr: SocketAddr,
    /// The contender; `None` once resigned.
    election: Option<MasterElection>,
    /// The ZooKeeper session the contender runs in.
    session: Session,
    health: HealthReporter,
    /// The service names whose health follows the role (not `""`, the whole server).
    health_names: Vec<&'static str>,
    /// Mirrors the role into `health_names`' statuses.
    health_task: Option<JoinHandle<()>>,
    /// Dropping it (with the server) stops the server too.
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<start::ServerTask>,
    drain_timeout: Duration,
}

impl HaServer {
    /// Serves any tonic service (plus gRPC health) while master, as described in the
    /// [module docs](self); returns once the first role is decided.
    pub async fn serve<S>(config: HaServerConfig, service: S) -> Result<HaServer>
    where
        S: GrpcService,
    {
        HaServer::launch(config, &[S::NAME], move |_| Routes::new(service)).await
    }

    /// Serves the routes `routes(address)` builds (several services; `address` is the
    /// advertised `host:port`) while master, plus gRPC health for the whole server.
    pub async fn start_with(
        config: HaServerConfig,
        routes: impl FnOnce(&str) -> Routes,
    ) -> Result<HaServer> {
        HaServer::launch(config, &[], routes).await
    }

    /// Like [`HaServer::start_with`], with health also reporting each of `names` (the gRPC
    /// names of the services in `routes`, e.g. `hello.v1.HelloService`) SERVING while master, as
    /// [`HaServer::serve`] does for its one service: a health-checking load balancer finds the
    /// master by any of them.
    pub async fn start_named(
        config: HaServerConfig,
        names: &[&'static str],
        routes: impl FnOnce(&str) -> Routes,
    ) -> Result<HaServer> {
        HaServer::launch(config, names, routes).await
    }

    /// The lifecycle of the [module docs](self), steps 1 to 4 in order (each step is in
    /// `start.rs`).
    async fn launch(
        config: HaServerConfig,
        names: &[&'static str],
        routes: impl FnOnce(&str) -> Routes,
    ) -> Result<HaServer> {
        let (listener, addr, host) =
            listen(config.listen, config.advertise_host.as_deref()).await?;
        // An IPv6 literal is bracketed, as in a URL, so `host:port` stays dialable.
        let address = host_port(&host, addr.port());

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status("", ServingStatus::Serving).await;
        for name in names {
            health
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        let gate = MasterGate::unbound()
            .exempt(HEALTH_SERVICE)
            .exempt(REFLECTION_V1)
            .exempt(REFLECTION_V1ALPHA);
        let routes = with_reflection(
            routes(&address).add_service(health_service),
            &config.file_descriptor_sets,
        )
        .map_err(|e| Error::NotServing {
            addr,
            detail: format!("reflection: {e}; check HaServerConfig::file_descriptor_sets"),
        })?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = start::serve_gated(&config, listener, routes, &gate, stop_rx)?;
        // Contend only with an address that reaches this server. (On an error below, `stop_tx`
        // is dropped and the server stops.)
        start::check_advertised(&config, &address, addr).await?;
        let (session, election) = start::contend(&config, &address).await?;
        gate.bind(election.mastership());
        let health_task = (!names.is_empty()).then(|| {
            tokio::spawn(start::follow_health(
                election.subscribe(),
                health.clone(),
                names.to_vec(),
            ))
        });
        info!(%address, path = %config.path, role = %election.role(), "HA server contending");
        Ok(HaServer {
            address,
            addr,
            election: Some(election),
            session,
            health,
            health_names: names.to_vec(),
            health_task,
            stop_server: Some(stop_tx),
            server: Some(server),
            drain_timeout: config.drain_timeout,
        })
    }

    /// The advertised address, `host:port`, as written into the master node.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current role ([`Role::Left`] once resigned).
    pub fn role(&self) -> Role {
        self.election
            .as_ref()
            .map_or(Role::Left, MasterElection::role)
    }

    /// The election this server contends in (for its role changes, its fence, a
    /// [`zoorpc_registry::MasterJob`]); `None` once resigned.
    pub fn election(&self) -> Option<&MasterElection> {
        self.election.as_ref()
    }

    /// The ZooKeeper session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Leaves the election, keeping the server up: reports [`Role::Left`] (every request is
    /// refused from this instant), deletes the master node if held (a standby takes over at
    /// once) and returns once ZooKeeper confirmed it. Doing it again does nothing.
    pub async fn resign(&mut self) -> Result<()> {
        if let Some(task) = self.health_task.take() {
            task.abort();
        }
        for name in &self.health_names {
            self.health
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        match self.election.take() {
            Some(election) => election.resign().await.map_err(Error::from),
            None => Ok(()),
        }
    }

    /// Resigns (if not done yet), then stops accepting and lets calls in flight finish (at most
    /// the drain timeout). A failed resign (the node then goes with the session) is returned
    /// after the server stopped.
    pub async fn shutdown(mut self) -> Result<()> {
        let resigned = self.resign().await;
        if let Err(e) = &resigned {
            warn!(error = %e, "could not delete the master node; it goes with the session");
        }
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            match tokio::time::timeout(self.drain_timeout, server).await {
                Ok(Ok(Ok(()))) => info!(address = %self.address, "drained and stopped"),
                Ok(Ok(Err(e))) => return Err(Error::Server(e)),
                Ok(Err(join)) => warn!(error = %join, "server task ended abnormally"),
                Err(_) => {
                    warn!(timeout = ?self.drain_timeout, "in-flight calls did not finish; stopping anyway")
                }
            }
        }
        resigned
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down (resign, drain, stop).
    pub async fn run_until_signal(self) -> Result<()> {
        let mut signals = StopSignals::listen()?;
        self.run_until(signals.recv()).await
    }

    /// Serves until `shutdown` completes, then shuts down (resign, drain, stop): the program
    /// decides what stops it.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        shutdown.await;
        info!(address = %self.address, "stopping; resigning, then draining");
        self.shutdown().await
    }
}
