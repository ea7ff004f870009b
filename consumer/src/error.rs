//! The consumer's one error type.

/// Errors from looking up and calling providers. Each message is one line naming the base
/// path or the provider and what to do.
///
/// ```
/// use zoorpc_consumer::Error;
/// let empty = Error::NoProviders { base_path: "/services/echo".into() };
/// assert!(empty.to_string().starts_with("no providers registered under /services/echo: start one"));
/// assert!(empty.status().is_none());
/// let failed = Error::Call {
///     url: "http://127.0.0.1:11214".into(),
///     status: tonic::Status::not_found("no such user"),
/// };
/// assert_eq!(failed.status().map(|s| s.code()), Some(tonic::Code::NotFound));
/// let bad_zk: Error = zoorpc_registry::ConnectString::parse("localhost").unwrap_err().into();
/// assert!(bad_zk.to_string().starts_with("invalid ZooKeeper connect string"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The live list is empty. Returned at once, never after a wait.
    #[error(
        "no providers registered under {base_path}: start one (e.g. `cargo run --example provider -- --zk <HOST:PORT> --base-path {base_path}`) or check the base path"
    )]
    NoProviders {
        /// The base path with no provider under it.
        base_path: String,
    },

    /// Every attempt failed with a connection failure.
    #[error("call failed after {attempts} attempt(s); last failure at {url}: {status}")]
    Exhausted {
        /// How many attempts the call made.
        attempts: usize,
        /// The provider of the last attempt.
        url: String,
        /// The last attempt's failure.
        status: tonic::Status,
    },

    /// The call failed in a way that must not be retried (an application error, or a connection
    /// failure after the request may have been processed by a non-idempotent method).
    #[error("call to {url} failed: {status}")]
    Call {
        /// The provider that failed or answered (its URL; `a provider` or `the master of
        /// <path>` when the answer did not say).
        url: String,
        /// Its failure or answer.
        status: tonic::Status,
    },

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

impl Error {
    /// The error for a status a balanced channel returned: its [`CallError`] source says which
    /// provider failed and whether retries were exhausted; no endpoint at all is `none`'s error;
    /// a status without it is an application's answer from `answered_by`.
    ///
    /// [`CallError`]: crate::CallError
    pub(crate) fn from_status(
        status: tonic::Status,
        none: impl FnOnce() -> Error,
        answered_by: impl FnOnce(&tonic::Status) -> String,
    ) -> Error {
        let failed = std::error::Error::source(&status)
            .and_then(|s| s.downcast_ref::<crate::CallError>())
            .map(|e| (e.url.clone(), e.attempts, e.exhausted));
        match failed {
            Some((None, _, _)) => none(),
            Some((Some(url), attempts, true)) => Error::Exhausted {
                attempts,
                url: url.to_string(),
                status,
            },
            Some((Some(url), _, false)) => Error::Call {
                url: url.to_string(),
                status,
            },
            None => Error::Call {
                url: answered_by(&status),
                status,
            },
        }
    }
}

/// Opens the ZooKeeper session of a consumer or master client.
pub(crate) async fn open_session(
    zk: &str,
    session_timeout: std::time::Duration,
    connect_timeout: std::time::Duration,
    credential: Option<zoorpc_registry::ZkCredential>,
) -> Result<zoorpc_registry::Session> {
    Ok(zoorpc_registry::Session::connect(
        zoorpc_registry::SessionConfig::new(zk)
            .session_timeout(session_timeout)
            .connect_timeout(connect_timeout)
            .credential(credential),
    )
    .await?)
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
