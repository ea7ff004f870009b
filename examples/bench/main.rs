//! Benchmarks. They print figures; they do not assert them.
//!
//! `cargo run --release --example bench -- <scenario> [--zk HOST:PORT] [options]`
//!
//! Without `--zk` a ZooKeeper is started through the test harness (the only place this program
//! uses it is [`harness`] below). The last line of every scenario is one JSON object with the
//! figures, times in milliseconds.
//!
//! Scenarios:
//! - `propagation`: a provider with its own session registers; time until a consumer's list
//!   holds it; it deregisters; time until the list drops it.
//! - `handover`: the master resigns; time until a standby holding its own session is master.
//! - `takeover`: two `zoorpc-ha-server` processes under a `MasterClient` loop; the master is
//!   SIGKILLed, SIGSTOPped, SIGTERMed or designated away: time to the first call the new master answers.
//! - `qps`: unary calls through `consumer.channel()` against a plain tonic channel to one
//!   provider, in one run: what the balancer costs per call; and against plain channels to
//!   every provider (the balancer's connection count without the balancer).
//! - `slow`: one provider of three answers 10× slower: p50/p99 per strategy beside a healthy
//!   baseline.
//! - `failover`: steady load while providers (`zoorpc-echo` processes) are SIGKILLed and
//!   restarted; an SVG timeline with `--plot`.
//! - `scale`: many consumers (one session each) watching many providers: convergence,
//!   ZooKeeper traffic per consumer per event, propagation under churn, memory per consumer.
//! - `xds`: a provider's registration to the first call a Python xDS client sends it; `zoorpc
//!   xds`'s memory and CPU with 1,000 providers and 100 ADS streams.

mod alloc_count;
mod failover;
mod handover;
mod load;
mod plot;
mod propagation;
mod qps;
mod scale;
mod slow;
mod takeover;
mod xds;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use zoorpc::cli::number;

/// Benchmarks: each scenario prints its figures, the last line one JSON object (times in ms).
#[derive(Parser, Debug)]
#[command(name = "bench")]
struct Cli {
    /// The ZooKeeper to use [default: one the benchmark starts]
    #[arg(long, global = true, value_name = "HOST:PORT[,HOST:PORT...]", value_parser = zoorpc::apps::connect_string)]
    zk: Option<String>,
    #[command(subcommand)]
    scenario: Scenario,
    /// How much to log.
    #[command(flatten)]
    log: zoorpc::apps::LogArgs,
}

/// A scenario with its options.
#[derive(Subcommand, Debug)]
enum Scenario {
    /// A provider registers and deregisters: time until a consumer's list follows
    Propagation(Rounds),
    /// The master resigns: time until a standby is master
    Handover(Rounds),
    /// The master is SIGKILLed, SIGSTOPped, SIGTERMed or designated away: time to the new master's
    /// first answer
    Takeover(takeover::Options),
    /// Calls through the balancer against plain tonic channels: what the balancer costs
    Qps(qps::Options),
    /// One provider of three answers 10x slower: p50/p99 per strategy
    Slow(slow::Options),
    /// Steady load while zoorpc-echo providers are SIGKILLed and restarted
    Failover(failover::Options),
    /// Many consumers watching many providers: convergence, traffic, churn, memory
    Scale(scale::Options),
    /// zoorpc xds: registration to a Python xDS client's first call; memory and CPU with many
    /// providers and ADS streams
    Xds(xds::Options),
}

/// `propagation` and `handover` options.
#[derive(clap::Args, Debug)]
struct Rounds {
    /// Rounds (1 to 1000000)
    #[arg(long, value_name = "N", default_value = "200", value_parser = number(1..=1_000_000usize))]
    rounds: usize,
}

/// Whole seconds within `range`, as a clap value parser.
pub fn seconds(
    range: std::ops::RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    let whole = number(range);
    move |text| whole(text).map(Duration::from_secs)
}

#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

/// The one place the ZooKeeper test harness (`zoorpc-testkit`) is used.
mod harness {
    pub use zoorpc_testkit::{ChildProcess, ZkServer, spawn_tied};
}

fn main() {
    // Every flag is read (and checked) before ZooKeeper starts: a bad one costs nothing.
    let cli: Cli = zoorpc::cli::parse();
    cli.log.init("warn");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1)
        }
    };
    // Keep our own ZooKeeper (if any) alive for the whole run.
    let own_zk;
    let zk = match cli.zk {
        Some(zk) => zk,
        None => {
            own_zk = match harness::ZkServer::start() {
                Ok(server) => server,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1)
                }
            };
            own_zk.connect_string()
        }
    };
    let result = runtime.block_on(run(&zk, cli.scenario));
    // The scenario ran and failed (ZooKeeper, a provider): not a usage error.
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Runs `scenario` against the ZooKeeper at `zk`.
async fn run(zk: &str, scenario: Scenario) -> Result<(), String> {
    match scenario {
        Scenario::Propagation(Rounds { rounds }) => propagation::run(zk, rounds).await,
        Scenario::Handover(Rounds { rounds }) => handover::run(zk, rounds).await,
        Scenario::Takeover(options) => takeover::run(zk, options).await,
        Scenario::Qps(options) => qps::run(zk, options).await,
        Scenario::Slow(options) => slow::run(zk, options).await,
        Scenario::Failover(options) => failover::run(zk, options).await,
        Scenario::Scale(options) => scale::run(zk, options).await,
        Scenario::Xds(options) => xds::run(zk, options).await,
    }
}

/// `given`, or the program `name` beside this program's directory (`target/<profile>/name`).
pub fn sibling_binary(given: Option<&PathBuf>, name: &str) -> Result<PathBuf, String> {
    let path = match given {
        Some(path) => path.clone(),
        None => {
            // target/<profile>/examples/bench → target/<profile>/zoorpc-echo
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find this program's path: {e}"))?;
            exe.parent()
                .and_then(|examples| examples.parent())
                .map(|dir| dir.join(name))
                .ok_or_else(|| format!("no directory above {}", exe.display()))?
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the program {} does not exist: build it with `cargo build --release --bin {name}` (same profile as this program) or give its path",
            path.display()
        ))
    }
}

/// The `q` quantile (0..=1) of `samples` in milliseconds, nearest-rank.
pub fn quantile_ms(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1].as_secs_f64() * 1000.0
}

/// A float for the JSON line: three decimals, `null` when there is no figure.
pub fn json_num(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "null".to_owned()
    }
}
