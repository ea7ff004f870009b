//! The registry's one error type. Every message names what failed and, where there is one, what
//! to do about it.

use std::time::Duration;

/// How the registry's messages name what a user can change, one constant per setting: a
/// library user reads the setting, and a program replaces the constant with its own flag
/// (`zoorpc::cli::error_line` holds that one table), so neither reads the other's words.
pub mod settings {
    /// The connect string every config takes (`ConsumerConfig::zk`, `ProviderConfig::zk`...).
    pub const ZK: &str = "the `zk` connect string";
    /// The credential every config takes (`ConsumerConfig::zk_auth`...).
    pub const ZK_AUTH: &str =
        "that identity's credential (the config's `zk_auth`, a `ZkCredential`)";
    /// What to start when an election has no master.
    pub const START_CONTENDER: &str =
        "a contender on that path (`HaServer::serve`, or `MasterElection::join`)";
}

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
        "could not reach ZooKeeper at {connect} within {timeout:?}: is the server running and {zk} right? ({detail})",
        zk = settings::ZK
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

    /// A node in the Curator layout does not hold an instance zoorpc can call (not the JSON of
    /// Curator's `ServiceInstance`, no address or port, disabled, or out of service).
    #[error(
        "not a callable Curator service instance ({reason}): {data:?}; expected the JSON of Curator's ServiceInstance with an address and a port or sslPort"
    )]
    InvalidInstance {
        /// The node's data (at most 200 escaped characters).
        data: String,
        /// What is wrong with it.
        reason: String,
    },

    /// ZooKeeper refused an operation for want of an identity an ACL names: for a create or a
    /// delete the ACL of the node's parent (ZooKeeper checks the parent's), for a read the
    /// node's own, for a change (set, multi) the node's own. The message says which.
    #[error("{}", no_auth_line(.op, .path))]
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
        "no master at {path}: no contender holds the node; start {start} or check the path",
        start = settings::START_CONTENDER
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

/// The line of [`Error::NoAuth`]: which ACL refused what, and what to do.
fn no_auth_line(op: &str, path: &str) -> String {
    let fix = format!("give the session {}", settings::ZK_AUTH);
    let parent = crate::plumbing::parent(path).unwrap_or("/");
    // A takeover creates the master node (refused by its parent's ACL) and sets the companion
    // (refused by its own); the refused one is named.
    let creates = op.starts_with("create")
        || (op == "takeover" && !path.ends_with(crate::election::COMPANION_SUFFIX));
    if creates || op == "delete" {
        let what = if op == "delete" { "delete" } else { "create" };
        format!(
            "ZooKeeper refused the {op} of {path}: not authorized (NoAuth) to {what} children of \
             {parent}, whose ACL ZooKeeper checks for it; only an identity that ACL names may \
             (for zoorpc's nodes, the one that created {parent}): {fix}"
        )
    } else if matches!(op, "read" | "list") {
        format!(
            "ZooKeeper refused the {op} of {path}: not authorized (NoAuth) to read it; its ACL \
             does not let this session read it (zoorpc's own nodes are readable by anyone): \
             {fix}, or one its ACL allows to read"
        )
    } else {
        format!(
            "ZooKeeper refused the {op} of {path}: not authorized (NoAuth); only an identity its \
             ACL names may change it (for zoorpc's nodes, the one that created it): {fix}"
        )
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

#[cfg(test)]
mod tests {
    use super::Error;

    fn line(op: &'static str, path: &str) -> String {
        Error::NoAuth {
            op,
            path: path.to_owned(),
        }
        .to_string()
    }

    #[test]
    fn no_auth_names_the_acl_that_refused() {
        for op in ["create", "create (parents)", "delete"] {
            let text = line(op, "/secure/provider");
            assert!(text.contains("children of /secure,"), "{text}");
            assert!(!text.contains("change it"), "{text}");
        }
        let text = line("takeover", "/soa/Hello:1.0.0");
        assert!(text.contains("to create children of /soa,"), "{text}");
        let text = line("takeover", "/soa/Hello:1.0.0.epoch");
        assert!(text.contains("may change it"), "{text}");
        for op in ["read", "list"] {
            let text = line(op, "/secret");
            assert!(text.contains("to read it"), "{text}");
            assert!(!text.contains("change it"), "{text}");
        }
        let text = line("designate", "/soa/Hello:1.0.0");
        assert!(text.contains("may change it"), "{text}");
        assert!(text.contains("`zk_auth`"), "{text}");
    }
}
