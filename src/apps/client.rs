//! The client program: calls `SayHello` through a [`Consumer`] N times, printing
//! `ok <provider url>` or `err <reason>` per call and `calls=N ok=N failed=N` last.

use std::time::Duration;

use crate::cli::{Flags, or_exit};
use zoorpc_consumer::{Consumer, ConsumerConfig};

/// Usage text.
pub const USAGE: &str = "usage: client --zk HOST:PORT[,HOST:PORT...] [--base-path /registry] \
[--calls 10] [--interval-ms 500] [--name world]";

/// Runs the client program with the process arguments.
pub fn main() {
    crate::init_logging();
    let flags = Flags::from_env(USAGE, &["zk", "base-path", "calls", "interval-ms", "name"]);
    let zk = or_exit(
        USAGE,
        flags
            .str("zk")
            .ok_or_else(|| "--zk HOST:PORT is required".to_owned()),
    )
    .to_owned();
    let base = flags.str("base-path").unwrap_or("/registry").to_owned();
    let calls: u64 = or_exit(USAGE, flags.get("calls", 10));
    let interval = Duration::from_millis(or_exit(USAGE, flags.get("interval-ms", 500)));
    let name = flags.str("name").unwrap_or("world").to_owned();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let status = runtime.block_on(async move {
        let consumer = match Consumer::connect_with(ConsumerConfig::new(zk, base)).await {
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
            match consumer.say_hello(&name).await {
                Ok(answer) => {
                    ok += 1;
                    println!("ok {}", answer.url);
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
