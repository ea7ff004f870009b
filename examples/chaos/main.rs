//! `chaos`: a 3-member ZooKeeper ensemble, 3 providers, 2 election contenders running a
//! master-only job, and 2 HA servers (`zoorpc-ha-server`) with a master-only job of their own,
//! all real processes; a steady call loop through the library's consumer, a prober calling each
//! HA server at its own address, a `MasterClient` loop and a loop through `zoorpc proxy
//! --master`; and every few seconds one random fault (see `faults.rs`: SIGKILL or SIGSTOP a
//! provider, kill and restart a ZooKeeper member or its leader, expire or partition a
//! provider's or a contender's session, expire the consumer's; and `ha_faults.rs`: SIGSTOP the
//! HA master under and over its session timeout, SIGKILL or SIGTERM it, starve it of CPU, delete
//! its node, also while it is stopped). Each fault is printed as it happens; the last line is one
//! JSON object:
//!
//! `{"faults":N,"calls":N,"failed":N,"lost_registrations":N,"double_masters":N,"job_runs_duplicated":N,...,"overlapping_masters":N,"liveness_misses":N,...}`
//!
//! - `calls`, `failed`: `SayHello` through `Consumer::say_hello_with(CallPolicy::IDEMPOTENT)`
//!   (it is idempotent); `default_calls`, `default_failed` (after the six): the same with
//!   `CallPolicy::DEFAULT`, which does not retry a call that may have been processed, so a
//!   provider paused or killed under a call fails it;
//! - `lost_registrations`: a live, healthy (running, not paused, not cut off) provider not
//!   registered two session timeouts after its last fault (its own, or one of ZooKeeper's);
//!   checked every 100 ms while the run lasts and for two session timeouts after the last fault;
//! - `double_masters`: master intervals of different contenders overlapping by wall clock (each
//!   contender stamps its `role` lines with the instant it adopted the role);
//! - `job_runs_duplicated`: job run numbers claimed more than once.
//! - `overlapping_masters`: answers of an HA server, called at its own address, under an epoch
//!   older than one another server had already answered under (see `probes.rs`): proof that two
//!   servers served as master over overlapping time;
//! - `liveness_misses`: faults after whose end no HA server answered as master within the
//!   session timeout and a second;
//! - `master_client_calls`/`_failed`, `proxy_master_calls`/`_failed`: idempotent calls through
//!   a `MasterClient` and through `zoorpc proxy --master --idempotent`;
//! - `ha_job_runs`, `ha_job_runs_duplicated`, `ha_job_seqs_skipped`,
//!   `ha_job_seqs_skipped_by_one_master`: the HA servers' job runs, seqs run twice, seqs never
//!   run at a change of master (the claim of a master deposed or dead before it started the
//!   run: jobs run at most once, so a failover may skip one), and seqs never run between two runs
//!   of one epoch (one master skipping its own claim: a defect, since a master that claimed a
//!   run and did not start it runs it when master again under the same epoch).
//!
//! The line before the JSON says `zeros: yes` when every count that must be zero is: `failed`,
//! `lost_registrations`, `double_masters`, `job_runs_duplicated`, `overlapping_masters`,
//! `liveness_misses`, `master_client_failed`, `proxy_master_failed`, `ha_job_runs_duplicated`,
//! `ha_job_seqs_skipped_by_one_master`; else `zeros: NO (...)` naming those that are not. Not
//! counted: `default_failed` (that policy does not retry a call that may have been processed)
//! and `ha_job_seqs_skipped` (at most once by design; listed on a line of their own).
//!
//! `cargo run --release --example chaos -- --secs 600 [--seed N] [--only-ha]`; Ctrl-C ends the run early
//! (the fault under way is undone, the counts printed). The seed (printed) repeats the
//! sequence of faults; their timing depends on the machine.

mod faults;
mod fleet;
mod ha;
mod ha_faults;
mod probes;
mod start;
mod tally;
mod world;

