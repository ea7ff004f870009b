//! Benchmarks. They print figures; they do not assert them.
//!
//! `cargo run --release --example bench -- <scenario> [--zk HOST:PORT] --rounds N`
//!
//! Without `--zk` a ZooKeeper is started through the test harness. The last line of every
//! scenario is one JSON object with the figures.
//!
//! Scenarios:
//! - `propagation`: a provider with its own session registers; time until a consumer's list
//!   holds it; it deregisters; time until the list drops it.
//! - `handover`: the master resigns; time until a standby holding its own session is master.

mod handover;
mod propagation;

use std::time::Duration;

use zoorpc::cli::{Flags, fail, or_exit};
use zoorpc_testkit::ZkServer;

const USAGE: &str =
    "usage: bench <propagation|handover> [--zk HOST:PORT] [--rounds N (1 to 1000000)]";

fn main() {
    zoorpc::init_logging();
    let flags = Flags::from_env(USAGE, &["zk", "rounds"]);
    let rounds = or_exit(USAGE, flags.number("rounds", 200usize, 1..=1_000_000));
    let scenario = flags.positional().first().cloned().unwrap_or_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => fail(USAGE, &format!("cannot start the async runtime: {e}")),
    };
    // Keep our own ZooKeeper (if any) alive for the whole run.
    let own_zk;
    let zk = match flags.str("zk") {
        Some(zk) => zk.to_owned(),
        None => {
            own_zk = match ZkServer::start() {
                Ok(server) => server,
                Err(e) => fail(USAGE, &e.to_string()),
            };
            own_zk.connect_string()
        }
    };
    let result = runtime.block_on(async {
        match scenario.as_str() {
            "propagation" => propagation::run(&zk, rounds).await,
            "handover" => handover::run(&zk, rounds).await,
            "" => Err("name a scenario".to_owned()),
            other => Err(format!("unknown scenario {other:?}")),
        }
    });
    if let Err(e) = result {
        fail(USAGE, &e);
    }
}

/// The `q` quantile (0..=1) of `samples` in milliseconds, nearest-rank.
pub fn quantile_ms(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1].as_secs_f64() * 1000.0
}
