//! `Provider`: a gRPC server kept registered in ZooKeeper for as long as it serves.
//!
//! Lifecycle, in order:
//! 1. decide the advertised URL: `advertise_host`, else the listen IP; an unspecified address
//!    (`0.0.0.0`, `::`) is refused, advertised or implied (`advertised_host`);
//! 2. bind the listener (a taken port is a clear [`Error::PortInUse`]);
//! 3. open the ZooKeeper session (an unreachable ensemble is a clear error);
//! 4. serve `HelloService`, gRPC health and reflection (v1 and v1alpha, describing
//!    [`ProviderConfig::file_descriptor_sets`]), and check through a real gRPC health
//!    call *to the advertised URL* that the server answers there
//!    ([`Error::AdvertisedUnreachable`] naming the URL otherwise);
//!    (over TLS when [`ProviderConfig::tls`] is set: the URL is then `https://`);
//! 5. only then register `<base>/provider<seq>` = URL.
//!
//! Stopping ([`Provider::shutdown`], or SIGTERM / Ctrl-C in [`Provider::run_until_signal`]):
//! 1. report NOT_SERVING on the health service and delete the node (confirmed by ZooKeeper);
//! 2. wait `drain_grace` so consumers see the deletion before the listener closes;
//! 3. stop accepting, let in-flight calls finish (at most `drain_timeout`), exit.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};
use zoorpc_proto::{FILE_DESCRIPTOR_SET, HelloServiceServer};
use zoorpc_registry::{ProviderUrl, Registration, Session, SessionConfig, ZkCredential};

use crate::error::{Error, Result};
use crate::greeter::Greeter;
use crate::reflection::with_reflection;
use crate::served_metrics::ServedMetrics;
use crate::shutdown::StopSignals;
use crate::startup::{GrpcService, check_serving_tls, listen};
use crate::tls::ProviderTls;

/// The gRPC service name the health service reports on.
///
/// ```
/// use tonic::server::NamedService;
/// use zoorpc_proto::HelloServiceServer;
/// use zoorpc_provider::{Greeter, HELLO_SERVICE_NAME};
/// assert_eq!(HELLO_SERVICE_NAME, <HelloServiceServer<Greeter> as NamedService>::NAME);
/// ```
pub const HELLO_SERVICE_NAME: &str = "hello.v1.HelloService";

/// How to run a provider.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// ZooKeeper connect string.
    pub zk: String,
    /// Where to register, e.g. `/registry`.
    pub base_path: String,
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Host written into the URL (defaults to the listen IP, which must then not be `0.0.0.0`
    /// or `::`; see `advertised_host`). The server must answer there: it is checked before
    /// registering.
    pub advertise_host: Option<String>,
    /// ZooKeeper session timeout: how long after a crash the node disappears.
    pub session_timeout: Duration,
    /// Pause between deleting the node and closing the listener on shutdown.
    pub drain_grace: Duration,
    /// Longest wait for in-flight calls on shutdown.
    pub drain_timeout: Duration,
    /// Artificial latency of every `SayHello` (zero for none).
    pub delay: Duration,
    /// Metadata written into the URL as query parameters, e.g. `("weight", "50")`.
    pub metadata: Vec<(String, String)>,
    /// The ZooKeeper digest identity (`user:password`) to authenticate with; nodes created are
    /// then readable by anyone and changeable only by it. `None` (default): open nodes.
    pub zk_auth: Option<ZkCredential>,
    /// Encoded `FileDescriptorSet`s of the services served (e.g.
    /// `tonic::include_file_descriptor_set!("my_descriptor")`), for server reflection (v1 and
    /// v1alpha) so grpcurl and Python's grpcio-reflection can list and call them. Health and
    /// reflection are always described; [`Provider::start`] adds `HelloService`'s.
    pub file_descriptor_sets: Vec<&'static [u8]>,
    /// Serve TLS with this certificate and key (optionally requiring client certificates) and
    /// register `https://host:port`; `None` (default): plaintext HTTP/2, `http://`.
    pub tls: Option<ProviderTls>,
}

