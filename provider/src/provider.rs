//! `Provider` and `ProviderConfig`: a gRPC server kept registered in ZooKeeper (see
//! [`Provider`]).

use std::net::SocketAddr;

use tokio::sync::watch;
use tracing::info;
use zoorpc_registry::{CuratorService, ProviderUrl, Registration, Role, Session};

use crate::error::Result;
use crate::master_gate::MasterGate;
use crate::server::services::{GrpcService, Services};
use crate::server::settings::{ServerSettings, settings_builders};
use crate::server::{Announce, Server};

/// How to run a provider: [`ProviderConfig::new`], then the builder methods.
///
/// ```
/// use std::time::Duration;
/// use zoorpc_provider::ProviderConfig;
/// let config = ProviderConfig::new("127.0.0.1:2181", "/services/echo", 0)
///     .metadata("weight", "50")
///     .session_timeout(Duration::from_secs(4));
/// # let _ = config;
/// ```
///
/// In a Java fleet's layout too (Curator's service discovery, Spring Cloud Zookeeper), or in it
/// only:
///
/// ```
/// use zoorpc_provider::ProviderConfig;
/// use zoorpc_registry::{CuratorPayload, CuratorService};
/// let spring = CuratorService::new("greeter").payload(CuratorPayload::SpringCloud);
/// let both = ProviderConfig::new("127.0.0.1:2181", "/registry", 0).curator(spring.clone());
/// let only = ProviderConfig::new_curator("127.0.0.1:2181", spring, 0);
/// # let _ = (both, only);
/// ```
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// What every server is configured with.
    settings: ServerSettings,
    /// Where to register `provider<seq>`, e.g. `/registry`; `None`: in the Curator layout only.
    base_path: Option<String>,
    /// The service to register an instance of in the Curator layout, if any.
    curator: Option<CuratorService>,
    /// Metadata written into the URL as query parameters, e.g. `("weight", "50")`.
    metadata: Vec<(String, String)>,
}

impl ProviderConfig {
    /// A provider on `127.0.0.1:port` (0 picks a free port) registering under `base_path`
    /// through the ZooKeeper at `zk`: 10 s session timeout, 250 ms drain grace, 30 s drain
    /// timeout, no metadata, plaintext, open nodes. Checked when started.
    pub fn new(zk: impl Into<String>, base_path: impl Into<String>, port: u16) -> Self {
        let mut settings = ServerSettings::new(zk.into(), port);
        settings.drain_grace = std::time::Duration::from_millis(250);
        ProviderConfig {
            settings,
            base_path: Some(base_path.into()),
            curator: None,
            metadata: Vec::new(),
        }
    }

    /// A provider as [`ProviderConfig::new`]'s, registered only in the Curator layout, as an
    /// instance of `service` (`<base>/<name>/<id>` holding Curator's JSON, see
    /// [`zoorpc_registry::curator`]).
    pub fn new_curator(zk: impl Into<String>, service: CuratorService, port: u16) -> Self {
        ProviderConfig::new(zk, String::new(), port).curator_only(service)
    }

    /// Registers only in the Curator layout, as an instance of `service`, instead of
    /// `<base>/provider<seq>` (the base path given to [`ProviderConfig::new`] is not used).
    pub fn curator_only(mut self, service: CuratorService) -> Self {
        self.base_path = None;
        self.curator = Some(service);
        self
    }

    /// Also registers an instance of `service` in the Curator layout, with every guarantee of
    /// the `provider<seq>` node (a fleet moving from one layout to the other). Both nodes are
    /// deleted first on a stop.
    pub fn curator(mut self, service: CuratorService) -> Self {
        self.curator = Some(service);
        self
    }

    /// Adds `key=value` to the URL's metadata (its query parameters), e.g. `("weight", "50")`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    settings_builders!("the registration node disappears", "the registered URL");
}

/// A gRPC server kept registered in ZooKeeper for as long as it serves.
///
/// Lifecycle (the one every zoorpc server runs, [`HaServer`](crate::HaServer)'s too):
/// 1. decide the advertised URL: `advertise_host`, else the listen IP; an unspecified address
///    (`0.0.0.0`, `::`) is refused, advertised or implied;
/// 2. bind the listener (a taken port is a clear [`Error::PortInUse`](crate::Error::PortInUse));
/// 3. serve the services, gRPC health and reflection (v1 and v1alpha, describing the
///    [`ProviderConfig::file_descriptor_set`]s), over TLS when [`ProviderConfig::tls`] is set
///    (the URL is then `https://`);
/// 4. check through a real gRPC health call *to the advertised URL* that the server answers
///    there ([`Error::AdvertisedUnreachable`](crate::Error::AdvertisedUnreachable) naming the
///    URL otherwise);
/// 5. open the ZooKeeper session (an unreachable ensemble is a clear error), and only then
///    register `<base>/provider<seq>` = URL (and, with [`ProviderConfig::curator`], the
///    Curator layout's instance node).
///
/// Stopping ([`Provider::shutdown`], the future of [`Provider::run_until`], or SIGTERM / Ctrl-C
/// in [`Provider::run_until_signal`]):
/// 1. report NOT_SERVING on the health service and delete the node (confirmed by ZooKeeper);
/// 2. wait the drain grace so consumers see the deletion before the listener closes;
/// 3. stop accepting, let in-flight calls finish (at most the drain timeout), exit.
#[derive(Debug)]
pub struct Provider {
    /// The lifecycle, registering.
    server: Server<Register>,
}