use std::time::{Duration, Instant};

use clap::Parser;
use zoorpc::cli::number;

use fleet::RUN_ENV;
use world::World;

/// Faults in a ZooKeeper ensemble, providers and master contenders, under calls.
#[derive(Parser, Debug)]
#[command(name = "chaos")]
struct Args {
    /// How long to inject faults, in seconds
    #[arg(long, value_name = "N", default_value = "60", value_parser = number(1..=u64::MAX))]
    secs: u64,
    /// Seed of the fault sequence (default: from the clock; printed)
    #[arg(long, value_name = "N", value_parser = number(0..=u64::MAX))]
    seed: Option<u64>,
    /// Session timeout of the providers and contenders, in ms
    #[arg(long, value_name = "MS", default_value = "2000", value_parser = number(400..=60_000u64))]
    session_timeout_ms: u64,
    /// Inject only the faults of the HA servers (see ha_faults.rs)
    #[arg(long)]
    only_ha: bool,
    /// How much to log.
    #[command(flatten)]
    log: zoorpc::apps::LogArgs,
}

/// `zoorpc proxy`'s flags, for this executable re-run as the proxy.
#[derive(Parser, Debug)]
struct ProxyCli {
    #[command(flatten)]
    args: zoorpc::apps::proxy::ProxyArgs,
}

