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

/// A `zoorpc-echo` process in a slot; SIGKILLed on drop.
struct EchoProcess {
    child: Child,
    /// The znode name, e.g. `provider0000000007`.
    node: String,
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a `zoorpc-echo` under `base` and waits for its `registered <node> <url>` line.
async fn start_echo(bin: &PathBuf, zk: &str, base: &str) -> Result<EchoProcess, String> {
    let mut cmd = Command::new(bin);
    cmd.args(["--zk", zk, "--base-path", base, "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = spawn_tied(cmd).map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err("no stdout from zoorpc-echo".to_owned());
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Reads every line (so the pipe never fills), forwarding them.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut process = EchoProcess {
        child,
        node: String::new(),
    };
    let registered = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = rx.recv().await {
            if let Some(rest) = line.strip_prefix("registered ") {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await;
    match registered {
        Ok(Some(path)) => {
            process.node = path.rsplit('/').next().unwrap_or(&path).to_owned();
            Ok(process)
        }
        Ok(None) => Err(format!(
            "{} exited before registering (its errors are above)",
            bin.display()
        )),
        Err(_) => Err(format!(
            "{} did not register within {START_TIMEOUT:?}",
            bin.display()
        )),
    }
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

/// The provider processes, by slot, and which slot every node ever started belongs to.
struct Fleet {
    bin: PathBuf,
    base: String,
    slots: Vec<Option<EchoProcess>>,
    /// Node name → slot, for every process ever started.
    node_slot: HashMap<String, usize>,
}

impl Fleet {
    /// One `zoorpc-echo` per slot, each registered.
    async fn start(bin: PathBuf, zk: &str, base: String) -> Result<Fleet, String> {
        let mut fleet = Fleet {
            bin,
            base,
            slots: Vec::with_capacity(PROVIDERS),
            node_slot: HashMap::new(),
        };
        for slot in 0..PROVIDERS {
            let process = start_echo(&fleet.bin, zk, &fleet.base).await?;
            fleet.node_slot.insert(process.node.clone(), slot);
            fleet.slots.push(Some(process));
        }
        Ok(fleet)
    }

    /// The killer: one provider in turn every `kill_every`, restarted after `down`, while a
    /// whole cycle fits before `end`. The marks, and how long each restart took to register.
    async fn kill_in_turn(
        &mut self,
        zk: &str,
        options: &Options,
        started: Instant,
        end: Instant,
    ) -> Result<(Vec<Mark>, Vec<Duration>), String> {
        let mut marks = Vec::new();
        let mut next_kill = started + options.kill_every;
        let mut victim = 0;
        let mut restarts = Vec::new();
        while next_kill + options.down < end {
            tokio::time::sleep_until(tokio::time::Instant::from_std(next_kill)).await;
            let slot = victim % PROVIDERS;
            victim += 1;
            if let Some(process) = self.slots[slot].take() {
                drop(process); // SIGKILL, reaped
            }
            marks.push(Mark::Kill {
                at: started.elapsed(),
                slot,
            });
            tokio::time::sleep(options.down).await;
            let asked = Instant::now();
            let process = start_echo(&self.bin, zk, &self.base).await?;
            restarts.push(asked.elapsed());
            self.node_slot.insert(process.node.clone(), slot);
            self.slots[slot] = Some(process);
            marks.push(Mark::Restart {
                at: started.elapsed(),
                slot,
            });
            next_kill += options.kill_every;
        }
        Ok((marks, restarts))
    }
}

/// What a run saw.
struct Run {
    /// From the start of the load until every caller and provider stopped.
    wall: Duration,
    calls: Vec<Call>,
    marks: Vec<Mark>,
    /// How long each restarted provider took to register.
    restarts: Vec<Duration>,
    node_slot: HashMap<String, usize>,
}

impl Run {
    fn failed(&self) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.outcome.is_err()).collect()
    }

    /// Prints the figures (and writes the plot to `plot_file`, if asked); the p99 latency.
    fn report(
        &self,
        zk: &str,
        options: &Options,
        plot_file: Option<std::fs::File>,
    ) -> Result<f64, String> {
        let (calls, failed) = (&self.calls, self.failed());
        let mut latencies: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
        let p50 = quantile_ms(&mut latencies, 0.5);
        let p99 = quantile_ms(&mut latencies, 0.99);
        let max = quantile_ms(&mut latencies, 1.0);
        let kills = self
            .marks
            .iter()
            .filter(|m| matches!(m, Mark::Kill { .. }))
            .count();
        println!(
            "failover: {PROVIDERS} zoorpc-echo processes, {} calls/s from {} callers for {:?}; \
             one SIGKILLed every {:?}, started again {:?} later ({kills} kills), ZooKeeper {zk}",
            options.rate, options.concurrency, options.duration, options.kill_every, options.down
        );
        println!(
            "calls {} ({:.0}/s), failed {}, latency p50 {p50:.3} ms p99 {p99:.3} ms max {max:.3} ms",
            calls.len(),
            calls.len() as f64 / self.wall.as_secs_f64(),
            failed.len()
        );
        if let Some(first) = failed.first() {
            println!(
                "first failure at {:.3} s: {}",
                first.at.as_secs_f64(),
                first.outcome.as_ref().err().map_or("", |e| e.as_str())
            );
        }
        if !self.restarts.is_empty() {
            let mut restarts = self.restarts.clone();
            println!(
                "a restarted provider registered after p50 {:.0} ms (process start to `registered`)",
                quantile_ms(&mut restarts, 0.5)
            );
        }
        if let (Some(path), Some(mut file)) = (&options.plot, plot_file) {
            let timeline = timeline(calls, &self.marks, &self.node_slot, options.duration);
            let title = format!(
                "failover: {} calls, {} failed, p99 {p99:.1} ms — one of {PROVIDERS} providers SIGKILLed every {:.1} s, restarted {:.1} s later",
                calls.len(),
                failed.len(),
                options.kill_every.as_secs_f64(),
                options.down.as_secs_f64()
            );
            file.write_all(timeline.svg(&title).as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            println!("timeline written to {}", path.display());
        }
        Ok(p99)
    }
}

/// Calls per 100 ms by the slot that answered, failures, latency; kill and restart marks.
fn timeline(
    calls: &[Call],
    marks: &[Mark],
    node_slot: &HashMap<String, usize>,
    duration: Duration,
) -> Timeline {
    let count = duration.as_millis().div_ceil(BUCKET.as_millis()) as usize;
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); count];
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|_| Bucket {
            per_slot: vec![0; PROVIDERS + 1],
            errors: 0,
            p99_ms: f64::NAN,
        })
        .collect();
    for call in calls {
        let i = (call.at.as_millis() / BUCKET.as_millis()) as usize;
        let Some(bucket) = buckets.get_mut(i) else {
            continue;
        };
        match &call.outcome {
            // Slot PROVIDERS: an answer from a node not started here (should not happen).
            Ok(node) => {
                bucket.per_slot[node_slot.get(node).copied().unwrap_or(PROVIDERS)] += 1;
            }
            Err(_) => bucket.errors += 1,
        }
        latencies[i].push(call.latency);
    }
    for (bucket, mut samples) in buckets.iter_mut().zip(latencies) {
        bucket.p99_ms = quantile_ms(&mut samples, 0.99);
    }
    Timeline {
        bucket: BUCKET,
        slots: PROVIDERS,
        buckets,
        marks: marks.to_vec(),
    }
}
