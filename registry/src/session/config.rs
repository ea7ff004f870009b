//! `SessionConfig`: how to reach ZooKeeper (connect string, timeouts) and as whom (an
//! optional digest credential). Validated by [`SessionConfig::validate`] before any connection
//! is tried; its `Debug` never shows the credential's password.

use std::time::Duration;

use crate::auth::{NodeAcl, ZkCredential};
use crate::error::{Error, Result};

/// How to reach ZooKeeper.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The connect string (hosts and an optional chroot).
    pub(super) connect: String,
    /// Asked of the server; it clamps it to its own bounds.
    pub(super) session_timeout: Duration,
    /// How long to wait for a session before failing.
    pub(super) connect_timeout: Duration,
    /// The digest identity to authenticate with (and to own the nodes this session creates);
    /// `None`: unauthenticated, nodes open to all. Its `Debug` hides the password.
    pub(super) credential: Option<ZkCredential>,
}

impl SessionConfig {
    /// The longest session timeout ZooKeeper's protocol carries: `i32::MAX` milliseconds (about
    /// 24.8 days). The server clamps whatever it is asked to its own bounds anyway.
    pub const MAX_SESSION_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

    /// Defaults: 10 s session timeout, 10 s to establish the first session.
    pub fn new(connect: impl Into<String>) -> Self {
        SessionConfig {
            connect: connect.into(),
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            credential: None,
        }
    }

    /// Authenticates every connection with this digest identity (`None`: none). Nodes the
    /// session creates then get [`NodeAcl::Owner`]: anyone reads, only this identity changes.
    pub fn credential(mut self, credential: Option<ZkCredential>) -> Self {
        self.credential = credential;
        self
    }

    /// Who may change the nodes this session creates.
    pub fn node_acl(&self) -> NodeAcl {
        match self.credential {
            Some(_) => NodeAcl::Owner,
            None => NodeAcl::Open,
        }
    }

    /// The session timeout asked of the server: 1 ms to [`SessionConfig::MAX_SESSION_TIMEOUT`]
    /// (whole milliseconds; `Session::connect` refuses anything else). The server then clamps
    /// it to its own `minSessionTimeout`..`maxSessionTimeout`, by default 2 to 20 times its
    /// `tickTime` (4 s to 40 s with the usual 2 s tick); `Session::session_timeout` tells what
    /// was granted.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long `Session::connect` waits for the first session before failing (not zero;
    /// `Session::connect` refuses it).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The connect string.
    pub fn connect_string(&self) -> &str {
        &self.connect
    }

    /// Checks the timeouts (what `Session::connect` does first): the session timeout is 1 ms
    /// to [`SessionConfig::MAX_SESSION_TIMEOUT`], the connect timeout is not zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zoorpc_registry::SessionConfig;
    /// let config = SessionConfig::new("127.0.0.1:2181");
    /// assert!(config.clone().session_timeout(Duration::from_secs(4)).validate().is_ok());
    /// assert!(config.clone().session_timeout(Duration::ZERO).validate().is_err());
    /// let wraps = Duration::from_millis(1 << 31);
    /// assert!(config.clone().session_timeout(wraps).validate().is_err());
    /// assert!(config.connect_timeout(Duration::ZERO).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        let t = self.session_timeout;
        if t < Duration::from_millis(1) || t > Self::MAX_SESSION_TIMEOUT {
            return Err(Error::InvalidSetting {
                setting: "session timeout",
                value: format!("{t:?}"),
                reason: format!(
                    "it must be 1 ms to {} ms (ZooKeeper carries it as a 32-bit count of \
                     milliseconds; the server then clamps it to 2..20 times its tickTime)",
                    Self::MAX_SESSION_TIMEOUT.as_millis()
                ),
            });
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidSetting {
                setting: "connect timeout",
                value: format!("{:?}", self.connect_timeout),
                reason: "it must be more than zero: it is how long to wait for ZooKeeper".into(),
            });
        }
        Ok(())
    }
}
