//! The HA client program: calls `SayHello` on the current master N times through a
//! [`MasterClient`], printing `ok <addr>` (the master that answered, `host:port` as the master
//! node holds it) or `err <reason>` per call, and `calls=N ok=N failed=N` last.

use std::time::Duration;

use zoorpc_consumer::{MasterClient, MasterClientConfig};

use crate::cli::{Flags, or_exit};

/// Usage text.
pub const USAGE: &str = "usage: ha_client --zk HOST:PORT[,HOST:PORT...] \
[--path /soa/master/services/HelloService:1.0.0] [--calls 10] [--interval-ms 500] [--name world] \
[--switch-over-timeout-ms 15000]";

/// Flags the HA client accepts.
pub const FLAGS: &[&str] = &[
    "zk",
    "path",
    "calls",
    "interval-ms",
    "name",
    "switch-over-timeout-ms",
];

/// Runs the HA client program with the process arguments.
pub fn main() {
    crate::init_logging();
    let flags = Flags::from_env(USAGE, FLAGS);
    let zk = or_exit(
        USAGE,
        flags
            .str("zk")
            .ok_or_else(|| "--zk HOST:PORT is required".to_owned()),
    )
    .to_owned();
    let path = flags
        .str("path")
        .map_or_else(super::ha_server::default_path, str::to_owned);
    let calls: u64 = or_exit(USAGE, flags.get("calls", 10));
    let interval = Duration::from_millis(or_exit(USAGE, flags.get("interval-ms", 500)));
    let name = flags.str("name").unwrap_or("world").to_owned();
    let mut config = MasterClientConfig::new(zk, path);
    config.switch_over_timeout =
        Duration::from_millis(or_exit(USAGE, flags.get("switch-over-timeout-ms", 15_000)));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let status = runtime.block_on(async move {
        let client = match MasterClient::connect_with(config).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for _ in 0..calls {
            ticker.tick().await;
            match client.say_hello(&name).await {
                Ok(answer) => {
                    ok += 1;
                    println!("ok {}", answer.master);
                }
                Err(e) => {
                    failed += 1;
                    println!("err {e}");
                }
            }
        }
        println!("calls={calls} ok={ok} failed={failed}");
        0
    });
    std::process::exit(status);
}