impl ProviderConfig {
    /// A provider on `127.0.0.1:port` registering under `base_path`: 10 s session timeout,
    /// 250 ms drain grace, 30 s drain timeout, no metadata, open nodes. Checked when started.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zoorpc_provider::ProviderConfig;
    /// let mut config = ProviderConfig::new("127.0.0.1:2181", "/services/echo", 0);
    /// config.metadata.push(("weight".into(), "50".into()));
    /// config.session_timeout = Duration::from_secs(4);
    /// assert_eq!(config.listen.to_string(), "127.0.0.1:0");
    /// assert_eq!(config.drain_grace, Duration::from_millis(250));
    /// ```
    pub fn new(zk: impl Into<String>, base_path: impl Into<String>, port: u16) -> Self {
        ProviderConfig {
            zk: zk.into(),
            base_path: base_path.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            advertise_host: None,
            session_timeout: Duration::from_secs(10),
            drain_grace: Duration::from_millis(250),
            drain_timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            metadata: Vec::new(),
            zk_auth: None,
            file_descriptor_sets: Vec::new(),
            tls: None,
        }
    }
}

/// A running, registered provider.
#[derive(Debug)]
pub struct Provider {
    url: ProviderUrl,
    addr: SocketAddr,
    registration: Option<Registration>,
    session: Session,
    health: HealthReporter,
    /// What health reports on: the server (`""`) and each service served.
    health_names: Vec<&'static str>,
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<ServerTask>,
    drain_grace: Duration,
    drain_timeout: Duration,
}

impl Provider {
    /// Starts serving `HelloService` and registers once the server answers.
    pub async fn start(mut config: ProviderConfig) -> Result<Provider> {
        config.file_descriptor_sets.push(FILE_DESCRIPTOR_SET);
        let greeter_delay = config.delay;
        Provider::launch(config, &[HELLO_SERVICE_NAME], move |url| {
            Routes::new(HelloServiceServer::new(
                Greeter::new(url.as_str()).with_delay(greeter_delay),
            ))
        })
        .await
    }

    /// Serves any tonic service (plus gRPC health, reporting `S::NAME` SERVING, and
    /// reflection) and registers once a health call to the advertised URL says `S::NAME` is
    /// SERVING.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_provider::Error> {
    /// use zoorpc_provider::{Greeter, Provider, ProviderConfig};
    /// use zoorpc_proto::HelloServiceServer;
    /// let config = ProviderConfig::new("127.0.0.1:2181", "/services/hello", 0);
    /// let provider = Provider::serve(config, HelloServiceServer::new(Greeter::new("me"))).await?;
    /// provider.run_until_signal().await?;
    /// # Ok(()) }
    /// ```
    pub async fn serve<S>(config: ProviderConfig, service: S) -> Result<Provider>
    where
        S: GrpcService,
    {
        Provider::launch(config, &[S::NAME], move |_| Routes::new(service)).await
    }

    /// Starts serving the routes `routes(url)` builds (several services; plus health and
    /// reflection). Health reports the whole server (service `""`) SERVING; the startup check
    /// asks for that.
    pub async fn start_with(
        config: ProviderConfig,
        routes: impl FnOnce(&ProviderUrl) -> Routes,
    ) -> Result<Provider> {
        Provider::launch(config, &[], routes).await
    }

