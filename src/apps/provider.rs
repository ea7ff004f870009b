//! The provider program: serve `HelloService`, register, and on SIGTERM / Ctrl-C deregister,
//! drain, exit. Prints `registered <znode path> <url>` once registered (other tools read it),
//! then `deregistered <znode path>` and `stopped` on a graceful stop. With ZooKeeper out of reach
//! the node cannot be deleted: after one session timeout it prints the error, `stopped`, and
//! exits 1 (the node goes with the session). A second signal exits at once with status 130.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::cli::{Flags, MAX_MS, or_exit};
use zoorpc_provider::{Provider, ProviderConfig, StopSignals};

/// Usage text.
pub const USAGE: &str = "usage: provider --zk HOST:PORT[,HOST:PORT...] [--port N (0 = free port)] \
[--base-path /registry] [--advertise-host 127.0.0.1] [--listen-host 127.0.0.1] \
[--session-timeout-ms 10000] [--drain-grace-ms 250] [--delay-ms 0] [--weight 100] [--zk-auth-file PATH (user:password; or env ZOORPC_ZK_AUTH_FILE)] \
[--tls-cert PEM --tls-key PEM (serve TLS, register https://) [--tls-client-ca PEM (require client certificates)]]";

/// Flags the provider accepts.
pub const FLAGS: &[&str] = &[
    "zk",
    "port",
    "base-path",
    "advertise-host",
    "listen-host",
    "session-timeout-ms",
    "drain-grace-ms",
    "delay-ms",
    "weight",
    "zk-auth-file",
    "tls-cert",
    "tls-key",
    "tls-client-ca",
];

/// What the provider program runs: the provider's configuration, and the demo service's
/// artificial latency.
#[derive(Clone, Debug)]
pub struct HelloProvider {
    /// The provider's configuration.
    pub config: ProviderConfig,
    /// How long every `SayHello` takes at least (`--delay-ms`; a slow provider).
    pub delay: Duration,
}

/// Builds the configuration from flags.
pub fn config(flags: &Flags) -> Result<HelloProvider, String> {
    config_at(flags, "/registry")
}

/// Builds the configuration from flags, registering under `default_base` without
/// `--base-path`.
pub fn config_at(flags: &Flags, default_base: &str) -> Result<HelloProvider, String> {
    let zk = flags.zk()?;
    let port = flags.number("port", 0u16, 0..=u16::MAX)?;
    let base = flags.str("base-path").unwrap_or(default_base).to_owned();
    let ip = listen_ip(flags.str("listen-host").unwrap_or("127.0.0.1"))?;
    let mut config = ProviderConfig::new(zk, base, port)
        .listen(SocketAddr::new(ip, port))
        .session_timeout(flags.millis("session-timeout-ms", 10_000, 1..=MAX_MS)?)
        .drain_grace(flags.millis("drain-grace-ms", 250, 0..=MAX_MS)?)
        .zk_auth(flags.zk_auth()?)
        .tls(super::tls::provider_tls_flags(flags)?);
    if let Some(host) = flags.str("advertise-host") {
        config = config.advertise_host(host);
    }
    if flags.str("weight").is_some() {
        let weight = flags.number("weight", 100u32, 0..=u32::MAX)?;
        config = config.metadata("weight", weight.to_string());
    }
    let delay = flags.millis("delay-ms", 0, 0..=MAX_MS)?;
    Ok(HelloProvider { config, delay })
}

/// The IP of `--listen-host`, with an error that says what is expected.
///
/// ```
/// use zoorpc::apps::provider::listen_ip;
/// assert!(listen_ip("::1").unwrap().is_loopback());
/// assert_eq!(
///     listen_ip("localhost").unwrap_err(),
///     "invalid address \"localhost\": expected an IP address such as 127.0.0.1 or ::1"
/// );
/// ```
pub fn listen_ip(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| {
        format!("invalid address {text:?}: expected an IP address such as 127.0.0.1 or ::1")
    })
}

