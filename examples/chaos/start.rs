//! Bringing the world up, in order: logging, the stop signal, the ensemble, the providers
//! (registered), the contenders (one of them master), the consumer (seeing every provider), the
//! HA servers, then the call loops. A step that fails ends the run with what did not come up.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zoorpc::consumer::{CallPolicy, Consumer, ConsumerConfig};
use zoorpc::registry::{Discovery, Session, SessionConfig};
use zoorpc_testkit::ZkEnsemble;

use crate::fleet::{Contender, Programs, ProviderSlot, wait_for_each};
use crate::ha::HaFleet;
use crate::tally::{self, CallCounts};
use crate::world::World;
use crate::{Args, CALL_PACE, CONTENDERS, JOB_INTERVAL, PROVIDERS, START_TIMEOUT};

/// The world, and what the end of the run needs besides.
pub struct Up {
    pub world: World,
    /// Our own session on the ensemble, the one the world's `discovery` runs in.
    pub watcher: Session,
    pub calls: CallLoops,
    /// Stops the call loops.
    pub calls_stop: watch::Sender<bool>,
    /// Stops the HA fleet's probers and client loops.
    pub probes_stop: watch::Sender<bool>,
}

/// Becomes `true` on Ctrl-C or SIGTERM.
pub fn stop_on_signal() -> watch::Receiver<bool> {
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
    stop
}

/// Starts everything under test and the loops calling it; the faults are drawn from `seed`.
pub async fn up(args: &Args, seed: u64, stop: watch::Receiver<bool>) -> Result<Up, String> {
    let (ensemble, connect, members) = ensemble().await?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let programs = Programs {
        exe,
        session_timeout: Duration::from_millis(args.session_timeout_ms),
    };
    let base = "/chaos/registry".to_owned();
    let election = "/chaos/master/services/Chaos:1.0.0".to_owned();
    let slots = providers(&members, &programs, &base).await?;
    let mut contenders = Vec::with_capacity(CONTENDERS);
    for i in 0..CONTENDERS {
        contenders.push(Contender::start(i, &members, &programs, &election, JOB_INTERVAL).await?);
    }
    let (watcher, discovery, consumer) = consumer(&connect, &base).await?;
    wait_for_a_master(&mut contenders).await?;
    let (probes_stop, probes_stopped) = watch::channel(false);
    let ha_path = "/chaos/master/services/HelloService:1.0.0";
    let ha = HaFleet::start(&members, &programs, ha_path, probes_stopped).await?;

    let started = Instant::now();
    let (calls_stop, calls_stopped) = watch::channel(false);
    let calls = CallLoops::start(&consumer, started, calls_stopped);
    let world = World {
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
    Ok(Up {
        world,
        watcher,
        calls,
        calls_stop,
        probes_stop,
    })
}

/// A 3-member ensemble: itself, its connect string and its members' addresses.
async fn ensemble() -> Result<(ZkEnsemble, String, Vec<SocketAddr>), String> {
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
    Ok((ensemble, connect, members))
}

/// The providers under `base`, each registered.
async fn providers(
    members: &[SocketAddr],
    programs: &Programs,
    base: &str,
) -> Result<Vec<ProviderSlot>, String> {
    let mut slots = Vec::with_capacity(PROVIDERS);
    for i in 0..PROVIDERS {
        let mut slot = ProviderSlot::new(i, members).await?;
        slot.start(programs, base)?;
        slots.push(slot);
    }
    wait_for_each(
        slots.iter_mut().map(|s| (&s.name, &mut s.process)),
        "registered ",
        "did not register",
    )?;
    Ok(slots)
}

/// Our watch of `base` (in a session of its own) and the consumer, once it sees every provider.
async fn consumer(
    connect: &str,
    base: &str,
) -> Result<(Session, Discovery, Arc<Consumer>), String> {
    let watcher = Session::connect(SessionConfig::new(connect))
        .await
        .map_err(|e| format!("cannot watch the registry: {e}"))?;
    let discovery = Discovery::watch(&watcher, base)
        .await
        .map_err(|e| format!("cannot watch {base}: {e}"))?;
    let consumer = Arc::new(
        Consumer::connect_with(ConsumerConfig::new(connect, base))
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
    Ok((watcher, discovery, consumer))
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

/// The call loops through the consumer: two idempotent, one with the default policy (which
/// does not retry a call that may have been processed), counted per policy.
pub struct CallLoops {
    handles: Vec<JoinHandle<()>>,
    idempotent: Arc<CallCounts>,
    default: Arc<CallCounts>,
}

impl CallLoops {
    fn start(consumer: &Arc<Consumer>, started: Instant, stopped: watch::Receiver<bool>) -> Self {
        let idempotent = Arc::new(CallCounts::default());
        let default = Arc::new(CallCounts::default());
        let mut handles = Vec::new();
        for (policy, counts) in [
            (("idempotent", CallPolicy::IDEMPOTENT), &idempotent),
            (("idempotent", CallPolicy::IDEMPOTENT), &idempotent),
            (("default", CallPolicy::DEFAULT), &default),
        ] {
            handles.push(tally::call_loop(
                consumer.clone(),
                policy,
                CALL_PACE,
                counts.clone(),
                started,
                stopped.clone(),
            ));
        }
        CallLoops {
            handles,
            idempotent,
            default,
        }
    }

    /// Waits for the loops to end (the caller stopped them): the idempotent loops' (calls,
    /// failed), then the default loop's.
    pub async fn finish(self) -> ((u64, u64), (u64, u64)) {
        for handle in self.handles {
            let _ = handle.await;
        }
        (self.idempotent.get(), self.default.get())
    }
}
