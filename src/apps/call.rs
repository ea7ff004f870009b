//! `zoorpc call <name>`: `SayHello(name)` through a [`Consumer`] (the registry's picking,
//! retry and ejection), `--count` times. Prints `ok <provider url> <reply>` or `err <reason>`
//! per call and `calls=N ok=N failed=N` last; exits 1 if any call failed.

use std::time::Duration;

use zoorpc_consumer::{Consumer, ConsumerConfig, Strategy};

use super::ZkArg;

/// `zoorpc call` flags.
#[derive(clap::Args, Debug)]
pub struct CallArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: ZkArg,
    /// The name sent in `HelloRequest.name`
    pub name: String,
    /// Where the providers register
    #[arg(long, default_value = "/registry", value_parser = super::znode_path)]
    pub base_path: String,
    /// How many calls
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Pause between calls, in milliseconds (0: none)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=crate::cli::MAX_MS))]
    pub interval_ms: u64,
    /// How a provider is picked: random, round-robin, least-loaded or first
    #[arg(long, default_value = "random")]
    pub strategy: Strategy,
    #[command(flatten)]
    /// How https providers are verified (`--tls-ca`, client certificate, server name)
    pub tls: super::tls::ConsumerTlsArgs,
}

/// Runs `zoorpc call`; returns the exit status.
pub fn run(args: CallArgs) -> i32 {
    let (zk_auth, tls) = match super::consumer_access(&args.zk, &args.tls) {
        Ok(access) => access,
        Err(status) => return status,
    };
    super::block_on(async move {
        let mut config =
            ConsumerConfig::new(args.zk.zk.clone(), args.base_path).strategy(args.strategy);
        config.zk_auth = zk_auth;
        config.tls = tls;
        let consumer = Consumer::connect_with(config).await?;
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut pace = super::Pace::new(Duration::from_millis(args.interval_ms));
        for _ in 0..args.count {
            pace.next().await;
            let line = match consumer.say_hello(&args.name).await {
                Ok(answer) => {
                    ok += 1;
                    format!("ok {} {}", answer.url, answer.value.message)
                }
                Err(e) => {
                    failed += 1;
                    format!("err {}", crate::cli::with_flags(&e.to_string()))
                }
            };
            if !super::write_line(format_args!("{line}")) {
                break;
            }
        }
        crate::say!("calls={} ok={ok} failed={failed}", ok + failed);
        Ok::<_, zoorpc_consumer::Error>(if failed == 0 { 0 } else { 1 })
    })
}
