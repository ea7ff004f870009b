//! The HA client program: calls `SayHello` on the current master N times through a
//! [`MasterClient`], printing `ok <addr>` (the master that answered, `host:port` as the master
//! node holds it) or `err <reason>` per call, and `calls=N ok=N failed=N` last. Exits 1 if any
//! call failed (as `zoorpc call`), 0 if all were answered.

use std::time::Duration;

use zoorpc_consumer::{MasterClient, MasterClientConfig};

use crate::cli::{MAX_MS, millis};

/// zoorpc-ha-client: calls SayHello on the current master of an election path, one line per call
/// (`ok <master address>` or `err <reason>`), `calls=N ok=N failed=N` last; exits 1 if a call
/// failed.
#[derive(clap::Parser, Debug)]
#[command(name = "zoorpc-ha-client", version)]
pub struct HaClientArgs {
    /// The ZooKeeper to talk to and the identity to use.
    #[command(flatten)]
    pub zk: super::ZkArg,
    /// The election path
    #[arg(long, default_value_t = super::ha_server::default_path(), value_parser = super::election_path)]
    pub path: String,
    /// How many calls, how often, with which name.
    #[command(flatten)]
    pub calls: super::CallLoopArgs,
    /// How long a call waits for a master when there is none (no contender yet, or a
    /// switch-over under way), in milliseconds
    #[arg(long = "switch-over-timeout-ms", value_name = "MS", default_value = "15000", value_parser = millis(0..=MAX_MS))]
    pub switch_over_timeout: Duration,
    /// How the masters' TLS is verified (`--tls-ca`, client certificate, server name).
    #[command(flatten)]
    pub tls: super::tls::ConsumerTlsArgs,
    /// How much to log.
    #[command(flatten)]
    pub log: super::LogArgs,
}

/// Runs the HA client program with the process arguments.
pub fn main() {
    let args: HaClientArgs = crate::cli::parse();
    args.log.init("warn");
    std::process::exit(run(args));
}

/// Runs the HA client program; returns the exit status.
pub fn run(args: HaClientArgs) -> i32 {
    let access = super::consumer_access(&args.zk, &args.tls);
    super::run_checked(access, &super::MetricsArg::default(), |(zk_auth, tls)| {
        let mut config = MasterClientConfig::new(args.zk.zk.clone(), args.path.clone());
        config.zk_auth = zk_auth;
        config.tls = tls;
        config.switch_over_timeout = args.switch_over_timeout;
        super::block_on(async move {
            let client = MasterClient::connect_with(config).await?;
            let calls = &args.calls;
            let failed = super::call_loop(calls.calls, calls.interval, || async {
                client.say_hello(&calls.name).await.map(|a| a.master)
            })
            .await;
            Ok::<_, zoorpc_consumer::Error>(if failed == 0 { 0 } else { 1 })
        })
    })
}
