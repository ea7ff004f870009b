//! The bodies of zoorpc's programs, shared by the `zoorpc-*` binaries and the examples, and
//! what they have in common: running on a Tokio runtime, and the client programs' call loop.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

pub mod client;
pub mod ha_client;
pub mod ha_server;
pub mod master_job;
pub mod provider;
pub mod zookeeper;

/// Runs a program's body on a new Tokio runtime and returns its exit status: the body's own, or
/// 1 after printing `error: <e>` when it fails (or the runtime cannot start).
pub fn block_on<E: Display>(body: impl Future<Output = Result<i32, E>>) -> i32 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(body) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Makes `calls` calls, one per `interval`, printing `ok <who answered>` or `err <reason>` for
/// each and `calls=N ok=N failed=N` last.
pub async fn call_loop<F, Fut, E>(calls: u64, interval: Duration, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, E>>,
    E: Display,
{
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..calls {
        ticker.tick().await;
        match call().await {
            Ok(who) => {
                ok += 1;
                println!("ok {who}");
            }
            Err(e) => {
                failed += 1;
                println!("err {e}");
            }
        }
    }
    println!("calls={calls} ok={ok} failed={failed}");
}
