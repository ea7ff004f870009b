#![warn(missing_docs)]
//! # zoorpc-testkit
//!
//! A real-ZooKeeper harness for zoorpc's tests, demos and benchmarks: never a mock. A crate of
//! its own (not a feature of the production registry), used as a dev-dependency by the tests
//! and by the programs that need a ZooKeeper (`zoorpc-zookeeper`, the failover demo, bench).
//!
//! ## Layout
//!
//! - [`ZkServer`]: a standalone ZooKeeper (Debian's `zookeeper` package) on a free loopback port
//!   in a temp dir; `stop`, `kill`, `restart` on the same port and data; gone on drop.
//! - [`ZkEnsemble`]: a replicated ZooKeeper of N members on loopback; kill, stop and restart
//!   members one by one.
//! - [`ZkServer::shared`]: one server per test binary, for tests that do not kill ZooKeeper.
//! - [`ChildProcess`]: a child process that is killed on drop and dies with this process, with
//!   its output lines available to wait on.
//! - [`ZkProxy`]: a TCP proxy in front of ZooKeeper that partitions a client silently, loses
//!   the reply to its next request of a kind (`create`, `delete`, multi-op), or delays every
//!   byte both ways (a slow link).
//! - [`netns`]: test hosts in network namespaces linked by a switch, cut and healed pairwise
//!   or isolated, for real partitions; [`ZkServer::start_in`] runs ZooKeeper in one.
//! - [`unique_path`]: a fresh base path so tests sharing a server do not see each other.
//!
//! Every server, proxy and process is stopped and its directory removed when its handle is
//! dropped (also when a test fails); the children are tied to this process, so they die with it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use zoorpc_testkit::{ZkProxy, ZkServer, unique_path};
//! let zk = ZkServer::shared()?; // one server for every test of this binary
//! let base = unique_path("discovery"); // a base path no other test uses
//! let proxy = ZkProxy::start(([127, 0, 0, 1], zk.port()).into()).await?;
//! // ... connect the code under test to `proxy.addr()`, register under `base` ...
//! proxy.cut(); // a silent partition: the client hears nothing until `heal`
//! proxy.heal();
//! # let _ = base; Ok(()) }
//! ```

mod ensemble;
mod four_letter;
pub mod netns;
mod process;
mod proxy;
mod zk_server;

pub use ensemble::ZkEnsemble;
pub use process::{ChildProcess, spawn_tied};
pub use proxy::{Request, ZkProxy};
pub use zk_server::{ZkServer, ZkServerConfig, expire_session};

use std::sync::atomic::{AtomicU64, Ordering};

/// A base path no other test in this or a concurrent run uses, e.g.
/// `/zoorpc-test/4711-3-discovery`.
///
/// ```
/// let a = zoorpc_testkit::unique_path("discovery");
/// let b = zoorpc_testkit::unique_path("discovery");
/// assert_ne!(a, b);
/// assert!(a.starts_with("/zoorpc-test/") && a.ends_with("-discovery"));
/// assert!(!a.contains("//") && !a.ends_with('/'));
/// ```
pub fn unique_path(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("/zoorpc-test/{}-{n}-{nanos}-{label}", std::process::id())
}

/// Makes a temp dir (kept) and runs `attempt` in it up to `tries` times: free ports can be
/// taken between our probe and a server's bind. The dir is removed if every attempt fails.
fn retry_in_temp_dir<T>(
    prefix: &str,
    tries: usize,
    mut attempt: impl FnMut(&std::path::Path) -> Result<T, HarnessError>,
) -> Result<(T, std::path::PathBuf), HarnessError> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?.keep();
    let mut last = None;
    for _ in 0..tries {
        match attempt(&dir) {
            Ok(value) => return Ok((value, dir)),
            Err(e) => last = Some(e),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(last.unwrap_or_else(|| HarnessError::Io(std::io::Error::other("no attempt made"))))
}

/// Errors of the harness. Each message says what did not start or answer, with the output
/// that tells why.
///
/// ```
/// use zoorpc_testkit::HarnessError;
/// let err = HarnessError::PortInUse { port: 2181, detail: "Address in use".into() };
/// assert_eq!(
///     err.to_string(),
///     "port 2181 on 127.0.0.1 is in use (Address in use): is another ZooKeeper running? Pick another port"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// ZooKeeper is not installed where we look.
    #[error(
        "ZooKeeper jar not found at {0}: run scripts/install-zookeeper (installs Debian's zookeeper package) or set ZOOKEEPER_CLASSPATH"
    )]
    NotInstalled(String),
    /// Starting a process failed.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// What was being started (the process's name).
        what: String,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer `ruok` in time.
    #[error(
        "ZooKeeper on port {port} did not answer ruok within {timeout:?}; its output: {output}"
    )]
    NotReady {
        /// The server's client port.
        port: u16,
        /// How long it was waited for.
        timeout: std::time::Duration,
        /// The tail of its log.
        output: String,
    },
    /// A process did not print an expected line in time.
    #[error("{what}: {detail}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// What was seen instead (the process's lines so far, its exit status).
        detail: String,
    },
    /// The fixed port asked for is taken.
    #[error(
        "port {port} on 127.0.0.1 is in use ({detail}): is another ZooKeeper running? Pick another port"
    )]
    PortInUse {
        /// The port asked for.
        port: u16,
        /// What the bind probe answered.
        detail: String,
    },
    /// Other I/O.
    #[error("harness I/O: {0}")]
    Io(#[from] std::io::Error),
}