impl Provider {
    /// Serves any tonic service (plus gRPC health, reporting `S::NAME` SERVING, and
    /// reflection) and registers once a health call to the advertised URL says `S::NAME` is
    /// SERVING.
    ///
    /// ```no_run
    /// # async fn demo<S: zoorpc_provider::GrpcService>(my_service: S) -> Result<(), zoorpc_provider::Error> {
    /// use zoorpc_provider::{Provider, ProviderConfig};
    /// let config = ProviderConfig::new("127.0.0.1:2181", "/services/echo", 0);
    /// let provider = Provider::serve(config, my_service).await?;
    /// provider.run_until_signal().await?;
    /// # Ok(()) }
    /// ```
    pub async fn serve<S: GrpcService>(config: ProviderConfig, service: S) -> Result<Provider> {
        Provider::serve_with(config, move |_| Services::new().add_service(service)).await
    }

    /// Serves the services `services(url)` builds (several services; `url` is the URL it will
    /// register, for services that name themselves in their answers), plus health and
    /// reflection. Health reports each service added with [`Services::add_service`] and the whole
    /// server (`""`) SERVING; the startup check asks for the first service added (or `""`).
    pub async fn serve_with(
        config: ProviderConfig,
        services: impl FnOnce(&ProviderUrl) -> Services,
    ) -> Result<Provider> {
        let register = Register {
            base_path: config.base_path,
            curator: config.curator,
            metadata: config.metadata,
        };
        let server = Server::launch(&config.settings, register, services).await?;
        Ok(Provider { server })
    }

    /// The URL this provider is registered under.
    pub fn url(&self) -> &ProviderUrl {
        &self.server.advertised
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The registration node's path, e.g. `/registry/provider0000000042` (the Curator
    /// layout's instance node when that is the only one).
    pub fn node_path(&self) -> Option<String> {
        self.server
            .held
            .as_ref()
            .and_then(Registrations::first)
            .and_then(Registration::node_path)
    }

    /// The URL the registration node ([`Provider::node_path`]'s) stands for now: [`Provider::url`],
    /// or it with the weight an operator changed in ZooKeeper, which the provider keeps and
    /// registers again after an expiry ([`zoorpc_registry::weight`]).
    pub fn node_url(&self) -> ProviderUrl {
        let held = self.server.held.as_ref().and_then(Registrations::first);
        held.map_or_else(|| self.url().clone(), Registration::url)
    }

    /// As [`Provider::node_url`], for the Curator layout's instance node, when registered there.
    pub fn curator_node_url(&self) -> Option<ProviderUrl> {
        let held = self.server.held.as_ref()?;
        held.curator.as_ref().map(Registration::url)
    }

    /// The Curator layout's instance node, e.g. `/services/greeter/<uuid>`, when registered
    /// there.
    pub fn curator_node_path(&self) -> Option<String> {
        let held = self.server.held.as_ref()?;
        held.curator.as_ref()?.node_path()
    }

    /// Changes of the Curator layout's instance node's path, when registered there (its path
    /// stays the same; it is published again each time the node is re-created).
    pub fn curator_node_changes(&self) -> Option<watch::Receiver<Option<String>>> {
        let held = self.server.held.as_ref()?;
        held.curator.as_ref().map(Registration::subscribe)
    }

    /// Changes of the registration node's path ([`Provider::node_path`]'s): a new path each
    /// time the node is re-created (after a session expiry, an operator's delete, a ZooKeeper
    /// wipe), `None` while it is being re-created or once deregistered.
    pub fn node_changes(&self) -> Option<watch::Receiver<Option<String>>> {
        let held = self.server.held.as_ref()?;
        held.first().map(Registration::subscribe)
    }

    /// The provider's ZooKeeper session.
    pub fn session(&self) -> &Session {
        &self.server.session
    }

    /// The first half of [`shutdown`](Self::shutdown), for a program that reports each step:
    /// health NOT_SERVING, then the node deleted (confirmed by ZooKeeper; with ZooKeeper out of
    /// reach given up after one session timeout, and the node goes with the session). Calls in
    /// flight and new connections are still served until `shutdown`, which then only waits the
    /// drain grace and drains. Calling it again does nothing.
    pub async fn deregister(&mut self) -> Result<()> {
        self.server.deregister().await
    }

    /// Stops: NOT_SERVING, deregister, drain grace, drain, stop. A failed deregistration (the
    /// node then goes with the session) is returned after the server stopped; after
    /// [`deregister`](Self::deregister) only the drain is left.
    pub async fn shutdown(self) -> Result<()> {
        self.server.stop().await
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<()> {
        self.server.run_until_signal().await
    }

    /// Serves until `shutdown` completes, then shuts down gracefully (deregister, drain grace,
    /// drain, stop), as mini-redis's `server::run(listener, shutdown)`: the program decides what
    /// stops it.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        self.server.run_until(shutdown).await
    }
}

/// A provider's announcement: `<base_path>/provider<seq>` holding the URL, the Curator layout's
/// instance node, or both.
#[derive(Debug)]
struct Register {
    /// Where to register `provider<seq>`, if anywhere.
    base_path: Option<String>,
    /// The Curator layout's service, if any.
    curator: Option<CuratorService>,
    /// Query parameters of the URL.
    metadata: Vec<(String, String)>,
}

/// The nodes a provider keeps: at least one of the two.
#[derive(Debug)]
pub(crate) struct Registrations {
    /// `<base>/provider<seq>`.
    zoorpc: Option<Registration>,
    /// `<base>/<name>/<id>` in the Curator layout.
    curator: Option<Registration>,
}

impl Registrations {
    /// The node the program's lines name first: `provider<seq>` if there is one (a provider
    /// registers in at least one layout).
    fn first(&self) -> Option<&Registration> {
        self.zoorpc.as_ref().or(self.curator.as_ref())
    }
}

impl Announce for Register {
    type Advertised = ProviderUrl;
    type Held = Registrations;
    const WITHHELD: &'static str = "not registered";

