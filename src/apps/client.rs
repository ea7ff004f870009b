//! The client program: calls `SayHello` through a [`Consumer`] N times, printing
//! `ok <provider url>` or `err <reason>` per call and `calls=N ok=N failed=N` last; exits 1 if
//! any call failed (as `zoorpc call` and `zoorpc-ha-client`), 0 if all were answered.

use zoorpc_consumer::{Consumer, Strategy};

/// zoorpc-client: calls SayHello through the registry (picking, retry, failover), one line per
/// call (`ok <provider url>` or `err <reason>`), `calls=N ok=N failed=N` last; exits 1 if a call
/// failed.
#[derive(clap::Parser, Debug)]
#[command(name = "zoorpc-client", version)]
pub struct ClientArgs {
    /// The ZooKeeper to talk to and the identity to use.
    #[command(flatten)]
    pub zk: super::ZkArg,
    /// Where the providers register
    #[arg(long, default_value = "/registry", value_parser = super::znode_path, conflicts_with = "curator_name")]
    pub base_path: String,
    /// Call the instances of a service in the Curator / Spring Cloud Zookeeper layout instead.
    #[command(flatten)]
    pub curator: super::CuratorArgs,
    /// How many calls, how often, with which name.
    #[command(flatten)]
    pub calls: super::CallLoopArgs,
    /// How a provider is picked: random, round-robin, least-loaded or first
    #[arg(long, default_value = "random")]
    pub strategy: Strategy,
    /// Where to serve metrics, if anywhere.
    #[command(flatten)]
    pub metrics: super::MetricsArg,
    /// How https providers are verified (`--tls-ca`, client certificate, server name).
    #[command(flatten)]
    pub tls: super::tls::ConsumerTlsArgs,
    /// How much to log.
    #[command(flatten)]
    pub log: super::LogArgs,
}

/// Runs the client program with the process arguments.
pub fn main() {
    let args: ClientArgs = crate::cli::parse();
    args.log.init("warn");
    std::process::exit(run(args));
}

/// Runs the client program; returns the exit status.
pub fn run(args: ClientArgs) -> i32 {
    let access = super::consumer_access(&args.zk, &args.tls);
    let metrics = args.metrics.clone();
    super::run_checked(access, &metrics, |(zk_auth, tls)| {
        super::block_on(async move {
            let mut config = args
                .curator
                .consumer_config(&args.zk.zk, &args.base_path)?
                .strategy(args.strategy);
            config.zk_auth = zk_auth;
            config.tls = tls;
            let consumer = Consumer::connect_with(config)
                .await
                .map_err(|e| e.to_string())?;
            let calls = &args.calls;
            let failed = super::call_loop(calls.calls, calls.interval, || async {
                consumer
                    .say_hello(&calls.name)
                    .await
                    .map(|a| a.url.to_string())
            })
            .await;
            Ok::<_, String>(if failed == 0 { 0 } else { 1 })
        })
    })
}
