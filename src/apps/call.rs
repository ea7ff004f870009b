//! `zoorpc call <name>`: `SayHello(name)` through a [`Consumer`] (the registry's picking,
//! retry and ejection), `--count` times, in the call loop of the client programs
//! ([`super::call_loop`]). Prints `ok <provider url> <reply>` or `err <reason>` per call and
//! `calls=N ok=N failed=N` last; exits 1 if any call failed.

use std::time::Duration;

use zoorpc_consumer::{Consumer, Strategy};

use crate::cli::{MAX_MS, millis, number};

/// `zoorpc call` flags.
#[derive(clap::Args, Debug)]
pub struct CallArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: super::ZkArg,
    /// The name sent in `HelloRequest.name`
    pub name: String,
    /// Where the providers register
    #[arg(long, default_value = "/registry", value_parser = super::znode_path, conflicts_with = "curator_name")]
    pub base_path: String,
    /// Call the instances of a service in the Curator / Spring Cloud Zookeeper layout instead.
    #[command(flatten)]
    pub curator: super::CuratorArgs,
    /// How many calls (`--calls`, as the client programs spell it, is the same flag)
    #[arg(long, visible_alias = "calls", value_name = "N", default_value = "1", value_parser = number(1..=u64::MAX))]
    pub count: u64,
    /// Pause between calls, in milliseconds (0: none)
    #[arg(long = "interval-ms", value_name = "MS", default_value = "0", value_parser = millis(0..=MAX_MS))]
    pub interval: Duration,
    /// How a provider is picked: random, round-robin, least-loaded or first
    #[arg(long, default_value = "random")]
    pub strategy: Strategy,
    #[command(flatten)]
    /// How https providers are verified (`--tls-ca`, client certificate, server name)
    pub tls: super::tls::ConsumerTlsArgs,
}

/// Runs `zoorpc call`; returns the exit status.
pub fn run(args: CallArgs) -> i32 {
    let access = super::consumer_access(&args.zk, &args.tls);
    super::run_checked(access, &super::MetricsArg::default(), |(zk_auth, tls)| {
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
            let name = &args.name;
            let failed = super::call_loop(args.count, args.interval, || async {
                consumer
                    .say_hello(name)
                    .await
                    .map(|answer| format!("{} {}", answer.url, answer.value.message))
            })
            .await;
            Ok::<_, String>(if failed == 0 { 0 } else { 1 })
        })
    })
}
