//! The consumer's one error type.

/// Errors from looking up and calling providers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The live list is empty. Returned at once, never after a wait.
    #[error(
        "no providers registered under {base_path}: start one (e.g. `cargo run --example provider -- --zk <HOST:PORT> --base-path {base_path}`) or check the base path"
    )]
    NoProviders { base_path: String },

    /// Every attempt failed with a connection failure.
    #[error("call failed on {attempts} provider(s); last failure at {url}: {status}")]
    Exhausted {
        attempts: usize,
        url: String,
        status: tonic::Status,
    },

    /// The call failed in a way that must not be retried (an application error, or a connection
    /// failure after the request may have been processed by a non-idempotent method).
    #[error("call to {url} failed: {status}")]
    Call { url: String, status: tonic::Status },

    /// A registry error (bad connect string, unreachable ZooKeeper, bad base path).
    #[error(transparent)]
    Registry(#[from] zoorpc_registry::Error),
}

impl Error {
    /// The gRPC status, if this error carries one.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Error::Exhausted { status, .. } | Error::Call { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