/// `zoorpc provider` flags: the same as the `provider` program's.
#[derive(clap::Args, Debug)]
pub struct ProviderArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: super::ZkArg,
    /// Port to serve on (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where to register
    #[arg(long, default_value = "/registry", value_parser = super::znode_path)]
    pub base_path: String,
    /// Weight written into the URL (?weight=N); picking is proportional to it
    #[arg(long)]
    pub weight: Option<u32>,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub listen_host: String,
    /// Host written into the URL (default: the listen host; required with 0.0.0.0 / ::)
    #[arg(long, value_parser = super::host_name)]
    pub advertise_host: Option<String>,
    /// ZooKeeper session timeout asked for, ms
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub session_timeout_ms: u64,
    /// Pause between deleting the node and closing the listener on a stop, ms
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    pub drain_grace_ms: u64,
    /// Artificial latency of every SayHello, ms (a slow provider)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_MS))]
    pub delay_ms: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (ZooKeeper session state)
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    #[command(flatten)]
    /// TLS to serve with (`--tls-cert`, `--tls-key`, `--tls-client-ca`)
    pub tls: super::tls::ProviderTlsArgs,
}

impl ProviderArgs {
    /// The provider configuration.
    pub fn config(&self) -> Result<HelloProvider, String> {
        let ip = listen_ip(&self.listen_host)?;
        let mut config = ProviderConfig::new(self.zk.zk.clone(), self.base_path.clone(), self.port)
            .listen(SocketAddr::new(ip, self.port))
            .session_timeout(Duration::from_millis(self.session_timeout_ms))
            .drain_grace(Duration::from_millis(self.drain_grace_ms))
            .zk_auth(self.zk.credential()?)
            .tls(self.tls.load()?);
        if let Some(host) = &self.advertise_host {
            config = config.advertise_host(host);
        }
        if let Some(weight) = self.weight {
            config = config.metadata("weight", weight.to_string());
        }
        let delay = Duration::from_millis(self.delay_ms);
        Ok(HelloProvider { config, delay })
    }
}

/// Runs the provider program with the process arguments.
pub fn main() {
    crate::init_logging();
    let flags = Flags::from_env(USAGE, FLAGS);
    let config = or_exit(USAGE, config(&flags));
    std::process::exit(run(config));
}

/// Runs a `HelloService` provider until a signal; returns the exit status.
pub fn run(program: HelloProvider) -> i32 {
    run_started(super::hello::serve_slow(program.config, program.delay))
}

/// Runs the provider `start` makes (any service) until a signal, printing the program's lines;
/// returns the exit status.
pub fn run_started(
    start: impl std::future::Future<Output = Result<Provider, zoorpc_provider::Error>>,
) -> i32 {
    super::block_on(async move {
        let provider = start.await?;
        // Listening before announcing: whoever reads the line may signal at once.
        let mut signals = StopSignals::listen()?;
        let node = announce_until_stopped(&provider, &mut signals).await;
        let node = provider.node_path().unwrap_or(node);
        crate::say!("stopping {node}");
        tokio::select! {
            stopped = provider.shutdown() => match stopped {
                Ok(()) => {
                    crate::say!("deregistered {node}");
                    crate::say!("stopped");
                    Ok::<_, zoorpc_provider::Error>(0)
                }
                Err(e) => {
                    eprintln!("error: {}", crate::cli::error_line(&e.to_string()));
                    crate::say!("stopped");
                    Ok(1)
                }
            },
            // A second Ctrl-C: the user does not want to wait for the deregistration or drain.
            _ = signals.recv() => {
                eprintln!("error: interrupted again; exiting at once (a node not yet deleted goes with the session)");
                // Right here: tearing the runtime down under a half-finished stop would only
                // race the ZooKeeper client's shutdown.
                std::process::exit(130)
            }
        }
    })
}

/// Announces the provider's node (`registered <node> <url>`), again each time it is re-created,
/// until a stop signal; returns the last node announced.
async fn announce_until_stopped(provider: &Provider, signals: &mut StopSignals) -> String {
    let mut node = provider.node_path().unwrap_or_default();
    crate::say!("registered {node} {}", provider.url());
    // A re-created node (expiry, an operator's delete, a wipe) is announced as a new
    // registration, so the lines always name the node there is.
    let mut changes = provider.node_changes();
    loop {
        let changed = async {
            match changes.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = signals.recv() => return node,
            alive = changed => {
                if !alive {
                    changes = None;
                    continue;
                }
                // The registration publishes a path only when it created the node again,
                // so each one is announced, even under the same name (sequence numbers
                // start again in a re-created base path).
                if let Some(now) = changes.as_mut().and_then(|rx| rx.borrow_and_update().clone()) {
                    node = now;
                    crate::say!("registered {node} {}", provider.url());
                }
            }
        }
    }
}
