//! The registry's one error type. Every message names what failed and, where there is one, what
//! to do about it.

use std::time::Duration;

/// Errors from talking to ZooKeeper.
///
/// Every variant's message is one line that names the input or the node and, where there is
/// one, what to do; a credential's password never appears in it.
///
/// ```
/// use zoorpc_registry::{ConnectString, Error, validate_path};
/// let err = ConnectString::parse("localhost").unwrap_err();
/// assert!(matches!(err, Error::InvalidConnectString { .. }));
/// assert_eq!(
///     err.to_string(),
///     "invalid ZooKeeper connect string \"localhost\": \"localhost\" has no port; \
///      expected HOST:PORT[,HOST:PORT...][/chroot], e.g. 127.0.0.1:2181"
/// );
/// let err = validate_path("registry").unwrap_err();
/// assert_eq!(err.to_string(), "invalid znode path \"registry\": must start with '/'");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connect string cannot be parsed.
    #[error(
        "invalid ZooKeeper connect string {connect:?}: {reason}; expected HOST:PORT[,HOST:PORT...][/chroot], e.g. 127.0.0.1:2181"
    )]
    InvalidConnectString {
        /// The connect string as given.
        connect: String,
        /// What is wrong with it (which entry, which part).
        reason: String,
    },

    /// No session could be established in time.
    #[error(
        "could not reach ZooKeeper at {connect} within {timeout:?}: is the server running and the address right (--zk)? ({detail})"
    )]
    Unreachable {
        /// The connect string the session was opened with.
        connect: String,
        /// How long the session was tried before giving up.
        timeout: Duration,
        /// What went wrong: the client's last error, or that the session did not reconnect.
        detail: String,
    },

    /// A setting (a timeout, an interval) is outside the range it can take.
    #[error("invalid {setting} {value}: {reason}")]
    InvalidSetting {
        /// The setting's name, e.g. `session timeout`.
        setting: &'static str,
        /// The value given, as written.
        value: String,
        /// The range it must be in, or what else is wrong.
        reason: String,
    },

    /// A znode path is malformed.
    #[error("invalid znode path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// The rule it breaks.
        reason: &'static str,
    },

    /// A provider URL is malformed (registering it, or reading it from a znode).
    #[error("invalid provider URL {url:?}: {reason}; expected http://HOST:PORT[?key=value&...]")]
    InvalidUrl {
        /// The URL as given or as read from the node.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// ZooKeeper refused a change for want of the identity the node's ACL names.
    #[error(
        "ZooKeeper refused the {op} of {path}: not authorized (NoAuth); only the identity that created it may change it: pass that identity's user:password file with --zk-auth-file (or {env})", env = crate::auth::AUTH_FILE_ENV
    )]
    NoAuth {
        /// The refused operation, e.g. `delete`.
        op: &'static str,
        /// The node it was refused on.
        path: String,
    },

    /// A ZooKeeper credential (`user:password`) cannot be read or parsed. Never carries the
    /// password.
    #[error("{source_name} is not usable: {reason}")]
    InvalidCredential {
        /// What was read: `the credential`, or `the ZooKeeper auth file <path>`.
        source_name: String,
        /// What is wrong with it, without the password.
        reason: String,
    },

    /// A ZooKeeper operation failed.
    #[error("ZooKeeper {op} of {path} failed: {source}")]
    ZooKeeper {
        /// The operation, e.g. `create`, `read`, `multi`.
        op: &'static str,
        /// The node it was about.
        path: String,
        /// What the ZooKeeper client answered.
        #[source]
        source: zookeeper_client::Error,
    },

    /// The session or recipe was closed while an operation waited on it.
    #[error("the ZooKeeper session was closed")]
    Closed,

    /// A contender address (the master node's data) is malformed.
    #[error(
        "invalid master address {address:?}: {reason}; expected HOST:PORT, e.g. 127.0.0.1:9090"
    )]
    InvalidAddress {
        /// The address as given or as read from the node.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Nobody holds the master node.
    #[error(
        "no master at {path}: no contender holds the node; start one (e.g. `cargo run --example ha_server -- --zk <HOST:PORT> --path {path}`) or check the path"
    )]
    NoMaster {
        /// The election path no contender holds.
        path: String,
    },

    /// The master node exists but its data is not an address a client can call.
    #[error(
        "no master to call at {path}: the master node holds {data:?}, not a HOST:PORT; set a contender's address (`zoorpc designate {path} <HOST:PORT> --force`) or delete the node so the contenders run again"
    )]
    MasterBadData {
        /// The election path.
        path: String,
        /// What the node holds (at most 200 escaped characters and its size).
        data: String,
    },

    /// The node at an election path is not a master node (not ephemeral, or without the
    /// election's companion): an operator's mistyped path, left unchanged.
    #[error(
        "{path} is not an election's master node ({reason}): give the election path (e.g. /soa/master/services/HelloService:1.0.0; `zoorpc ls` shows provider paths, which are not one)"
    )]
    NotAnElection {
        /// The path given.
        path: String,
        /// What ZooKeeper shows there.
        reason: &'static str,
    },

    /// A fenced write was refused: the fence's holder is not the master of its epoch any more
    /// (`reason` says what ZooKeeper shows).
    #[error("fenced write to {path} refused: not the master of epoch {epoch} ({reason})")]
    Fenced {
        /// The node the write was for.
        path: String,
        /// The epoch the fence was taken in (the companion's `mzxid` then).
        epoch: i64,
        /// What ZooKeeper shows instead (a newer epoch, another holder, no master).
        reason: String,
    },
}

impl Error {
    pub(crate) fn zk(op: &'static str, path: &str, source: zookeeper_client::Error) -> Self {
        if source == zookeeper_client::Error::NoAuth {
            return Error::NoAuth {
                op,
                path: path.to_owned(),
            };
        }
        Error::ZooKeeper {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its sources as one line, `outer: inner: ...`, leaving out a level whose text
/// the level above already says (tonic's, hyper's and std's wrappers often repeat their
/// source: "tcp connect error: tcp connect error: Connection refused" reads as
/// "tcp connect error: Connection refused").
///
/// ```
/// use std::fmt;
/// #[derive(Debug)]
/// struct Wrap(&'static str, Option<Box<Wrap>>);
/// impl fmt::Display for Wrap {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.0) }
/// }
/// impl std::error::Error for Wrap {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         self.1.as_deref().map(|e| e as _)
///     }
/// }
/// let refused = Wrap("connection refused", None);
/// let error = Wrap("tcp connect error", Some(Box::new(Wrap("tcp connect error", Some(Box::new(refused))))));
/// assert_eq!(zoorpc_registry::error_chain(&error), "tcp connect error: connection refused");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut above = line.clone();
    let mut source = error.source();
    while let Some(level) = source {
        let text = level.to_string();
        if !text.is_empty() && !above.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        above = text;
        source = level.source();
    }
    line
}

/// The start of `text` for an error message: as many characters as fit in 200 once escaped
/// (messages quote input with `{:?}`, where a control character takes up to 10), so 70 KB of
/// input or of control characters cannot blow a one-line error up.
///
/// ```
/// let long = "\u{1a}".repeat(1000);
/// let shown = zoorpc_registry::excerpt(&long);
/// assert!(format!("{shown:?}").len() <= 202);
/// assert_eq!(zoorpc_registry::excerpt("127.0.0.1:2181"), "127.0.0.1:2181");
/// ```
pub fn excerpt(text: &str) -> String {
    let mut shown = 0;
    text.chars()
        .take_while(|c| {
            shown += c.escape_debug().count();
            shown <= 200
        })
        .collect()
}
