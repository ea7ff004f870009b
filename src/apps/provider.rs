//! The provider program: serve `HelloService`, register, and on SIGTERM / Ctrl-C deregister,
//! drain, exit. Prints `registered <znode path> <url>` once registered (other tools read it);
//! on a stop `stopping <znode path>` when it begins, `deregistered <znode path>` as soon as the
//! node is deleted (before the drain grace and the drain), `stopped` at the end. With ZooKeeper
//! out of reach the node cannot be deleted: after one session timeout it prints the error
//! instead of `deregistered`, drains, prints `stopped`, and exits 1 (the node goes with the
//! session). A second signal exits at once with status 130. Registered in both layouts
//! (`--base-path` and `--curator-name`), it prints `registered` and `deregistered` once per node,
//! the `provider<seq>` node first.

use std::time::Duration;

use tokio::sync::watch;

use crate::cli::{MAX_MS, millis, number};
use zoorpc_provider::{Provider, ProviderConfig, StopSignals};
use zoorpc_registry::CuratorPayload;

/// What the provider program runs: the provider's configuration, and the demo service's
/// artificial latency.
#[derive(Clone, Debug)]
pub struct HelloProvider {
    /// The provider's configuration.
    pub config: ProviderConfig,
    /// How long every `SayHello` takes at least (`--delay-ms`; a slow provider).
    pub delay: Duration,
}

/// zoorpc-provider: serves the demo HelloService and keeps it registered until SIGTERM or Ctrl-C.
/// Lines: `registered <node> <url>` (again if the node is re-created, with the URL it then
/// holds: a weight changed in ZooKeeper included); on a stop `stopping
/// <node>`, `deregistered <node>` once the node is deleted, then the drain, then `stopped`.
#[derive(clap::Parser, Debug)]
#[command(name = "zoorpc-provider", version)]
pub struct ProviderProgram {
    /// The provider's flags.
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// How much to log.
    #[command(flatten)]
    pub log: super::LogArgs,
}

/// `zoorpc provider` and `zoorpc-provider` flags.
#[derive(clap::Args, Debug)]
pub struct ProviderArgs {
    /// Where to register provider<seq> [default: /registry, unless --curator-name is given
    /// alone: then only in the Curator layout]
    #[arg(long, value_parser = super::znode_path)]
    pub base_path: Option<String>,
    /// Also (or, without --base-path, only) register in the layout of Curator's service
    /// discovery and Spring Cloud Zookeeper.
    #[command(flatten)]
    pub curator: super::CuratorArgs,
    /// The payload of the Curator instance: none (null, read by any Curator discovery) or
    /// spring-cloud (Spring Cloud Zookeeper's ZookeeperInstance, with the gRPC_port and weight
    /// metadata grpc-spring-boot-starter and Spring's discovery client read)
    #[arg(
        long,
        value_name = "KIND",
        default_value = "none",
        requires = "curator_name"
    )]
    pub curator_payload: PayloadArg,
    /// Everything else a provider program is told.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// A value of `--curator-payload`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadArg {
    /// A `null` payload (any Curator discovery reads it).
    None,
    /// Spring Cloud Zookeeper's `ZookeeperInstance`.
    SpringCloud,
}

impl From<PayloadArg> for CuratorPayload {
    fn from(arg: PayloadArg) -> Self {
        match arg {
            PayloadArg::None => CuratorPayload::None,
            PayloadArg::SpringCloud => CuratorPayload::SpringCloud,
        }
    }
}

/// The flags of every program that provides (`zoorpc-provider`, `zoorpc provider`,
/// `zoorpc-echo`) but the base path, whose default is each program's own.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The ZooKeeper to talk to and the identity to use.
    #[command(flatten)]
    pub zk: super::ZkArg,
    /// Where to listen and what to advertise.
    #[command(flatten)]
    pub listen: super::ListenArgs,
    /// The session timeout asked for.
    #[command(flatten)]
    pub session: super::SessionArg,
    /// Pause between deleting the node and closing the listener on a stop, in milliseconds
    #[arg(long = "drain-grace-ms", value_name = "MS", default_value = "250", value_parser = millis(0..=MAX_MS))]
    pub drain_grace: Duration,
    /// Artificial latency of every call, in milliseconds (a slow provider)
    #[arg(long = "delay-ms", value_name = "MS", default_value = "0", value_parser = millis(0..=MAX_MS))]
    pub delay: Duration,
    /// Weight written into the URL (?weight=N); picking is proportional to it [default: 100]
    #[arg(long, value_name = "N", value_parser = number(0..=u32::MAX))]
    pub weight: Option<u32>,
    /// Where to serve metrics (ZooKeeper session state), if anywhere.
    #[command(flatten)]
    pub metrics: super::MetricsArg,
    /// TLS to serve with (`--tls-cert`, `--tls-key`, `--tls-client-ca`).
    #[command(flatten)]
    pub tls: super::tls::ProviderTlsArgs,
}

impl ServeArgs {
    /// The provider configuration, registering under `base_path`; reads the credential and TLS
    /// files.
    pub fn config(&self, base_path: &str) -> Result<HelloProvider, String> {
        let listen = self.listen.address();
        let mut config = ProviderConfig::new(self.zk.zk.clone(), base_path, listen.port())
            .listen(listen)
            .session_timeout(self.session.session_timeout)
            .drain_grace(self.drain_grace)
            .zk_auth(self.zk.credential()?)
            .tls(self.tls.load()?);
        if let Some(host) = &self.listen.advertise_host {
            config = config.advertise_host(host);
        }
        if let Some(weight) = self.weight {
            config = config.metadata("weight", weight.to_string());
        }
        Ok(HelloProvider {
            config,
            delay: self.delay,
        })
    }

