//! The provider's one error type.

use std::net::{IpAddr, SocketAddr};

/// How the provider's messages name what a user can change, one constant per setting: a
/// program replaces each with its own flag (`zoorpc::cli::error_line`), a library user reads
/// the setting.
pub mod settings {
    /// The port of the listen address (`ProviderConfig::listen`, `HaServerConfig::listen`).
    pub const PORT: &str = "port (the config's `listen`)";
    /// The host of the listen address.
    pub const LISTEN_HOST: &str = "the listen address (the config's `listen`)";
    /// The host written into the registry.
    pub const ADVERTISE_HOST: &str = "the config's `advertise_host`";
    /// The certificate chain file, as a load error names it.
    pub const CERT_FILE: &str = "certificate (`ProviderTls::new`)";
    /// The private key file, as a load error names it.
    pub const KEY_FILE: &str = "private key (`ProviderTls::new`)";
    /// The client CA file, as a load error names it.
    pub const CLIENT_CA_FILE: &str = "client CA (`ProviderTls::require_client_certificates`)";
}

/// Errors starting, serving or stopping a provider. Each message is one line that names the
/// address or the setting ([`settings`]) and what to do.
///
/// ```
/// use zoorpc_provider::Error;
/// let taken = Error::PortInUse { addr: "127.0.0.1:50051".parse()? };
/// assert_eq!(
///     taken.to_string(),
///     "cannot listen on 127.0.0.1:50051: the port is already in use; choose another port (the config's `listen`), or 0 for a free one"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The port is taken.
    #[error(
        "cannot listen on {addr}: the port is already in use; choose another {port}, or 0 for a free one",
        port = settings::PORT
    )]
    PortInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Binding failed for another reason.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system answered.
        #[source]
        source: std::io::Error,
    },
    /// The advertised host is the unspecified address (`0.0.0.0`, `::`), which no client can
    /// dial.
    #[error(
        "cannot advertise {host}: it means \"every interface\" and no client can dial it; give the \
         address clients should use with {advertise} (this machine's LAN IP, or 127.0.0.1 \
         for clients on this machine)",
        advertise = settings::ADVERTISE_HOST
    )]
    UnspecifiedAdvertiseHost {
        /// The host as given.
        host: String,
    },
    /// Listening on every interface without an advertised host: which address clients should
    /// dial is not known.
    #[error(
        "{listen_host} {listen} listens on every interface, so which address clients should dial \
         is not known; give it with {advertise} (this machine's LAN IP, or 127.0.0.1 for \
         clients on this machine)",
        listen_host = settings::LISTEN_HOST,
        advertise = settings::ADVERTISE_HOST
    )]
    AdvertiseHostNeeded {
        /// The unspecified listen address.
        listen: IpAddr,
    },
    /// The advertised address does not reach this server.
    #[error(
        "the advertised address {url} does not reach this server (listening on {listen}): \
         {detail}; {withheld}. Advertise an address of this machine that reaches the \
         listener ({advertise}, {listen_host})",
        advertise = settings::ADVERTISE_HOST,
        listen_host = settings::LISTEN_HOST
    )]
    AdvertisedUnreachable {
        /// The advertised endpoint that was called.
        url: String,
        /// Where the server listens.
        listen: SocketAddr,
        /// What the health call got instead of SERVING.
        detail: String,
        /// What was not done because of it: `not registered` (a provider), `not contending
        /// (not joining the election)` (an HA server).
        withheld: &'static str,
    },
    /// The server did not start serving.
    #[error("the gRPC server on {addr} did not become ready: {detail}")]
    NotServing {
        /// Where the server listens.
        addr: SocketAddr,
        /// What went wrong.
        detail: String,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Server(#[from] tonic::transport::Error),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] zoorpc_registry::Error),
    /// The TLS material cannot be used (a missing file, garbage PEM, a key not the
    /// certificate's).
    #[error(transparent)]
    Tls(#[from] zoorpc_proto::TlsError),
    /// Installing a signal handler failed.
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
