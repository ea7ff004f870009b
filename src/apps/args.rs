//! The argument groups the programs share, defined once and flattened into each program's clap
//! parser (`#[command(flatten)]`), so a flag has one name, one meaning, one range and one help
//! text everywhere: the ZooKeeper to talk to and the identity to use ([`ZkArg`]), the session
//! timeout asked for ([`SessionArg`]), a call loop's pace ([`CallLoopArgs`]), where to serve
//! metrics ([`MetricsArg`]), how much to log ([`LogArgs`]), where a server listens and what it
//! advertises ([`ListenArgs`]). The TLS groups are in
//! [`super::tls`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use zoorpc_registry::{AUTH_FILE_ENV, CuratorService, ZkCredential};

use crate::cli::{MAX_MS, file_name, millis, number, socket_address};

/// `--zk` (default `ZOORPC_ZK`) and `--zk-auth-file` (default `ZOORPC_ZK_AUTH_FILE`): every
/// program that talks to ZooKeeper.
#[derive(clap::Args, Clone, Debug)]
pub struct ZkArg {
    /// ZooKeeper connect string [env: ZOORPC_ZK]
    #[arg(
        long,
        env = "ZOORPC_ZK",
        value_name = "HOST:PORT[,HOST:PORT...]",
        hide_env = true,
        value_parser = super::connect_string
    )]
    pub zk: String,
    /// File holding the ZooKeeper digest credential `user:password` [env: ZOORPC_ZK_AUTH_FILE]
    #[arg(long, value_name = "PATH", value_parser = file_name)]
    pub zk_auth_file: Option<PathBuf>,
}

impl ZkArg {
    /// The digest credential from the file `--zk-auth-file` names, else from the file
    /// `ZOORPC_ZK_AUTH_FILE` names; `None` when neither is set. An empty `ZOORPC_ZK_AUTH_FILE`
    /// counts as unset (as an empty variable usually does in a shell profile); an empty
    /// `--zk-auth-file` is a usage error ([`file_name`]), in every program. An unreadable or
    /// malformed file is an error naming the file, never its contents.
    pub fn credential(&self) -> Result<Option<ZkCredential>, String> {
        let path = match &self.zk_auth_file {
            Some(path) => path.clone(),
            None => match std::env::var_os(AUTH_FILE_ENV) {
                Some(path) if !path.is_empty() => PathBuf::from(path),
                _ => return Ok(None),
            },
        };
        ZkCredential::from_file(path)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// `--session-timeout-ms`: the ZooKeeper session timeout a program that holds ephemeral nodes
/// asks for (how long after a crash its nodes go).
#[derive(clap::Args, Clone, Debug)]
pub struct SessionArg {
    /// ZooKeeper session timeout asked for, in milliseconds (how long after a crash this
    /// program's nodes go)
    #[arg(long = "session-timeout-ms", value_name = "MS", default_value = "10000", value_parser = millis(1..=MAX_MS))]
    pub session_timeout: Duration,
}

/// `--calls`, `--interval-ms`, `--name`: the call loops of `zoorpc-client` and
/// `zoorpc-ha-client`.
#[derive(clap::Args, Clone, Debug)]
pub struct CallLoopArgs {
    /// How many calls (at least one, as `zoorpc call --count`)
    #[arg(long, value_name = "N", default_value = "10", value_parser = number(1..=u64::MAX))]
    pub calls: u64,
    /// Pause between calls, in milliseconds (0: one after another, no pause)
    #[arg(long = "interval-ms", value_name = "MS", default_value = "500", value_parser = millis(0..=MAX_MS))]
    pub interval: Duration,
    /// The name sent in `HelloRequest.name`
    #[arg(long, default_value = "world")]
    pub name: String,
}

/// `--metrics ADDR`: serve Prometheus metrics while the program runs.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct MetricsArg {
    /// Serve Prometheus metrics at http://ADDR/metrics while this program runs
    #[arg(long, value_name = "ADDR", value_parser = socket_address)]
    pub metrics: Option<SocketAddr>,
}

impl MetricsArg {
    /// Starts serving the metrics if `--metrics` was given (a taken address is an error naming
    /// it).
    pub fn serve(&self) -> Result<(), String> {
        match self.metrics {
            Some(addr) => super::metrics::serve(addr),
            None => Ok(()),
        }
    }
}

/// `--log-level`: how much a program logs on stderr (its stdout is for its own lines).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// How much to log on stderr; without it RUST_LOG decides (per module, e.g.
    /// `zoorpc_consumer=debug`), else warnings (errors only for one-shot commands)
    #[arg(long, value_name = "LEVEL", global = true)]
    pub log_level: Option<LogLevel>,
}

