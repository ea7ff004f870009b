//! `ZkServer`: a standalone Apache ZooKeeper on a free loopback port, in a temp dir.
//!
//! It is Debian's `zookeeper` package (3.8.0), started as
//! `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg`.
//! `ZOOKEEPER_CLASSPATH` overrides the classpath, `JAVA` the java binary. `tickTime` defaults to
//! 200 ms, so session timeouts from 400 ms to 60 s are allowed and expiry tests are fast.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::four_letter::{Place, four_letter_word, ruok, serving};
use super::process::spawn_tied;
use super::{HarnessError, retry_in_temp_dir};

const DEFAULT_CLASSPATH: &str = "/usr/share/java/zookeeper.jar";
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STANDALONE: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
pub(super) const QUORUM_PEER: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// Settings of a test server.
///
/// ```
/// use std::time::Duration;
/// use zoorpc_testkit::ZkServerConfig;
/// let config = ZkServerConfig { tick_time: Duration::from_millis(100), ..ZkServerConfig::default() };
/// assert_eq!(config.port, None); // a free port
/// assert_eq!(ZkServerConfig::default().tick_time, Duration::from_millis(200));
/// assert_eq!(ZkServerConfig::MAX_TICK_TIME.as_millis(), 7_158_278); // i32::MAX ms / 300
/// ```
#[derive(Clone, Debug)]
pub struct ZkServerConfig {
    /// ZooKeeper's `tickTime`; sessions may last 2..300 ticks.
    pub tick_time: Duration,
    /// The client port on 127.0.0.1; `None` picks a free one. (A [`super::ZkEnsemble`] always
    /// picks free ports for its members.)
    pub port: Option<u16>,
}

impl ZkServerConfig {
    /// The longest `tick_time` a server starts with: ZooKeeper keeps `tickTime` and the session
    /// bounds (up to 300 ticks here) in 32-bit ints of milliseconds, and refuses a config
    /// where they overflow.
    pub const MAX_TICK_TIME: Duration = Duration::from_millis(i32::MAX as u64 / 300);
}