const PROVIDERS: usize = 3;
const CONTENDERS: usize = 2;
const JOB_INTERVAL: Duration = Duration::from_millis(200);
/// Pause between two calls of one call loop.
const CALL_PACE: Duration = Duration::from_millis(5);
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    // Re-run as one of the programs under test.
    match std::env::var(RUN_ENV).as_deref() {
        Ok("provider") => zoorpc::apps::provider::main(),
        Ok("master-job") => zoorpc::apps::master_job::main(),
        Ok("ha-server") => zoorpc::apps::ha_server::main(),
        Ok("proxy") => {
            zoorpc::init_logging();
            std::process::exit(zoorpc::apps::proxy::run(
                zoorpc::cli::parse::<ProxyCli>().args,
            ))
        }
        _ => {}
    }
    let args: Args = zoorpc::cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let status = match runtime.block_on(run(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    std::process::exit(status);
}

async fn run(args: Args) -> Result<(), String> {
    // The ZooKeeper client's own reconnect noise is the faults injected, not news.
    args.log.init("warn,zookeeper_client=error");
    let seed = args.seed.unwrap_or_else(|| tally::now_ms() % 1_000_000);
    println!(
        "chaos: {} s of faults, seed {seed} (repeat with --seed {seed}), session timeout {} ms",
        args.secs, args.session_timeout_ms
    );
    let stop = start::stop_on_signal();
    let start::Up {
        mut world,
        watcher,
        calls,
        calls_stop,
        probes_stop,
    } = start::up(&args, seed, stop).await?;
    let error = inject_faults(&mut world, Duration::from_secs(args.secs)).await;
    // The last fault's grace: every provider must be registered two session timeouts after it.
    println!(
        "{:>8.3}s faults over; checking for two session timeouts",
        world.t()
    );
    world
        .hold(
            world.programs.session_timeout * 2 + Duration::from_millis(500),
            false,
        )
        .await;

    calls_stop.send_replace(true);
    probes_stop.send_replace(true);
    let summary = summary(&mut world, calls.finish().await, seed, args.secs);
    shut_down(world, watcher).await;
    println!("{summary}");
    match error {
        Some(e) => Err(format!("the run stopped early: {e}")),
        None => Ok(()),
    }
}

/// One random fault every one to three seconds for `secs` (or until a stop signal); the
/// error that ended it early, if one did.
async fn inject_faults(world: &mut World, secs: Duration) -> Option<String> {
    let end = world.started + secs;
    while Instant::now() < end && !world.stopping() {
        let gap = Duration::from_millis(rand::Rng::random_range(&mut world.rng, 1_000..3_000));
        world.hold(gap.min(end - Instant::now()), true).await;
        if Instant::now() >= end || world.stopping() {
            break;
        }
        if let Err(e) = world.fault().await {
            return Some(e);
        }
    }
    None
}

/// Stops the contenders (they resign on SIGTERM) and counts: the last line, one JSON object.
/// `calls`: the idempotent and the default loops' (calls, failed).
fn summary(world: &mut World, calls: ((u64, u64), (u64, u64)), seed: u64, secs: u64) -> String {
    let ((calls, failed), (default_calls, default_failed)) = calls;
    // An interval still open ends when the SIGTERM was sent.
    let mut intervals = Vec::new();
    let mut run_lines = Vec::new();
    for (i, contender) in world.contenders.iter_mut().enumerate() {
        let ended = tally::now_ms();
        let _ = contender.process.signal(libc::SIGTERM);
        let _ =
            tokio::task::block_in_place(|| contender.process.wait_exit(Duration::from_secs(10)));
        let lines = contender.process.drain_lines().to_vec();
        intervals.extend(contender.past.iter().copied());
        intervals.extend(tally::master_intervals(i, &lines, ended));
        run_lines.extend(contender.past_runs.iter().cloned());
        run_lines.extend(lines.into_iter().filter(|l| l.starts_with("run ")));
    }
    let doubles = tally::double_masters(&intervals);
    for (a, b) in &doubles {
        println!(
            "DOUBLE MASTER: contender-{} became master at {} ms while contender-{} was master ({}..{})",
            b.contender, b.start, a.contender, a.start, a.end
        );
    }
    let (job_runs, duplicated, twice) = tally::job_runs(run_lines.iter());
    if !twice.is_empty() {
        println!("JOB RUNS CLAIMED TWICE: seq {twice:?}");
    }
    let (ha_summary, ha_zeros) = world.ha.summary(world.started);
    let mut zeros = vec![
        ("failed", failed),
        ("lost_registrations", world.lost_registrations),
        ("double_masters", doubles.len() as u64),
        ("job_runs_duplicated", duplicated),
    ];
    zeros.extend(ha_zeros);
    println!("{}", verdict(&zeros));
    format!(
        "{{\"faults\":{},\"calls\":{calls},\"failed\":{failed},\"lost_registrations\":{},\"double_masters\":{},\"job_runs_duplicated\":{duplicated},\"default_calls\":{default_calls},\"default_failed\":{default_failed},\"master_intervals\":{},\"job_runs\":{job_runs},\"provider_exits\":{},\"contender_exits\":{},{ha_summary},\"seed\":{seed},\"secs\":{secs}}}",
        world.faults,
        world.lost_registrations,
        doubles.len(),
        intervals.len(),
        world.provider_exits,
        world.contender_exits,
    )
}

/// The line before the JSON: whether every count that must be zero is (`zeros: yes`), else which
/// are not. Not counted: `default_failed` (that policy does not retry a call that may have been
/// processed, so a provider killed under a call fails it) and HA job seqs skipped at a change of
/// master (at most once by design).
fn verdict(zeros: &[(&str, u64)]) -> String {
    let missed: Vec<String> = zeros
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    if missed.is_empty() {
        let names: Vec<&str> = zeros.iter().map(|(name, _)| *name).collect();
        format!("zeros: yes ({} all 0)", names.join(", "))
    } else {
        format!("zeros: NO ({})", missed.join(", "))
    }
}

/// Stops everything before the last line: clients, providers, contenders, then the ensemble.
async fn shut_down(world: World, watcher: zoorpc::registry::Session) {
    let World {
        slots,
        contenders,
        ensemble,
        discovery,
        consumer,
        ha,
        ..
    } = world;
    let _ = ha.finish().await;
    drop(consumer);
    drop(discovery);
    drop(watcher);
    drop(slots);
    drop(contenders);
    let _ = tokio::task::spawn_blocking(move || drop(ensemble)).await;
}