    /// Listens, connects, serves `routes` with health reporting `names` (and the server, `""`)
    /// SERVING, checks the advertised URL answers, registers.
    async fn launch(
        config: ProviderConfig,
        names: &[&'static str],
        routes: impl FnOnce(&ProviderUrl) -> Routes,
    ) -> Result<Provider> {
        let (listener, addr, host) =
            listen(config.listen, config.advertise_host.as_deref()).await?;
        let url = advertised_url(&config, &host, addr.port())?;
        let session = Session::connect(
            SessionConfig::new(&config.zk)
                .session_timeout(config.session_timeout)
                .credential(config.zk_auth.clone()),
        )
        .await?;

        let (health, health_service) = tonic_health::server::health_reporter();
        let health_names = all_serving(&health, names).await;
        let routes = with_reflection(
            routes(&url).add_service(health_service),
            &config.file_descriptor_sets,
        )
        .map_err(|e| Error::NotServing {
            addr,
            detail: format!("reflection: {e}; check ProviderConfig::file_descriptor_sets"),
        })?;
        let (stop_tx, server) = spawn_server(config.tls.as_ref(), listener, routes)?;
        let mut provider = Provider {
            url,
            addr,
            registration: None,
            session,
            health,
            health_names,
            stop_server: Some(stop_tx),
            server: Some(server),
            drain_grace: config.drain_grace,
            drain_timeout: config.drain_timeout,
        };
        let checked = names.first().copied().unwrap_or("");
        check_serving_tls(&provider.url.endpoint(), addr, checked, config.tls.as_ref()).await?;
        let registration =
            Registration::register(&provider.session, &config.base_path, &provider.url).await?;
        provider.registration = Some(registration);
        Ok(provider)
    }

    /// The URL this provider is registered under.
    pub fn url(&self) -> &ProviderUrl {
        &self.url
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registration node's path, e.g. `/registry/provider0000000042`.
    pub fn node_path(&self) -> Option<String> {
        self.registration.as_ref().and_then(|r| r.node_path())
    }

    /// Changes of the registration node's path: a new path each time the node is re-created
    /// (after a session expiry, an operator's delete, a ZooKeeper wipe), `None` while it is
    /// being re-created or once deregistered.
    pub fn node_changes(&self) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        self.registration.as_ref().map(|r| r.subscribe())
    }

    /// The provider's ZooKeeper session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Deregisters, drains in-flight calls, stops.
    pub async fn shutdown(mut self) -> Result<()> {
        for name in &self.health_names {
            self.health
                .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        let deregistered = match self.registration.take() {
            Some(r) => r.deregister().await,
            None => Ok(()),
        };
        if let Err(e) = &deregistered {
            warn!(error = %e, "could not delete the registration node; it goes with the session");
        }
        tokio::time::sleep(self.drain_grace).await;
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            match tokio::time::timeout(self.drain_timeout, server).await {
                Ok(Ok(Ok(()))) => info!(url = %self.url, "drained and stopped"),
                Ok(Ok(Err(e))) => return Err(Error::Server(e)),
                Ok(Err(join)) => warn!(error = %join, "server task ended abnormally"),
                Err(_) => {
                    warn!(timeout = ?self.drain_timeout, "in-flight calls did not finish; stopping anyway")
                }
            }
        }
        deregistered.map_err(Error::from)
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<()> {
        let mut signals = StopSignals::listen()?;
        self.run_until(signals.recv()).await
    }

    /// Serves until `shutdown` completes, then shuts down gracefully (deregister, drain grace,
    /// drain, stop), as mini-redis's `server::run(listener, shutdown)`: the program decides what
    /// stops it.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        shutdown.await;
        info!(url = %self.url, "stopping; deregistering, then draining");
        self.shutdown().await
    }
}

/// The task serving the provider's routes until stopped.
type ServerTask = JoinHandle<std::result::Result<(), tonic::transport::Error>>;

/// The URL the provider registers: `https://` with TLS, its host and port, its metadata.
fn advertised_url(config: &ProviderConfig, host: &str, port: u16) -> Result<ProviderUrl> {
    let mut url = match config.tls {
        Some(_) => ProviderUrl::https(host, port)?,
        None => ProviderUrl::http(host, port)?,
    };
    for (key, value) in &config.metadata {
        url = url.with_metadata(key, value)?;
    }
    Ok(url)
}

/// Marks the whole server ("") and each of `names` SERVING; returns them all.
async fn all_serving(health: &HealthReporter, names: &[&'static str]) -> Vec<&'static str> {
    let mut health_names = vec![""];
    health_names.extend_from_slice(names);
    for name in &health_names {
        health
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    health_names
}

/// The server task serving `routes` on `listener` (over TLS with `tls`), and what stops it.
fn spawn_server(
    tls: Option<&ProviderTls>,
    listener: tokio::net::TcpListener,
    routes: Routes,
) -> Result<(oneshot::Sender<()>, ServerTask)> {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.server_config())?;
    }
    let server = tokio::spawn(
        builder
            .tcp_nodelay(true)
            .layer(ServedMetrics)
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stop_rx.await;
            }),
    );
    Ok((stop_tx, server))
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
    }
}
