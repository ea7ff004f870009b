//! `ZkServer`: a standalone Apache ZooKeeper on a free loopback port, in a temp dir.
//!
//! It is Debian's `zookeeper` package (3.8.0), started as
//! `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg`.
//! `ZOOKEEPER_CLASSPATH` overrides the classpath, `JAVA` the java binary. `tickTime` defaults to
//! 200 ms, so session timeouts from 400 ms to 60 s are allowed and expiry tests are fast.
//!
//! Layout: this file holds the server's lifecycle (start, stop, kill, restart, wipe); `config`
//! its settings and `zoo.cfg`; `launch` the JVM process and the wait until it serves; `shared`
//! the one server per test binary and its clean-up at exit; `expire` expiring a session.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::four_letter::Place;
use super::{HarnessError, retry_in_temp_dir};

mod config;
mod expire;
mod launch;
mod shared;

pub use config::ZkServerConfig;
pub(super) use config::write_config;
pub use expire::expire_session;
use launch::STANDALONE;
pub(super) use launch::{QUORUM_PEER, READY_TIMEOUT, check_installed};

/// A running standalone ZooKeeper. Killed and its directory removed on drop.
///
/// Starting one takes a second or two (a JVM); the example starts a real one, writes a node,
/// restarts the server on the same port and data, and reads the node back:
///
/// ```
/// use zoorpc_testkit::ZkServer;
/// let mut server = ZkServer::start()?;
/// assert_eq!(server.connect_string(), format!("127.0.0.1:{}", server.port()));
/// let runtime = tokio::runtime::Runtime::new()?;
/// let connect = server.connect_string();
/// let write = async {
///     let client = zookeeper_client::Client::connect(&connect).await?;
///     let open = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
///     client.create("/kept", b"across restarts", &open).await?;
///     Ok::<_, zookeeper_client::Error>(())
/// };
/// runtime.block_on(write)?;
/// server.restart()?;
/// let read = async { zookeeper_client::Client::connect(&connect).await?.get_data("/kept").await };
/// assert_eq!(runtime.block_on(read)?.0, b"across restarts");
/// drop(server); // killed, its directory removed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ZkServer {
    port: u16,
    /// Where it listens: 127.0.0.1, or a host's address inside its namespace.
    place: Place,
    dir: PathBuf,
    child: Option<Child>,
    owns_dir: bool,
    main_class: &'static str,
}

impl ZkServer {
    /// Starts a server with default settings and waits until it answers `ruok`.
    pub fn start() -> Result<ZkServer, HarnessError> {
        ZkServer::start_with(ZkServerConfig::default())
    }

    /// Starts a server with `config`.
    pub fn start_with(config: ZkServerConfig) -> Result<ZkServer, HarnessError> {
        check_installed()?;
        if let Some(port) = config.port {
            // Something else answering on the port would pass for our server: refuse first.
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| {
                HarnessError::PortInUse {
                    port,
                    detail: e.to_string(),
                }
            })?;
        }
        let tries = if config.port.is_some() { 1 } else { 5 };
        let (mut server, _) = retry_in_temp_dir("zoorpc-zk-", tries, |dir| {
            let port = match config.port {
                Some(port) => port,
                None => free_port()?,
            };
            write_config(dir, Ipv4Addr::LOCALHOST, port, &config, "")?;
            let mut server = ZkServer::new(port, dir.to_owned(), STANDALONE);
            server.launch()?;
            Ok(server)
        })?;
        server.owns_dir = true;
        Ok(server)
    }

    /// Starts a server inside the test host `host` ([`crate::netns`]), listening on the host's
    /// address (port 2181, or `config.port`); clients in other hosts reach it at
    /// [`ZkServer::connect_string`] while the network lets them.
    pub fn start_in(
        host: &crate::netns::Host,
        config: ZkServerConfig,
    ) -> Result<ZkServer, HarnessError> {
        check_installed()?;
        let port = config.port.unwrap_or(2181);
        let (mut server, _) = retry_in_temp_dir("zoorpc-zk-", 1, |dir| {
            write_config(dir, host.addr(), port, &config, "")?;
            let mut server = ZkServer::new(port, dir.to_owned(), STANDALONE);
            server.place_in(host);
            server.launch()?;
            Ok(server)
        })?;
        server.owns_dir = true;
        Ok(server)
    }

    /// Runs (once started) inside `host`, listening on its address.
    pub(super) fn place_in(&mut self, host: &crate::netns::Host) {
        self.place = Place {
            ip: host.addr(),
            netns: Some(host.clone()),
        };
    }

    /// A server not started yet, configured in `dir`.
    pub(super) fn new(port: u16, dir: PathBuf, main_class: &'static str) -> ZkServer {
        ZkServer {
            port,
            place: Place::default(),
            dir,
            child: None,
            owns_dir: false,
            main_class,
        }
    }

    /// `127.0.0.1:<port>` (`<host address>:<port>` for a server in a test host).
    pub fn connect_string(&self) -> String {
        format!("{}:{}", self.place.ip, self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data/config directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's exit status if its process ended on its own (crashed, killed by someone
    /// else); `None` while it runs (or after [`ZkServer::stop`]/[`ZkServer::kill`]).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// The last `lines` lines of the server's log (`server.log` in its directory).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same data (sessions survive if they
    /// have not expired in the meantime).
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        // The old process released the port when it died; retry briefly if the OS is slow.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Kills the server, deletes its data (snapshots and transaction log) and starts it again on
    /// the same port: what a ZooKeeper that lost its disk looks like to clients. Every session is
    /// unknown to it (clients see expiry), every node is gone, sequence numbers start again.
    pub fn wipe_and_restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        let data = self.dir.join("data");
        std::fs::remove_dir_all(&data)?;
        std::fs::create_dir_all(&data)?;
        self.restart()
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.kill();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub(super) fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
