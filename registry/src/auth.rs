//! Access control: the ZooKeeper digest credential a session authenticates with, and what it
//! means for the nodes zoorpc creates.
//!
//! Guarantees:
//! - A session given a [`ZkCredential`] adds it (`digest` scheme) on every connection of every
//!   session it opens, so a reconnect or a new session after expiry is as authenticated as the
//!   first.
//! - Every node such a session creates (registrations, the master node, its companion, job
//!   records, and the parents zoorpc creates) gets the ACL "anyone may read, only this identity
//!   may change or delete": [`NodeAcl::Owner`]. Without a credential nodes stay open to all, as
//!   before ([`NodeAcl::Open`]). ACLs of nodes that already exist are never changed.
//! - A create, set or delete ZooKeeper refuses for want of the identity is
//!   [`Error::NoAuth`], one line that says which option to pass.
//! - The password is never printed: `Debug` shows the user only, and no error carries it.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// The environment variable the programs read a credential file's path from when
/// `--zk-auth-file` is not given.
pub const AUTH_FILE_ENV: &str = "ZOORPC_ZK_AUTH_FILE";

/// A ZooKeeper digest identity, `user:password`.
///
/// ```
/// use zoorpc_registry::ZkCredential;
/// let c = ZkCredential::parse("svc:s3cret").unwrap();
/// assert_eq!(c.user(), "svc");
/// assert!(!format!("{c:?}").contains("s3cret"));
/// assert!(ZkCredential::parse("no-colon").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ZkCredential {
    /// The user name (the part of the digest identity anyone may see).
    user: String,
    /// The password (never printed).
    password: String,
}

impl ZkCredential {
    /// Parses `user:password` (surrounding whitespace and a trailing newline are ignored; the
    /// user must be non-empty and hold no `:`; the password must be non-empty).
    pub fn parse(text: &str) -> Result<ZkCredential> {
        let bad = |reason: &str| Error::InvalidCredential {
            source_name: "the credential".into(),
            reason: reason.to_owned(),
        };
        let text = text.trim();
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| bad("expected one line user:password"))?;
        if user.is_empty() {
            return Err(bad("the user name before ':' is empty"));
        }
        if password.is_empty() {
            return Err(bad("the password after ':' is empty"));
        }
        if text.contains('\n') {
            return Err(bad("expected one line user:password, found several lines"));
        }
        if text.chars().any(char::is_control) {
            return Err(bad(
                "control characters in user:password (is it a text file of one line?)",
            ));
        }
        Ok(ZkCredential {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// Reads `user:password` from a file. An error names the file and what is wrong with it
    /// (unreadable, not one line `user:password`), never its content.
    ///
    /// ```
    /// use zoorpc_registry::ZkCredential;
    /// let err = ZkCredential::from_file("/nonexistent/zk-auth").unwrap_err();
    /// assert!(err.to_string().starts_with("the ZooKeeper auth file /nonexistent/zk-auth is not usable: cannot read it"), "{err}");
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<ZkCredential> {
        let path = path.as_ref();
        let named = |reason: String| Error::InvalidCredential {
            source_name: format!("the ZooKeeper auth file {}", path.display()),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| named(format!("cannot read it: {e}")))?;
        ZkCredential::parse(&text).map_err(|e| match e {
            Error::InvalidCredential { reason, .. } => named(reason),
            other => other,
        })
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// What ZooKeeper's `digest` scheme takes: `user:password` as bytes.
    pub(crate) fn digest_auth(&self) -> Vec<u8> {
        format!("{}:{}", self.user, self.password).into_bytes()
    }
}

impl fmt::Debug for ZkCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkCredential")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Who may change the nodes a session creates: [`NodeAcl::Owner`] when the session has a
/// credential, else [`NodeAcl::Open`].
///
/// ```
/// use zoorpc_registry::{NodeAcl, SessionConfig, ZkCredential};
/// let open = SessionConfig::new("127.0.0.1:2181");
/// assert_eq!(open.node_acl(), NodeAcl::Open);
/// let owned = open.credential(Some(ZkCredential::parse("svc:s3cret")?));
/// assert_eq!(owned.node_acl(), NodeAcl::Owner);
/// assert!(!format!("{owned:?}").contains("s3cret"));
/// # Ok::<(), zoorpc_registry::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeAcl {
    /// Anyone may do anything (no credential; ZooKeeper's `world:anyone` ALL).
    Open,
    /// Anyone may read; only the session's authenticated identity may change, delete or create
    /// children (`world:anyone` READ plus `auth` ALL).
    Owner,
}
