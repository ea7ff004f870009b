//! `failover`: what a crash does to a loaded service. Three `zoorpc-echo` provider processes
//! under steady, paced load through `consumer.channel_with(CallPolicy::IDEMPOTENT)` (`Say` is
//! idempotent); every `--kill-every-ms` one of them (in turn) is SIGKILLed and, `--down-ms`
//! later, started again (a new process: new port, new node). Its old node stays in ZooKeeper
//! until its session times out, so the consumer meets the dead address: the never-sent and the
//! broken calls must go elsewhere. Counts every call; `--plot FILE.svg` writes a timeline.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use zoorpc::apps::echo::EchoClient;
use zoorpc::consumer::{Answered, CallPolicy, Consumer, ConsumerConfig};

use crate::harness::spawn_tied;
use crate::load::{remove_base, request};
use crate::plot::{Bucket, Mark, Timeline};
use zoorpc::cli::{file_name, millis, number};

use crate::{json_num, quantile_ms, seconds, sibling_binary};

mod fleet;
mod record;

use fleet::Fleet;
use record::Run;

/// `failover` options.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Measured seconds (1 to 3600)
    #[arg(long = "secs", value_name = "S", default_value = "20", value_parser = seconds(1..=3600))]
    pub duration: Duration,
    /// Write an SVG timeline here
    #[arg(long, value_name = "FILE.svg", value_parser = file_name)]
    pub plot: Option<PathBuf>,
    /// Calls per second, all callers together (1 to 100000)
    #[arg(long, value_name = "CALLS/S", default_value = "2000", value_parser = number(1..=100_000u32))]
    pub rate: u32,
    /// Calls in flight (1 to 4096)
    #[arg(long, value_name = "C", default_value = "16", value_parser = number(1..=4096usize))]
    pub concurrency: usize,
    /// A provider is killed this often, in milliseconds (200 to 600000)
    #[arg(long = "kill-every-ms", value_name = "MS", default_value = "3000", value_parser = millis(200..=600_000))]
    pub kill_every: Duration,
    /// How long a killed provider stays down before it is started again, in milliseconds (0 to
    /// 600000)
    #[arg(long = "down-ms", value_name = "MS", default_value = "1000", value_parser = millis(0..=600_000))]
    pub down: Duration,
    /// Where zoorpc-echo is [default: beside this program's directory]
    #[arg(long, value_name = "PATH", value_parser = file_name)]
    pub echo_bin: Option<PathBuf>,
}

const PROVIDERS: usize = 3;

const BUCKET: Duration = Duration::from_millis(100);

/// How long a started provider may take to print `registered`.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// One call: when it started (since the load began), how long it took, who answered (the
/// provider slot) or why it failed.
struct Call {
    at: Duration,
    latency: Duration,
    outcome: Result<String, String>,
}

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let bin = sibling_binary(options.echo_bin.as_ref(), "zoorpc-echo")?;
    // Opened first: an unwritable path should not cost a whole run.
    let plot_file = match &options.plot {
        Some(path) => Some(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot write the plot to {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let base = format!("/zoorpc-bench/failover-{}", std::process::id());
    let mut fleet = Fleet::start(bin, zk, base).await?;
    let consumer = Consumer::connect_with(ConsumerConfig::new(zk, &fleet.base))
        .await
        .map_err(|e| e.to_string())?;
    crate::load::wait_for_providers(&consumer, PROVIDERS).await?;
    let client = EchoClient::new(consumer.channel_with(CallPolicy::IDEMPOTENT));

    let started = Instant::now();
    let end = started + options.duration;
    let mut callers = start_callers(&client, &options, started, end);
    let (marks, restarts) = fleet.kill_in_turn(zk, &options, started, end).await?;
    let mut calls: Vec<Call> = Vec::new();
    while let Some(done) = callers.join_next().await {
        calls.extend(done.map_err(|e| format!("a caller task failed: {e}"))?);
    }
    drop(client);
    let Fleet {
        slots, node_slot, ..
    } = fleet;
    drop(slots);
    let run = Run {
        wall: started.elapsed(),
        calls,
        marks,
        restarts,
        node_slot,
    };
    let p99 = run.report(zk, &options, plot_file)?;
    remove_base(&consumer).await;
    println!(
        "{{\"scenario\":\"failover\",\"calls\":{},\"failed\":{},\"p99_ms\":{}}}",
        run.calls.len(),
        run.failed().len(),
        json_num(p99)
    );
    Ok(())
}

/// `options.concurrency` callers, paced to `options.rate` calls per second together, from
/// `started` until `end`; each returns its calls.
fn start_callers(
    client: &EchoClient<zoorpc::consumer::BalancedChannel>,
    options: &Options,
    started: Instant,
    end: Instant,
) -> tokio::task::JoinSet<Vec<Call>> {
    let concurrency = options.concurrency;
    let pause = Duration::from_secs_f64(concurrency as f64 / f64::from(options.rate));
    let mut callers = tokio::task::JoinSet::new();
    for i in 0..concurrency {
        let mut client = client.clone();
        callers.spawn(async move {
            // Spread the callers over one pause so the load is even.
            let first = tokio::time::Instant::from_std(started)
                + pause.mul_f64(i as f64 / concurrency as f64);
            let mut ticker = tokio::time::interval_at(first, pause);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut calls = Vec::new();
            loop {
                ticker.tick().await;
                let t = Instant::now();
                if t >= end {
                    return calls;
                }
                let outcome = match client.say(request()).await {
                    Ok(reply) => Ok(reply
                        .extensions()
                        .get::<Answered>()
                        .map(|a| a.node.to_string())
                        .unwrap_or_default()),
                    Err(status) => Err(format!("{}: {}", status.code(), status.message())),
                };
                calls.push(Call {
                    at: t - started,
                    latency: t.elapsed(),
                    outcome,
                });
            }
        });
    }
    callers
}
