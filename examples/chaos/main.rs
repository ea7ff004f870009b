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
//! - `ha_job_runs`, `ha_job_runs_duplicated`, `ha_job_seqs_skipped`: the HA servers' job runs,
//!   seqs run twice, and seqs never run below the highest (a failover may skip one: the claim
//!   its master made before dying).
//!
//! `cargo run --release --example chaos -- --secs 600 [--seed N] [--only-ha]`; Ctrl-C ends the run early
//! (the fault under way is undone, the counts printed). The seed (printed) repeats the
//! sequence of faults; their timing depends on the machine.

mod faults;
mod fleet;
mod ha;
mod ha_faults;
mod probes;
mod tally;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use zoorpc::consumer::{CallPolicy, Consumer, ConsumerConfig};
use zoorpc::registry::{Discovery, Session, SessionConfig};
use zoorpc_testkit::ZkEnsemble;

use fleet::{Contender, Programs, ProviderSlot, RUN_ENV};
use tally::CallCounts;
use world::World;

/// Faults in a ZooKeeper ensemble, providers and master contenders, under calls.
#[derive(Parser, Debug)]
#[command(name = "chaos")]
struct Args {
    /// How long to inject faults, in seconds
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Seed of the fault sequence (default: from the clock; printed)
    #[arg(long)]
    seed: Option<u64>,
    /// Session timeout of the providers and contenders, in ms
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(400..=60_000))]
    session_timeout_ms: u64,
    /// Inject only the faults of the HA servers (see ha_faults.rs)
    #[arg(long)]
    only_ha: bool,
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
            std::process::exit(zoorpc::apps::proxy::run(ProxyCli::parse().args))
        }
        _ => {}
    }
    let args = Args::parse();
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
    // ZooKeeper's client warns at every connection a fault breaks: expected here, and they
    // would drown the fault lines (RUST_LOG overrides).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,zookeeper_client=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let seed = args.seed.unwrap_or_else(|| tally::now_ms() % 1_000_000);
    let session_timeout = Duration::from_millis(args.session_timeout_ms);
    println!(
        "chaos: {} s of faults, seed {seed} (repeat with --seed {seed}), session timeout {} ms",
        args.secs, args.session_timeout_ms
    );
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        let sigterm = async {
            match term.as_mut() {
                Ok(s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm => {}
        }
        println!("stopping: undoing the fault under way, then counting");
        stop_tx.send_replace(true);
    });

    let ensemble = tokio::task::spawn_blocking(|| ZkEnsemble::start(3))
        .await
        .map_err(|e| format!("starting the ensemble failed: {e}"))?
        .map_err(|e| format!("cannot start a 3-member ZooKeeper ensemble: {e}"))?;
    let connect = ensemble.connect_string();
    let members: Vec<SocketAddr> = connect
        .split(',')
        .map(|m| {
            m.parse()
                .map_err(|e| format!("bad member address {m}: {e}"))
        })
        .collect::<Result<_, String>>()?;
    println!("ensemble {connect}");
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let programs = Programs {
        exe,
        session_timeout,
    };
    let base = "/chaos/registry".to_owned();
    let election = "/chaos/master/services/Chaos:1.0.0".to_owned();

    let mut slots = Vec::with_capacity(PROVIDERS);
    for i in 0..PROVIDERS {
        let mut slot = ProviderSlot::new(i, &members).await?;
        slot.start(&programs, &base)?;
        slots.push(slot);
    }
    for slot in &mut slots {
        if let Some(process) = slot.process.as_mut() {
            tokio::task::block_in_place(|| process.wait_for_line("registered ", START_TIMEOUT))
                .map_err(|e| format!("{} did not register: {e}", slot.name))?;
        }
    }
    let mut contenders = Vec::with_capacity(CONTENDERS);
    for i in 0..CONTENDERS {
        contenders.push(Contender::start(i, &members, &programs, &election, JOB_INTERVAL).await?);
    }
    let watcher = Session::connect(SessionConfig::new(&connect))
        .await
        .map_err(|e| format!("cannot watch the registry: {e}"))?;
    let discovery = Discovery::watch(&watcher, &base)
        .await
        .map_err(|e| format!("cannot watch {base}: {e}"))?;
    let consumer = Arc::new(
        Consumer::connect_with(ConsumerConfig::new(&connect, &base))
            .await
            .map_err(|e| format!("cannot start the consumer: {e}"))?,
    );
    if !consumer
        .wait_until(START_TIMEOUT, |list| list.len() == PROVIDERS)
        .await
    {
        return Err(format!(
            "the consumer did not see {PROVIDERS} providers within {START_TIMEOUT:?}"
        ));
    }
    wait_for_a_master(&mut contenders).await?;
    let (probes_stop, probes_stopped) = watch::channel(false);
    let ha_path = "/chaos/master/services/HelloService:1.0.0";
    let ha = ha::HaFleet::start(&members, &programs, ha_path, probes_stopped).await?;

    let started = Instant::now();
    let (calls_stop, calls_stopped) = watch::channel(false);
    let idempotent = Arc::new(CallCounts::default());
    let default = Arc::new(CallCounts::default());
    let mut loops = Vec::new();
    for (policy, counts) in [
        (("idempotent", CallPolicy::IDEMPOTENT), &idempotent),
        (("idempotent", CallPolicy::IDEMPOTENT), &idempotent),
        (("default", CallPolicy::DEFAULT), &default),
    ] {
        loops.push(tally::call_loop(
            consumer.clone(),
            policy,
            CALL_PACE,
            counts.clone(),
            started,
            calls_stopped.clone(),
        ));
    }

    let mut world = World {
        started,
        rng: StdRng::seed_from_u64(seed),
        ensemble: Arc::new(Mutex::new(ensemble)),
        members,
        programs,
        base,
        last_fault_end: vec![Instant::now(); slots.len()],
        counted_lost: vec![false; slots.len()],
        slots,
        contenders,
        discovery,
        consumer,
        lost_registrations: 0,
        faults: 0,
        provider_exits: 0,
        contender_exits: 0,
        stop,
        ha,
        only_ha: args.only_ha,
    };
    let end = started + Duration::from_secs(args.secs);
    let mut error = None;
    while Instant::now() < end && !world.stopping() {
        let gap = Duration::from_millis(rand::Rng::random_range(&mut world.rng, 1_000..3_000));
        world.hold(gap.min(end - Instant::now()), true).await;
        if Instant::now() >= end || world.stopping() {
            break;
        }
        if let Err(e) = world.fault().await {
            error = Some(e);
            break;
        }
    }
    // The last fault's grace: every provider must be registered two session timeouts after it.
    println!(
        "{:>8.3}s faults over; checking for two session timeouts",
        world.t()
    );
    world
        .hold(session_timeout * 2 + Duration::from_millis(500), false)
        .await;

    calls_stop.send_replace(true);
    probes_stop.send_replace(true);
    for handle in loops {
        let _ = handle.await;
    }
    let (calls, failed) = idempotent.get();
    let (default_calls, default_failed) = default.get();

    // Contenders resign on SIGTERM; an interval still open ends when it was sent.
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
    let ha_summary = world.ha.summary(world.started);
    let summary = format!(
        "{{\"faults\":{},\"calls\":{calls},\"failed\":{failed},\"lost_registrations\":{},\"double_masters\":{},\"job_runs_duplicated\":{duplicated},\"default_calls\":{default_calls},\"default_failed\":{default_failed},\"master_intervals\":{},\"job_runs\":{job_runs},\"provider_exits\":{},\"contender_exits\":{},{ha_summary},\"seed\":{seed},\"secs\":{}}}",
        world.faults,
        world.lost_registrations,
        doubles.len(),
        intervals.len(),
        world.provider_exits,
        world.contender_exits,
        args.secs,
    );
    // Everything stops before the last line: clients, providers, contenders, then the ensemble.
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
    println!("{summary}");
    match error {
        Some(e) => Err(format!("the run stopped early: {e}")),
        None => Ok(()),
    }
}

/// Waits until one contender reports master.
async fn wait_for_a_master(contenders: &mut [Contender]) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if contenders.iter_mut().any(Contender::is_master) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!(
        "no contender became master within {START_TIMEOUT:?}: their lines: {:?}",
        contenders
            .iter_mut()
            .map(|c| c.process.drain_lines().to_vec())
            .collect::<Vec<_>>()
    ))
}