    fn advertise(&self, host: &str, port: u16, tls: bool) -> Result<ProviderUrl> {
        let mut url = match tls {
            true => ProviderUrl::https(host, port)?,
            false => ProviderUrl::http(host, port)?,
        };
        for (key, value) in &self.metadata {
            url = url.with_metadata(key, value)?;
        }
        Ok(url)
    }

    fn endpoint(url: &ProviderUrl, _tls: bool) -> String {
        url.endpoint()
    }

    fn gate(&self) -> Option<MasterGate> {
        None
    }

    async fn announce(
        self,
        session: &Session,
        url: &ProviderUrl,
        _gate: Option<MasterGate>,
    ) -> Result<Registrations> {
        let zoorpc = match &self.base_path {
            Some(base_path) => {
                let registration = Registration::register(session, base_path, url).await?;
                info!(%url, %base_path, "registered");
                Some(registration)
            }
            None => None,
        };
        let curator = match &self.curator {
            Some(service) => match Registration::register_curator(session, service, url).await {
                Ok(registration) => {
                    info!(%url, service = %service.name(), "registered in the Curator layout");
                    Some(registration)
                }
                Err(e) => {
                    // Both or none: the node already made goes before the error is told.
                    if let Some(zoorpc) = zoorpc {
                        let _ = zoorpc.deregister().await;
                    }
                    return Err(e.into());
                }
            },
            None => None,
        };
        Ok(Registrations { zoorpc, curator })
    }

    fn roles(_: &Registrations) -> Option<watch::Receiver<Role>> {
        None
    }

    async fn withdraw(held: Registrations) -> Result<()> {
        let deregister = |r: Option<Registration>| async move {
            match r {
                Some(registration) => registration.deregister().await,
                None => Ok(()),
            }
        };
        // Both deleted at once: a stop waits for the slower of the two, not their sum.
        let (zoorpc, curator) = tokio::join!(deregister(held.zoorpc), deregister(held.curator));
        zoorpc?;
        Ok(curator?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_builders_set_what_they_name() {
        let config = ProviderConfig::new("127.0.0.1:2181", "/registry", 7);
        assert_eq!(config.settings.listen.to_string(), "127.0.0.1:7");
        assert_eq!(config.settings.session_timeout, Duration::from_secs(10));
        assert_eq!(config.settings.drain_grace, Duration::from_millis(250));
        assert_eq!(config.settings.drain_timeout, Duration::from_secs(30));
        assert!(config.settings.tls.is_none() && config.settings.zk_auth.is_none());
        let config = config
            .listen("[::1]:0".parse().unwrap())
            .advertise_host("10.0.0.7")
            .drain_grace(Duration::ZERO)
            .metadata("weight", "50")
            .metadata("zone", "a")
            .file_descriptor_set(zoorpc_proto::FILE_DESCRIPTOR_SET);
        assert_eq!(config.settings.listen.to_string(), "[::1]:0");
        assert_eq!(config.settings.advertise_host.as_deref(), Some("10.0.0.7"));
        assert_eq!(config.settings.drain_grace, Duration::ZERO);
        assert_eq!(config.settings.file_descriptor_sets.len(), 1);
        assert_eq!(config.base_path.as_deref(), Some("/registry"));
        assert!(config.curator.is_none());
        let service = CuratorService::new("greeter");
        let both = config.clone().curator(service.clone());
        assert_eq!(both.base_path.as_deref(), Some("/registry"));
        assert_eq!(both.curator.as_ref(), Some(&service));
        let only = config.clone().curator_only(service.clone());
        assert_eq!((only.base_path, only.curator), (None, Some(service)));
        let url = Register {
            base_path: config.base_path,
            curator: config.curator,
            metadata: config.metadata,
        }
        .advertise("10.0.0.7", 9, true)
        .unwrap();
        assert_eq!(url.as_str(), "https://10.0.0.7:9?weight=50&zone=a");
    }
}