impl Default for ZkServerConfig {
    fn default() -> Self {
        ZkServerConfig {
            tick_time: Duration::from_millis(200),
            port: None,
        }
    }
}

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

    /// One server per test binary, started on first use, killed when the process exits.
    /// Tests using it must isolate themselves with [`super::unique_path`].
    pub fn shared() -> Result<&'static ZkServer, HarnessError> {
        static SHARED: OnceLock<Result<ZkServer, String>> = OnceLock::new();
        let server = SHARED.get_or_init(|| {
            let server = ZkServer::start().map_err(|e| e.to_string())?;
            register_exit_cleanup(&server);
            Ok(server)
        });
        server.as_ref().map_err(|e| HarnessError::Timeout {
            what: "shared ZooKeeper".into(),
            detail: e.clone(),
        })
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

    fn launch(&mut self) -> Result<(), HarnessError> {
        self.spawn()?;
        self.wait_ready(Instant::now() + READY_TIMEOUT)
    }

    /// Starts the process without waiting for it to serve.
    pub(super) fn spawn(&mut self) -> Result<(), HarnessError> {
        let java = std::env::var("JAVA").unwrap_or_else(|_| "java".into());
        let log = self.dir.join("server.log");
        let mut cmd = match &self.place.netns {
            Some(host) => host.command(&java),
            None => Command::new(&java),
        };
        cmd.arg("-Xms32m")
            .arg("-Xmx256m")
            .arg("-XX:+UseSerialGC")
            .arg("-XX:TieredStopAtLevel=1")
            .arg("-Dzookeeper.forceSync=no")
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-cp")
            .arg(classpath())
            .arg(self.main_class)
            .arg(self.dir.join("zoo.cfg"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log)?))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&log)?,
            ));
        let child = spawn_tied(cmd).map_err(|source| HarnessError::Spawn {
            what: format!("{java} (ZooKeeper)"),
            source,
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the server answers `ruok` and serves (`srvr` names its mode); kills it and
    /// returns the tail of its log if it exits or the deadline passes first.
    pub(super) fn wait_ready(&mut self, deadline: Instant) -> Result<(), HarnessError> {
        loop {
            if ruok(&self.place, self.port) && serving(&self.place, self.port) {
                return Ok(());
            }
            let exited = matches!(
                self.child.as_mut().map(|c| c.try_wait()),
                Some(Ok(Some(_))) | None
            );
            if exited || Instant::now() >= deadline {
                self.kill();
                let output =
                    std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(HarnessError::NotReady {
                    port: self.port,
                    timeout: READY_TIMEOUT,
                    output: output
                        .chars()
                        .rev()
                        .take(2000)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What `srvr` says of the server's role: `standalone`, `leader` or `follower`; `None` when
    /// it does not serve.
    pub fn mode(&self) -> Option<String> {
        let reply = four_letter_word(&self.place, self.port, b"srvr")?;
        reply
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_owned())
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

/// Expires the session `session` of a client connected to `connect`: another client joins the
/// same session (id and password) and closes it, as the ZooKeeper test suites do. Every
/// ephemeral of that session is deleted and its client sees `Expired`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let zk = zoorpc_testkit::ZkServer::shared()?;
/// let client = zookeeper_client::Client::connect(&zk.connect_string()).await?;
/// let mut states = client.state_watcher();
/// zoorpc_testkit::expire_session(&zk.connect_string(), client.session().clone()).await?;
/// let ended = loop {
///     let state = states.changed().await;
///     if state.is_terminated() {
///         break state;
///     }
/// };
/// assert_eq!(ended, zookeeper_client::SessionState::Expired);
/// // `client` is done for good: the code under test must open a new session
/// # Ok(()) }
/// ```
pub async fn expire_session(
    connect: &str,
    session: zookeeper_client::SessionInfo,
) -> Result<(), zookeeper_client::Error> {
    const ATTEMPTS: u64 = 40;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // The session's own client takes the connection back as soon as the twin has it, so a
        // twin can wait many seconds for its handshake; give up after one and join again.
        let joining = zookeeper_client::Client::connector()
            .with_session(session.clone())
            .with_session_timeout(Duration::from_secs(10))
            .connect(connect);
        let twin = tokio::time::timeout(Duration::from_secs(1), joining)
            .await
            .unwrap_or(Err(zookeeper_client::Error::Timeout));
        match twin {
            Ok(twin) => {
                drop(twin);
                // The twin's close races the session's own client, which reconnects as soon as
                // the twin takes its connection over; if that reconnect wins, the session lives
                // on. Join again to find out: `SessionExpired` once it is really gone.
                // Bounded, but generous: in 100 expiries in a row (tests/expiry_rounds.rs) the
                // session's own client once won ten races in a row on a loaded machine.
                if attempt >= ATTEMPTS {
                    return Err(zookeeper_client::Error::Timeout);
                }
                tokio::time::sleep(Duration::from_millis((5 * attempt).min(100))).await;
            }
            // Already expired: what the caller wanted.
            Err(zookeeper_client::Error::SessionExpired) => return Ok(()),
            Err(zookeeper_client::Error::Timeout) if attempt < ATTEMPTS => {}
            Err(e) if attempt >= 3 => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "joining the session to expire it failed; retrying")
            }
        }
    }
}

fn classpath() -> String {
    std::env::var("ZOOKEEPER_CLASSPATH").unwrap_or_else(|_| DEFAULT_CLASSPATH.into())
}

pub(super) fn check_installed() -> Result<(), HarnessError> {
    let cp = classpath();
    let first = cp.split(':').next().unwrap_or_default();
    if std::env::var_os("ZOOKEEPER_CLASSPATH").is_none() && !Path::new(first).exists() {
        return Err(HarnessError::NotInstalled(first.to_owned()));
    }
    Ok(())
}

pub(super) fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Writes `zoo.cfg` (and creates `data/`) in `dir`; `extra` is appended (an ensemble's
/// `server.N` lines).
pub(super) fn write_config(
    dir: &Path,
    ip: Ipv4Addr,
    port: u16,
    config: &ZkServerConfig,
    extra: &str,
) -> std::io::Result<()> {
    let tick = config.tick_time.as_millis().max(1);
    let cfg = format!(
        "tickTime={tick}\n\
         dataDir={data}\n\
         clientPort={port}\n\
         clientPortAddress={ip}\n\
         minSessionTimeout={min}\n\
         maxSessionTimeout={max}\n\
         maxClientCnxns=0\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr,cons\n\
         preAllocSize=1024\n\
         snapCount=100000\n\
         {extra}",
        data = dir.join("data").display(),
        min = tick * 2,
        max = (tick * 300).max(60_000),
    );
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::write(dir.join("zoo.cfg"), cfg)
}

/// Kills the shared server and removes its directory when the process exits normally
/// (`PR_SET_PDEATHSIG` covers abnormal exits).
fn register_exit_cleanup(server: &ZkServer) {
    static AT_EXIT: Mutex<Option<(u32, PathBuf)>> = Mutex::new(None);
    extern "C" fn cleanup() {
        let taken = AT_EXIT.lock().ok().and_then(|mut g| g.take());
        if let Some((pid, dir)) = taken {
            // SAFETY: kill(2) on the shared server's pid, which we started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if let Some(child) = &server.child {
        if let Ok(mut g) = AT_EXIT.lock() {
            *g = Some((child.id(), server.dir.clone()));
        }
        // SAFETY: registering a plain extern "C" fn with atexit(3).
        unsafe { libc::atexit(cleanup) };
    }
}
