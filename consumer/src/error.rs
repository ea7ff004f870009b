//! The consumer's one error type.

/// How the consumer's messages name what a user can change, one constant per setting: a
/// program replaces each with its own flag (`zoorpc::cli::error_line`), a library user reads
/// the setting.
pub mod settings {
    /// What to start when a base path has no provider.
    pub const START_PROVIDER: &str = "a provider with that base path (`Provider::serve`)";
    /// The CAs a consumer trusts for `https://` providers.
    pub const TLS_CA: &str = "`ConsumerConfig::tls` (`ConsumerTls::new`)";
    /// The client certificate and key presented to providers that require one.
    pub const TLS_IDENTITY: &str = "a client certificate and key (`ConsumerTls::with_identity`)";
    /// The name every provider's certificate is checked for instead of its URL's host.
    pub const TLS_SERVER_NAME: &str = "a server name (`ConsumerTls::with_server_name`)";
    /// The CA file, as a load error names it.
    pub const CA_FILE: &str = "CA certificate (`ConsumerTls::new`)";
    /// The client certificate file, as a load error names it.
    pub const CLIENT_CERT_FILE: &str = "client certificate (`ConsumerTls::with_identity`)";
    /// The client key file, as a load error names it.
    pub const CLIENT_KEY_FILE: &str = "client key (`ConsumerTls::with_identity`)";
}

/// Errors from looking up and calling providers. Each message is one line naming the base
/// path or the provider and what to do.
///
/// ```
/// use zoorpc_consumer::Error;
/// let empty = Error::NoProviders { base_path: "/services/echo".into() };
/// assert!(empty.to_string().starts_with("no providers registered under /services/echo: start a provider"));
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
        "no providers registered under {base_path}: start {start} or check the base path",
        start = settings::START_PROVIDER
    )]
    NoProviders {
        /// The base path with no provider under it.
        base_path: String,
    },

    /// Every attempt failed with a connection failure.
    #[error("{}", exhausted_line(*.attempts, .url, .status))]
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
    #[error("{}", call_line(.url, .status))]
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

/// A status as one readable line: the cause's chain for a transport failure, `Code: message`
/// for an answer (tonic's own `Display` adds the code's description and the source's `Debug`,
/// repeating the message two or three times).
fn brief(status: &tonic::Status) -> String {
    match std::error::Error::source(status) {
        Some(source) => zoorpc_registry::error_chain(source),
        None => format!("{:?}: {}", status.code(), status.message()),
    }
}

/// The message of a failure the balanced channel itself produced (its status carries a
/// [`CallError`](crate::CallError)): it already names the provider and the attempts.
fn channel_message(status: &tonic::Status) -> Option<&str> {
    std::error::Error::source(status)
        .is_some_and(|s| s.is::<crate::CallError>())
        .then(|| status.message())
}

/// [`Error::Call`]'s line.
fn call_line(url: &str, status: &tonic::Status) -> String {
    match channel_message(status) {
        Some(message) => message.to_owned(),
        None => format!("call to {url} failed: {}", brief(status)),
    }
}

/// [`Error::Exhausted`]'s line.
fn exhausted_line(attempts: usize, url: &str, status: &tonic::Status) -> String {
    match channel_message(status) {
        Some(message) => message.to_owned(),
        None => format!(
            "call failed after {attempts} attempt(s); last failure at {url}: {}",
            brief(status)
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_one_line_without_debug_dumps() {
        let answer = Error::Call {
            url: "http://h:1".into(),
            status: tonic::Status::not_found("no such thing"),
        };
        assert_eq!(
            answer.to_string(),
            "call to http://h:1 failed: NotFound: no such thing"
        );
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let failed = Error::Exhausted {
            attempts: 2,
            url: "http://h:1".into(),
            status: tonic::Status::from_error(Box::new(io)),
        };
        assert_eq!(
            failed.to_string(),
            "call failed after 2 attempt(s); last failure at http://h:1: refused"
        );
        // A channel's own failure already names the provider: said once.
        let own = "call to http://h:1 failed: no answer from http://h:1 within 5s";
        let mut status = tonic::Status::deadline_exceeded(own);
        status.set_source(std::sync::Arc::new(crate::CallError {
            status: tonic::Status::deadline_exceeded(own),
            url: None,
            attempts: 1,
            exhausted: false,
        }));
        let failed = Error::Call {
            url: "http://h:1".into(),
            status,
        };
        assert_eq!(failed.to_string(), own);
    }
}