/// A level of `--log-level`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also what the program goes through (sessions, registrations, roles).
    Info,
    /// Also the details of each step.
    Debug,
    /// Everything.
    Trace,
}

impl LogArgs {
    /// Starts logging: at `--log-level` if given, else as `RUST_LOG` says, else at `default`.
    pub fn init(&self, default: &str) {
        match self.log_level {
            Some(level) => {
                let level = clap::ValueEnum::to_possible_value(&level)
                    .map(|v| v.get_name().to_owned())
                    .unwrap_or_else(|| default.to_owned());
                crate::init_logging_filter(tracing_subscriber::EnvFilter::new(level));
            }
            None => crate::init_logging_at(default),
        }
    }
}

/// `--port`, `--listen-host`, `--advertise-host`: every program that serves.
#[derive(clap::Args, Clone, Debug)]
pub struct ListenArgs {
    /// Port to serve on (0 picks a free one)
    #[arg(long, value_name = "N", default_value = "0", value_parser = number(0..=u16::MAX))]
    pub port: u16,
    /// Address to listen on (0.0.0.0 or :: listens on every interface and needs
    /// --advertise-host)
    #[arg(long, value_name = "IP", default_value = "127.0.0.1", value_parser = listen_ip)]
    pub listen_host: IpAddr,
    /// Host clients are told to dial, checked with a health call before anything is written
    /// [default: the listen host]
    #[arg(long, value_name = "HOST", value_parser = super::host_name)]
    pub advertise_host: Option<String>,
}

impl ListenArgs {
    /// Where to listen.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.listen_host, self.port)
    }
}

/// The IP of `--listen-host`, with an error that says what is expected.
///
/// ```
/// use zoorpc::apps::args::listen_ip;
/// assert!(listen_ip("::1").unwrap().is_loopback());
/// assert_eq!(
///     listen_ip("localhost").unwrap_err(),
///     "expected an IP address such as 127.0.0.1 or ::1"
/// );
/// ```
pub fn listen_ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| "expected an IP address such as 127.0.0.1 or ::1".to_owned())
}

/// `--curator-name`, `--curator-base`: the layout of Apache Curator's service discovery and
/// Spring Cloud Zookeeper (`<base>/<name>/<id>` holding Curator's JSON), for the programs that
/// register or discover.
#[derive(clap::Args, Clone, Debug)]
pub struct CuratorArgs {
    /// The service's name in the layout of Curator's service discovery and Spring Cloud
    /// Zookeeper (instances at <curator-base>/<NAME>/<id>, holding Curator's JSON)
    #[arg(long, value_name = "NAME", value_parser = curator_name)]
    pub curator_name: Option<String>,
    /// The base path of that layout (Curator's basePath, Spring's
    /// spring.cloud.zookeeper.discovery.root)
    #[arg(long, value_name = "PATH", default_value = zoorpc_registry::curator::DEFAULT_CURATOR_BASE, requires = "curator_name", value_parser = super::znode_path)]
    pub curator_base: String,
}

impl CuratorArgs {
    /// The consumer's configuration: the providers under `base_path`, or with
    /// `--curator-name` the instances of that service in the Curator layout.
    pub fn consumer_config(
        &self,
        zk: &str,
        base_path: &str,
    ) -> Result<zoorpc_consumer::ConsumerConfig, String> {
        match self.service() {
            Some(service) => zoorpc_consumer::ConsumerConfig::new_curator(zk, &service)
                .map_err(|e| e.to_string()),
            None => Ok(zoorpc_consumer::ConsumerConfig::new(zk, base_path)),
        }
    }

    /// The service `--curator-name` names, if it was given.
    pub fn service(&self) -> Option<CuratorService> {
        let name = self.curator_name.as_ref()?;
        Some(CuratorService::new(name).base(&self.curator_base))
    }
}

/// The check of `--curator-name`: one node name of at most 255 bytes without whitespace (a
/// service name as Spring's `spring.application.name` makes them).
///
/// ```
/// use zoorpc::apps::args::curator_name;
/// assert_eq!(curator_name("greeter-v2").unwrap(), "greeter-v2");
/// for bad in ["a/b", "", "..", "a b", &"x".repeat(256)] {
///     assert!(curator_name(bad).is_err(), "{bad}");
/// }
/// ```
pub fn curator_name(text: &str) -> Result<String, String> {
    if text.len() > 255 || text.chars().any(char::is_whitespace) {
        return Err("expected a service name of at most 255 bytes, without whitespace".to_owned());
    }
    CuratorService::new(text)
        .path()
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}
