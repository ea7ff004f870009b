//! `ServerSettings`: what every zoorpc server is configured with, provider or active/standby
//! alike (ZooKeeper, listen and advertised address, TLS, ZooKeeper identity, session timeout,
//! drain, reflection), and the builder methods both configs offer for it.
//!
//! The settings are private fields behind builder methods (tonic's `Endpoint` is the model), so
//! a setting added later breaks no user's code.

use std::net::SocketAddr;
use std::time::Duration;

use zoorpc_registry::ZkCredential;

use crate::tls::ProviderTls;

/// The part of [`ProviderConfig`](crate::ProviderConfig) and
/// [`HaServerConfig`](crate::HaServerConfig) they share.
#[derive(Clone, Debug)]
pub(crate) struct ServerSettings {
    /// ZooKeeper connect string.
    pub(crate) zk: String,
    /// Address to listen on; port 0 picks a free one.
    pub(crate) listen: SocketAddr,
    /// Host clients are told to dial (defaults to the listen IP, which must then not be
    /// `0.0.0.0` or `::`); checked with a health call before it is announced.
    pub(crate) advertise_host: Option<String>,
    /// ZooKeeper session timeout: how long after a crash the server's nodes disappear.
    pub(crate) session_timeout: Duration,
    /// Pause between withdrawing (deregistering, resigning) and closing the listener on a stop,
    /// so clients see the withdrawal before connections are refused.
    pub(crate) drain_grace: Duration,
    /// Longest wait for calls in flight on a stop.
    pub(crate) drain_timeout: Duration,
    /// The ZooKeeper digest identity to authenticate with; `None`: open nodes.
    pub(crate) zk_auth: Option<ZkCredential>,
    /// Encoded `FileDescriptorSet`s of the services served, for server reflection.
    pub(crate) file_descriptor_sets: Vec<&'static [u8]>,
    /// TLS to serve with; `None`: plaintext HTTP/2.
    pub(crate) tls: Option<ProviderTls>,
}

impl ServerSettings {
    /// Listening on `127.0.0.1:port`, 10 s session timeout, 30 s drain timeout, no drain grace,
    /// plaintext, open nodes.
    pub(crate) fn new(zk: String, port: u16) -> ServerSettings {
        ServerSettings {
            zk,
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            advertise_host: None,
            session_timeout: Duration::from_secs(10),
            drain_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(30),
            zk_auth: None,
            file_descriptor_sets: Vec::new(),
            tls: None,
        }
    }
}

/// The builder methods of the shared settings, for a config type with a `settings` field; `$what`
/// names what the server announces, `$where` where (for the docs).
macro_rules! settings_builders {
    ($what:literal, $where:literal) => {
        /// Listens on `addr` instead of `127.0.0.1:port`; port 0 picks a free one. An
        /// unspecified IP (`0.0.0.0`, `::`) needs [`Self::advertise_host`].
        pub fn listen(mut self, addr: std::net::SocketAddr) -> Self {
            self.settings.listen = addr;
            self
        }

        #[doc = concat!("The host written into ", $where, " (default: the listen IP). The server")]
        /// must answer there: a health call to it is made before anything is announced. Never
        /// `0.0.0.0` or `::`, which no client can dial.
        pub fn advertise_host(mut self, host: impl Into<String>) -> Self {
            self.settings.advertise_host = Some(host.into());
            self
        }

        #[doc = concat!("The ZooKeeper session timeout (default 10 s): how long after a crash ", $what, ".")]
        pub fn session_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.session_timeout = timeout;
            self
        }

        /// The pause on a stop between withdrawing from ZooKeeper and closing the listener, so
        /// clients see the withdrawal before connections are refused.
        pub fn drain_grace(mut self, grace: std::time::Duration) -> Self {
            self.settings.drain_grace = grace;
            self
        }

        /// The longest wait for calls in flight on a stop (default 30 s).
        pub fn drain_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.drain_timeout = timeout;
            self
        }

        /// The ZooKeeper digest identity (`user:password`) to authenticate with: the nodes the
        /// server creates are then readable by anyone and changeable only by it. `None`
        /// (default): open nodes.
        pub fn zk_auth(mut self, credential: impl Into<Option<zoorpc_registry::ZkCredential>>) -> Self {
            self.settings.zk_auth = credential.into();
            self
        }

        /// Adds an encoded `FileDescriptorSet` of the services served (e.g.
        /// `tonic::include_file_descriptor_set!("my_descriptor")`) to what server reflection
        /// (v1 and v1alpha) describes, so grpcurl and Python's grpcio-reflection can list and
        /// call them. Health and reflection are always described.
        pub fn file_descriptor_set(mut self, set: &'static [u8]) -> Self {
            self.settings.file_descriptor_sets.push(set);
            self
        }

        /// Serves TLS with this certificate and key (optionally requiring client
        /// certificates); `None` (default): plaintext HTTP/2.
        pub fn tls(mut self, tls: impl Into<Option<$crate::ProviderTls>>) -> Self {
            self.settings.tls = tls.into();
            self
        }
    };
}

pub(crate) use settings_builders;
