//! The one server lifecycle behind [`Provider`](crate::Provider) and
//! [`HaServer`](crate::HaServer). What differs between them is how a server tells the world where
//! it is ([`Announce`]: register a URL, or contend for mastership with `host:port`) and, for the
//! active/standby server, the [`MasterGate`] in front of its services.
//!
//! Starting, in order ([`Server::launch`]):
//! 1. decide the advertised host (`advertise_host`, else the listen IP; `0.0.0.0`/`::` refused)
//!    and bind the listener (a taken port is a clear [`Error::PortInUse`]);
//! 2. serve the user's services, gRPC health and reflection (behind the gate, if any: every
//!    request refused until this process is master);
//! 3. check with a gRPC health call *to the advertised address* that the server answers there
//!    ([`Error::AdvertisedUnreachable`] otherwise): nothing announces an address that does not
//!    reach this server;
//! 4. open the ZooKeeper session and announce.
//!
//! Stopping ([`Server::stop`]): health reports NOT_SERVING, withdraw (delete the registration or
//! resign; confirmed by ZooKeeper), wait the drain grace, stop accepting, let calls in flight
//! finish (at most the drain timeout).

pub(crate) mod services;
pub(crate) mod settings;

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server as TonicServer;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};
use zoorpc_registry::{Role, Session, SessionConfig};

use crate::error::{Error, Result};
use crate::master_gate::MasterGate;
use crate::reflection::with_reflection;
use crate::served_metrics::ServedMetrics;
use crate::shutdown::StopSignals;
use crate::startup::{check_serving, listen};
use services::Services;
use settings::ServerSettings;

/// How a server tells the world where it is, and takes it back: the one thing (with the gate it
/// implies) a provider and an active/standby server do differently.
pub(crate) trait Announce: Sized {
    /// What is announced: a provider's URL, an HA server's `host:port`.
    type Advertised: Display + std::fmt::Debug;
    /// What is held while announced: the registration, the candidacy.
    type Held: std::fmt::Debug;
    /// What is not done when the self-check fails, for its error: `not registered`, `not
    /// contending`.
    const WITHHELD: &'static str;

    /// What to announce for the advertised `host` and the listener's `port`.
    fn advertise(&self, host: &str, port: u16, tls: bool) -> Result<Self::Advertised>;

    /// The `http://` or `https://` URL of `advertised`, for the self-check.
    fn endpoint(advertised: &Self::Advertised, tls: bool) -> String;

    /// The gate in front of the services: `None` lets every request through. With a gate, the
    /// services' health follows the gate (NOT_SERVING until [`Announce::announce`] says
    /// otherwise) and the self-check asks for the whole server (`""`).
    fn gate(&self) -> Option<MasterGate>;

    /// Announces `advertised` in `session` (binding `gate`, if any, to what it follows).
    async fn announce(
        self,
        session: &Session,
        advertised: &Self::Advertised,
        gate: Option<MasterGate>,
    ) -> Result<Self::Held>;

    /// The roles the services' health follows (SERVING while master), if it follows any.
    fn roles(held: &Self::Held) -> Option<watch::Receiver<Role>>;

    /// Takes the announcement back; done once ZooKeeper confirmed it.
    async fn withdraw(held: Self::Held) -> Result<()>;
}

/// The task serving the routes until stopped: ends with the server's own result.
type ServerTask = JoinHandle<std::result::Result<(), tonic::transport::Error>>;

/// A running server and its announcement.
#[derive(Debug)]
pub(crate) struct Server<A: Announce> {
    /// What was announced.
    pub(crate) advertised: A::Advertised,
    /// Where the server listens.
    pub(crate) addr: SocketAddr,
    /// The ZooKeeper session the announcement lives in.
    pub(crate) session: Session,
    /// The announcement; `None` once withdrawn.
    pub(crate) held: Option<A::Held>,
    /// Sets what health reports.
    health: HealthReporter,
    /// The services health reports on (not `""`, the whole server).
    names: Vec<&'static str>,
    /// Makes the services' health follow the roles ([`Announce::roles`]), if they follow any.
    health_task: Option<JoinHandle<()>>,
    /// Stops the server (so does dropping it, with the server).
    stop_server: Option<oneshot::Sender<()>>,
    /// The server task; `None` once stopped.
    task: Option<ServerTask>,
    /// See [`ServerSettings::drain_grace`].
    drain_grace: Duration,
    /// See [`ServerSettings::drain_timeout`].
    drain_timeout: Duration,
}