    /// Runs the provider `serve` starts from the configuration (registering under
    /// `base_path`): the files and metrics first (an unusable file is status 2, a taken metrics
    /// address 1), then until a signal; returns the exit status.
    pub fn run<F, Fut>(&self, base_path: &str, serve: F) -> i32
    where
        F: FnOnce(HelloProvider) -> Fut,
        Fut: std::future::Future<Output = Result<Provider, zoorpc_provider::Error>>,
    {
        self.run_config(self.config(base_path), serve)
    }

    /// Runs the provider `serve` starts from `config` (see [`ServeArgs::run`]).
    pub fn run_config<F, Fut>(&self, config: Result<HelloProvider, String>, serve: F) -> i32
    where
        F: FnOnce(HelloProvider) -> Fut,
        Fut: std::future::Future<Output = Result<Provider, zoorpc_provider::Error>>,
    {
        super::run_checked(config, &self.metrics, |program| run_started(serve(program)))
    }
}

impl ProviderArgs {
    /// Runs the `HelloService` provider these flags ask for; returns the exit status.
    pub fn run(&self) -> i32 {
        let base_path = self.base_path.as_deref().unwrap_or("/registry");
        let config = self.serve.config(base_path).map(|mut program| {
            if let Some(service) = self.curator.service() {
                let service = service.payload(self.curator_payload.into());
                program.config = match self.base_path {
                    Some(_) => program.config.curator(service),
                    None => program.config.curator_only(service),
                };
            }
            program
        });
        self.serve.run_config(config, |program| {
            super::hello::serve_slow(program.config, program.delay)
        })
    }
}

/// Runs the provider program with the process arguments.
pub fn main() {
    let program: ProviderProgram = crate::cli::parse();
    program.log.init("warn");
    std::process::exit(program.provider.run());
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
        let mut nodes = announce_until_stopped(&provider, &mut signals).await;
        if let (Some(first), Some(now)) = (nodes.first_mut(), provider.node_path()) {
            *first = now;
        }
        crate::say!("stopping {}", nodes.first().map_or("", String::as_str));
        tokio::select! {
            status = stop(provider, &nodes) => Ok::<_, zoorpc_provider::Error>(status),
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

/// The stop's lines, each when its step is done: `deregistered <node>` once the node is deleted
/// (before the drain grace: whoever waits for it may count the provider gone from the list;
/// one line per node, all deleted by then), `stopped` after the drain; a failed step is one
/// error line and status 1.
async fn stop(mut provider: Provider, nodes: &[String]) -> i32 {
    let error = |e: zoorpc_provider::Error| {
        eprintln!("error: {}", crate::cli::error_line(&e.to_string()));
        1
    };
    let deregistered = match provider.deregister().await {
        Ok(()) => {
            for node in nodes {
                crate::say!("deregistered {node}");
            }
            0
        }
        Err(e) => error(e),
    };
    let stopped = provider.shutdown().await.map_or_else(error, |()| 0);
    crate::say!("stopped");
    deregistered.max(stopped)
}

/// Announces the provider's nodes (`registered <node> <url>`: its `provider<seq>` node, its
/// Curator instance node, or both, in that order), each again whenever it is re-created, until
/// a stop signal; returns the last paths announced.
async fn announce_until_stopped(provider: &Provider, signals: &mut StopSignals) -> Vec<String> {
    let main = provider.node_path().unwrap_or_default();
    let mut nodes = vec![Announced::new(main.clone(), provider.node_changes())];
    if let Some(curator) = provider.curator_node_path().filter(|c| *c != main) {
        nodes.push(Announced::new(curator, provider.curator_node_changes()));
    }
    // The URL each node holds as kept: a weight an operator changed is what it registers again.
    let url_of = |second: bool| match second {
        true => provider
            .curator_node_url()
            .unwrap_or_else(|| provider.url().clone()),
        false => provider.node_url(),
    };
    for (i, announced) in nodes.iter().enumerate() {
        crate::say!("registered {} {}", announced.node, url_of(i > 0));
    }
    // A re-created node (expiry, an operator's delete, a wipe) is announced as a new
    // registration, so the lines always name the nodes there are.
    loop {
        let (first, rest) = nodes.split_at_mut(1);
        let second = async {
            match rest.first_mut() {
                Some(announced) => announced.recreated().await,
                None => std::future::pending().await,
            }
        };
        let recreated = tokio::select! {
            _ = signals.recv() => None,
            node = first[0].recreated() => Some((node, false)),
            node = second => Some((node, true)),
        };
        match recreated {
            Some((node, second)) => crate::say!("registered {node} {}", url_of(second)),
            None => break,
        }
    }
    nodes.into_iter().map(|announced| announced.node).collect()
}

/// One node the provider program announces: the path last announced, and its changes.
struct Announced {
    node: String,
    /// `None` once the registration stopped publishing.
    changes: Option<watch::Receiver<Option<String>>>,
}

impl Announced {
    fn new(node: String, changes: Option<watch::Receiver<Option<String>>>) -> Announced {
        Announced { node, changes }
    }

    /// The node's path once it is created again (the registration publishes a path only when
    /// it created the node again, so each one is announced, even under the same name).
    async fn recreated(&mut self) -> String {
        loop {
            let Some(changes) = self.changes.as_mut() else {
                return std::future::pending().await;
            };
            if changes.changed().await.is_err() {
                self.changes = None;
                continue;
            }
            if let Some(now) = changes.borrow_and_update().clone() {
                self.node = now.clone();
                return now;
            }
        }
    }
}
