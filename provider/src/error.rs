//! The provider's one error type.

use std::net::SocketAddr;

/// Errors starting, serving or stopping a provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The port is taken.
    #[error(
        "cannot listen on {addr}: the port is already in use; choose another --port, or 0 for a free one"
    )]
    PortInUse { addr: SocketAddr },
    /// Binding failed for another reason.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The address to bind or advertise is malformed.
    #[error("invalid address {0:?}: expected an IP address such as 127.0.0.1 or ::1")]
    BadAddress(String),
    /// The server did not start serving.
    #[error("the gRPC server on {addr} did not become ready: {detail}")]
    NotServing { addr: SocketAddr, detail: String },
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Server(#[from] tonic::transport::Error),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] zoorpc_registry::Error),
    /// Installing a signal handler failed.
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
