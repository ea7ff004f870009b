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
//!   SIGKILLed, SIGSTOPped or SIGTERMed: time to the first call the new master answers.
//! - `qps`: unary calls through `consumer.channel()` against a plain tonic channel to one
//!   provider, in one run: what the balancer costs per call; and against plain channels to
//!   every provider (the balancer's connection count without the balancer).
//! - `slow`: one provider of three answers 10× slower: p50/p99 per strategy beside a healthy
//!   baseline.
//! - `failover`: steady load while providers (`zoorpc-echo` processes) are SIGKILLed and
//!   restarted; an SVG timeline with `--plot`.
//! - `scale`: many consumers (one session each) watching many providers: convergence,
//!   ZooKeeper traffic per consumer per event, propagation under churn, memory per consumer.

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

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use zoorpc::cli::{millis, number};

/// Benchmarks: each scenario prints its figures, the last line one JSON object (times in ms).
#[derive(Parser, Debug)]
#[command(name = "bench")]
struct Cli {
    /// The ZooKeeper to use [default: one the benchmark starts]
    #[arg(long, global = true, value_name = "HOST:PORT[,HOST:PORT...]", value_parser = zoorpc::apps::connect_string)]
    zk: Option<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

/// A scenario with its options.
#[derive(Subcommand, Debug)]
enum Scenario {
    /// A provider registers and deregisters: time until a consumer's list follows
    Propagation {
        /// Rounds (1 to 1000000)
        #[arg(long, value_name = "N", default_value = "200", value_parser = number(1..=1_000_000usize))]
        rounds: usize,
    },
    /// The master resigns: time until a standby is master
    Handover {
        /// Rounds (1 to 1000000)
        #[arg(long, value_name = "N", default_value = "200", value_parser = number(1..=1_000_000usize))]
        rounds: usize,
    },
    /// The master process is SIGKILLed, SIGSTOPped or SIGTERMed: time to the new master's
    /// first answer
    Takeover {
        /// Rounds of each kind (1 to 1000)
        #[arg(long, value_name = "N", default_value = "20", value_parser = number(1..=1000usize))]
        rounds: usize,
        /// The servers' session timeout, in milliseconds (1000 to 600000)
        #[arg(long = "session-timeout-ms", value_name = "MS", default_value = "10000", value_parser = millis(1_000..=600_000))]
        session_timeout: Duration,
        /// Where zoorpc-ha-server is [default: beside this program's directory]
        #[arg(long, value_name = "PATH", value_parser = zoorpc::cli::file_name)]
        server_bin: Option<PathBuf>,
    },
    /// Calls through the balancer against plain tonic channels: what the balancer costs
    Qps {
        /// Providers (1 to 64)
        #[arg(long, value_name = "N", default_value = "3", value_parser = number(1..=64usize))]
        providers: usize,
        /// Measured seconds per side (1 to 3600)
        #[arg(long, value_name = "S", default_value = "10", value_parser = number(1..=3600u64))]
        secs: u64,
        /// Calls in flight (1 to 4096)
        #[arg(long, value_name = "C", default_value = "32", value_parser = number(1..=4096usize))]
        concurrency: usize,
    },
    /// One provider of three answers 10x slower: p50/p99 per strategy
    Slow {
        /// Measured seconds per phase (1 to 3600)
        #[arg(long, value_name = "S", default_value = "5", value_parser = number(1..=3600u64))]
        secs: u64,
        /// Calls in flight (1 to 4096)
        #[arg(long, value_name = "C", default_value = "16", value_parser = number(1..=4096usize))]
        concurrency: usize,
        /// The healthy providers' delay in milliseconds, 1 to 1000 (the slow one's is 10x)
        #[arg(long = "delay-ms", value_name = "MS", default_value = "2", value_parser = millis(1..=1000))]
        delay: Duration,
    },
    /// Steady load while zoorpc-echo providers are SIGKILLed and restarted
    Failover {
        /// Measured seconds (1 to 3600)
        #[arg(long, value_name = "S", default_value = "20", value_parser = number(1..=3600u64))]
        secs: u64,
        /// Write an SVG timeline here
        #[arg(long, value_name = "FILE.svg", value_parser = zoorpc::cli::file_name)]
        plot: Option<PathBuf>,
        /// Calls per second, all callers together (1 to 100000)
        #[arg(long, value_name = "CALLS/S", default_value = "2000", value_parser = number(1..=100_000u32))]
        rate: u32,
        /// Calls in flight (1 to 4096)
        #[arg(long, value_name = "C", default_value = "16", value_parser = number(1..=4096usize))]
        concurrency: usize,
        /// A provider is killed this often, in milliseconds (200 to 600000)
        #[arg(long = "kill-every-ms", value_name = "MS", default_value = "3000", value_parser = millis(200..=600_000))]
        kill_every: Duration,
        /// How long a killed provider stays down, in milliseconds (0 to 600000)
        #[arg(long = "down-ms", value_name = "MS", default_value = "1000", value_parser = millis(0..=600_000))]
        down: Duration,
        /// Where zoorpc-echo is [default: beside this program's directory]
        #[arg(long, value_name = "PATH", value_parser = zoorpc::cli::file_name)]
        echo_bin: Option<PathBuf>,
    },
    /// Many consumers watching many providers: convergence, traffic, churn, memory
    Scale {
        /// Providers (1 to 100000)
        #[arg(long, value_name = "P", default_value = "1000", value_parser = number(1..=100_000usize))]
        providers: usize,
        /// Consumers, one session each (1 to 1000)
        #[arg(long, value_name = "C", default_value = "100", value_parser = number(1..=1000usize))]
        consumers: usize,
        /// Churn events, 0 to 100000 (a provider leaving, one joining)
        #[arg(long, value_name = "N", default_value = "100", value_parser = number(0..=100_000usize))]
        churn: usize,
        /// Sessions the providers are registered from (1 to 64)
        #[arg(long, value_name = "N", default_value = "4", value_parser = number(1..=64usize))]
        registrar_sessions: usize,
    },
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
    zoorpc::init_logging();
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
        Scenario::Propagation { rounds } => propagation::run(zk, rounds).await,
        Scenario::Handover { rounds } => handover::run(zk, rounds).await,
        Scenario::Takeover {
            rounds,
            session_timeout,
            server_bin,
        } => {
            let options = takeover::Options {
                rounds,
                session_timeout,
                server_bin,
            };
            takeover::run(zk, options).await
        }
        Scenario::Qps {
            providers,
            secs,
            concurrency,
        } => {
            let options = qps::Options {
                providers,
                duration: Duration::from_secs(secs),
                concurrency,
            };
            qps::run(zk, options).await
        }
        Scenario::Slow {
            secs,
            concurrency,
            delay,
        } => {
            let options = slow::Options {
                duration: Duration::from_secs(secs),
                concurrency,
                delay,
            };
            slow::run(zk, options).await
        }
        Scenario::Failover {
            secs,
            plot,
            rate,
            concurrency,
            kill_every,
            down,
            echo_bin,
        } => {
            let options = failover::Options {
                duration: Duration::from_secs(secs),
                plot,
                rate,
                concurrency,
                kill_every,
                down,
                echo_bin,
            };
            failover::run(zk, options).await
        }
        Scenario::Scale {
            providers,
            consumers,
            churn,
            registrar_sessions,
        } => {
            let options = scale::Options {
                providers,
                consumers,
                churn,
                registrar_sessions,
            };
            scale::run(zk, options).await
        }
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
