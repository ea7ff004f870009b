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

use zoorpc::cli::{Flags, fail, or_exit};

const USAGE: &str = "usage: bench <scenario> [--zk HOST:PORT] [options]
  propagation [--rounds N (1 to 1000000, 200)]
  handover    [--rounds N (1 to 1000000, 200)]
  takeover    [--rounds N of each kind (1 to 1000, 20)] [--session-timeout-ms (1000 to 600000, 10000)]
              [--server-bin PATH (default: zoorpc-ha-server beside this program's directory)]
  qps         [--providers N (1 to 64, 3)] [--secs S (1 to 3600, 10)] [--concurrency C (1 to 4096, 32)]
  slow        [--secs S per phase (1 to 3600, 5)] [--concurrency C (1 to 4096, 16)] [--delay-ms D (1 to 1000, 2; the slow one 10x)]
  failover    [--secs S (1 to 3600, 20)] [--plot FILE.svg] [--rate CALLS/S (1 to 100000, 2000)]
              [--concurrency C (1 to 4096, 16)] [--kill-every-ms (200 to 600000, 3000)] [--down-ms (0 to 600000, 1000)]
              [--echo-bin PATH (default: zoorpc-echo beside this program's directory)]
  scale       [--providers P (1 to 100000, 1000)] [--consumers C (1 to 1000, 100)] [--churn N (0 to 100000, 100)]
              [--registrar-sessions N (1 to 64, 4)]";

/// Flags every scenario accepts.
const COMMON: &[&str] = &["zk"];

/// The flags of each scenario (besides [`COMMON`]).
const SCENARIOS: &[(&str, &[&str])] = &[
    ("propagation", &["rounds"]),
    ("handover", &["rounds"]),
    ("takeover", &["rounds", "session-timeout-ms", "server-bin"]),
    ("qps", &["providers", "secs", "concurrency"]),
    ("slow", &["secs", "concurrency", "delay-ms"]),
    (
        "failover",
        &[
            "secs",
            "plot",
            "rate",
            "concurrency",
            "kill-every-ms",
            "down-ms",
            "echo-bin",
        ],
    ),
    (
        "scale",
        &["providers", "consumers", "churn", "registrar-sessions"],
    ),
];

#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

/// The one place the ZooKeeper test harness (`zoorpc-testkit`) is used.
mod harness {
    pub use zoorpc_testkit::{ChildProcess, ZkServer, spawn_tied};
}

fn main() {
    zoorpc::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let scenario = match args.first() {
        Some(first) if !first.starts_with("--") => first.clone(),
        _ => fail(USAGE, "name a scenario first"),
    };
    let Some((_, own)) = SCENARIOS.iter().find(|(name, _)| *name == scenario) else {
        fail(USAGE, &format!("unknown scenario {scenario:?}"));
    };
    let known: Vec<&str> = COMMON.iter().chain(own.iter()).copied().collect();
    let flags = or_exit(USAGE, Flags::parse(args.into_iter().skip(1), &known));
    if let Some(extra) = flags.positional().first() {
        fail(USAGE, &format!("unexpected argument {extra:?}"));
    }
    // Every flag is read (and checked) before ZooKeeper starts: a bad one costs nothing.
    let run = or_exit(USAGE, Scenario::from_flags(&scenario, &flags));

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => fail(USAGE, &format!("cannot start the async runtime: {e}")),
    };
    // Keep our own ZooKeeper (if any) alive for the whole run.
    let own_zk;
    let zk = match flags.str("zk") {
        Some(zk) => zk.to_owned(),
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
    let result = runtime.block_on(async {
        match run {
            Scenario::Propagation { rounds } => propagation::run(&zk, rounds).await,
            Scenario::Handover { rounds } => handover::run(&zk, rounds).await,
            Scenario::Takeover(options) => takeover::run(&zk, options).await,
            Scenario::Qps(options) => qps::run(&zk, options).await,
            Scenario::Slow(options) => slow::run(&zk, options).await,
            Scenario::Failover(options) => failover::run(&zk, options).await,
            Scenario::Scale(options) => scale::run(&zk, options).await,
        }
    });
    // The scenario ran and failed (ZooKeeper, a provider): not a usage error.
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A scenario with its options, read from the flags.
enum Scenario {
    Propagation { rounds: usize },
    Handover { rounds: usize },
    Takeover(takeover::Options),
    Qps(qps::Options),
    Slow(slow::Options),
    Failover(failover::Options),
    Scale(scale::Options),
}

impl Scenario {
    fn from_flags(name: &str, flags: &Flags) -> Result<Scenario, String> {
        let secs = |default: u64| {
            flags
                .number("secs", default, 1..=3600)
                .map(Duration::from_secs)
        };
        Ok(match name {
            "propagation" => Scenario::Propagation {
                rounds: flags.number("rounds", 200usize, 1..=1_000_000)?,
            },
            "handover" => Scenario::Handover {
                rounds: flags.number("rounds", 200usize, 1..=1_000_000)?,
            },
            "takeover" => Scenario::Takeover(takeover::Options {
                rounds: flags.number("rounds", 20usize, 1..=1000)?,
                session_timeout: flags.millis("session-timeout-ms", 10_000, 1_000..=600_000)?,
                server_bin: flags.str("server-bin").map(Into::into),
            }),
            "qps" => Scenario::Qps(qps::Options {
                providers: flags.number("providers", 3usize, 1..=64)?,
                duration: secs(10)?,
                concurrency: flags.number("concurrency", 32usize, 1..=4096)?,
            }),
            "slow" => Scenario::Slow(slow::Options {
                duration: secs(5)?,
                concurrency: flags.number("concurrency", 16usize, 1..=4096)?,
                delay: flags.millis("delay-ms", 2, 1..=1000)?,
            }),
            "failover" => Scenario::Failover(failover::Options {
                duration: secs(20)?,
                plot: flags.str("plot").map(Into::into),
                rate: flags.number("rate", 2000u32, 1..=100_000)?,
                concurrency: flags.number("concurrency", 16usize, 1..=4096)?,
                kill_every: flags.millis("kill-every-ms", 3000, 200..=600_000)?,
                down: flags.millis("down-ms", 1000, 0..=600_000)?,
                echo_bin: flags.str("echo-bin").map(Into::into),
            }),
            "scale" => Scenario::Scale(scale::Options {
                providers: flags.number("providers", 1000usize, 1..=100_000)?,
                consumers: flags.number("consumers", 100usize, 1..=1000)?,
                churn: flags.number("churn", 100usize, 0..=100_000)?,
                registrar_sessions: flags.number("registrar-sessions", 4usize, 1..=64)?,
            }),
            other => return Err(format!("unknown scenario {other:?}")),
        })
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