impl<A: Announce> Server<A> {
    /// The lifecycle of the [module docs](self), steps 1 to 4: `services` is given what will be
    /// announced.
    pub(crate) async fn launch(
        settings: &ServerSettings,
        announce: A,
        services: impl FnOnce(&A::Advertised) -> Services,
    ) -> Result<Server<A>> {
        let (listener, addr, host) =
            listen(settings.listen, settings.advertise_host.as_deref()).await?;
        let tls = settings.tls.is_some();
        let advertised = announce.advertise(&host, addr.port(), tls)?;
        let gate = announce.gate();

        let (routes, names) = services(&advertised).into_parts();
        let (health, stop_tx, task) =
            serve(settings, listener, addr, routes, &names, gate.clone()).await?;
        // From here on an error drops `stop_tx`, which stops the server.
        let checked = match (&gate, names.first()) {
            (None, Some(name)) => name,
            _ => "",
        };
        let endpoint = A::endpoint(&advertised, tls);
        check_serving(&endpoint, addr, checked, settings.tls.as_ref(), A::WITHHELD).await?;

        let session = Session::connect(
            SessionConfig::new(&settings.zk)
                .session_timeout(settings.session_timeout)
                .credential(settings.zk_auth.clone()),
        )
        .await?;
        let held = announce.announce(&session, &advertised, gate).await?;
        let health_task = match A::roles(&held) {
            Some(roles) if !names.is_empty() => Some(tokio::spawn(follow_health(
                roles,
                health.clone(),
                names.clone(),
            ))),
            _ => None,
        };
        Ok(Server {
            advertised,
            addr,
            session,
            held: Some(held),
            health,
            names,
            health_task,
            stop_server: Some(stop_tx),
            task: Some(task),
            drain_grace: settings.drain_grace,
            drain_timeout: settings.drain_timeout,
        })
    }

    /// Reports the services NOT_SERVING and takes the announcement back, keeping the server
    /// up. Doing it again does nothing.
    pub(crate) async fn withdraw(&mut self) -> Result<()> {
        if let Some(task) = self.health_task.take() {
            task.abort();
        }
        for name in &self.names {
            self.health
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        match self.held.take() {
            Some(held) => A::withdraw(held).await,
            None => Ok(()),
        }
    }

    /// The first half of the stop: the whole server NOT_SERVING, then withdraw; the server keeps
    /// serving the calls it has. Once done, [`stop`](Self::stop) only drains.
    pub(crate) async fn deregister(&mut self) -> Result<()> {
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        self.withdraw().await
    }

    /// The stop of the [module docs](self). A failed withdrawal (the nodes then go with the
    /// session) is returned after the server stopped.
    pub(crate) async fn stop(mut self) -> Result<()> {
        let withdrawn = self.deregister().await;
        if let Err(e) = &withdrawn {
            warn!(error = %e, "could not withdraw from ZooKeeper; the nodes go with the session");
        }
        tokio::time::sleep(self.drain_grace).await;
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(self.drain_timeout, task).await {
                Ok(Ok(Ok(()))) => info!(advertised = %self.advertised, "drained and stopped"),
                Ok(Ok(Err(e))) => return Err(Error::Server(e)),
                Ok(Err(join)) => warn!(error = %join, "server task ended abnormally"),
                Err(_) => {
                    warn!(timeout = ?self.drain_timeout, "in-flight calls did not finish; stopping anyway")
                }
            }
        }
        withdrawn
    }

    /// Serves until SIGTERM or Ctrl-C, then stops.
    pub(crate) async fn run_until_signal(self) -> Result<()> {
        let mut signals = StopSignals::listen()?;
        self.run_until(signals.recv()).await
    }

    /// Serves until `shutdown` completes, then stops.
    pub(crate) async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        shutdown.await;
        info!(advertised = %self.advertised, "stopping; withdrawing, then draining");
        self.stop().await
    }
}

/// Step 2: serves `routes` on `listener` behind `gate` (if any), with health (the whole server
/// SERVING; `names` SERVING too, or NOT_SERVING behind a gate until the role says otherwise) and
/// reflection; returns what sets the health, what stops the server (so does dropping it), and
/// the server task.
async fn serve(
    settings: &ServerSettings,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    routes: tonic::service::Routes,
    names: &[&'static str],
    gate: Option<MasterGate>,
) -> Result<(HealthReporter, oneshot::Sender<()>, ServerTask)> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    let initial = match gate {
        Some(_) => ServingStatus::NotServing,
        None => ServingStatus::Serving,
    };
    for name in names {
        health.set_service_status(*name, initial).await;
    }
    let routes = with_reflection(
        routes.add_service(health_service),
        &settings.file_descriptor_sets,
    )
    .map_err(|e| Error::NotServing {
        addr,
        detail: format!("reflection: {e}; check the config's `file_descriptor_set`s"),
    })?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let mut builder = TonicServer::builder();
    if let Some(tls) = &settings.tls {
        builder = builder.tls_config(tls.server_config())?;
    }
    let task = tokio::spawn(
        builder
            .tcp_nodelay(true)
            .layer(ServedMetrics)
            .layer(tower::util::option_layer(gate))
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stop_rx.await;
            }),
    );
    Ok((health, stop_tx, task))
}

impl<A: Announce> Drop for Server<A> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
    }
}

/// Sets `names` SERVING while `roles` says master, NOT_SERVING otherwise, until the roles end.
async fn follow_health(
    mut roles: watch::Receiver<Role>,
    health: HealthReporter,
    names: Vec<&'static str>,
) {
    loop {
        let status = if roles.borrow_and_update().is_master() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in &names {
            health.set_service_status(*name, status).await;
        }
        if roles.changed().await.is_err() {
            return;
        }
    }
}
