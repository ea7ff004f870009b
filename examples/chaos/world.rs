//! The world under test and the watch kept on it between and during faults: which provider is
//! healthy and since when, and whether every healthy provider is registered (checked every
//! 100 ms against a ZooKeeper watch of the base path).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use tokio::sync::watch;
use zoorpc::consumer::Consumer;
use zoorpc::registry::{Discovery, ProviderNode};
use zoorpc_testkit::ZkEnsemble;

use crate::fleet::{Contender, Programs, ProviderSlot};
use crate::ha::HaFleet;

/// How often registrations and processes are checked.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Everything the run started, and the counts kept while it runs.
pub struct World {
    /// When the call loops started (the time printed on every line).
    pub started: Instant,
    /// The seeded generator every fault is drawn from.
    pub rng: StdRng,
    /// The 3-member ensemble (its members are killed and restarted from blocking tasks).
    pub ensemble: Arc<Mutex<ZkEnsemble>>,
    /// The members' client addresses.
    pub members: Vec<SocketAddr>,
    /// How the providers and contenders are started.
    pub programs: Programs,
    /// The providers' base path.
    pub base: String,
    /// The providers.
    pub slots: Vec<ProviderSlot>,
    /// The election contenders.
    pub contenders: Vec<Contender>,
    /// The registry as ZooKeeper has it (a session of our own on the ensemble).
    pub discovery: Discovery,
    /// The consumer the call loops call through (its session is a fault's target).
    pub consumer: Arc<Consumer>,
    /// Per provider slot: when its last fault ended (its own, or one of ZooKeeper's).
    pub last_fault_end: Vec<Instant>,
    /// Per provider slot: already counted as lost since its last fault.
    pub counted_lost: Vec<bool>,
    /// Healthy providers found unregistered past their grace.
    pub lost_registrations: u64,
    /// Faults injected.
    pub faults: u64,
    /// Providers and contenders that exited on their own (started again).
    pub provider_exits: u64,
    /// Contenders that exited on their own (started again).
    pub contender_exits: u64,
    /// Set on Ctrl-C or SIGTERM.
    pub stop: watch::Receiver<bool>,
    /// The HA servers and their clients.
    pub ha: HaFleet,
    /// Inject HA faults only (`--only-ha`).
    pub only_ha: bool,
}

impl World {
    /// Seconds since the start, for the printed lines.
    pub fn t(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Whether Ctrl-C or SIGTERM asked to stop.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Marks a fault on provider `slot` (begun or ended now): its grace starts again.
    pub fn touch(&mut self, slot: usize) {
        self.last_fault_end[slot] = Instant::now();
        self.counted_lost[slot] = false;
    }

    /// Marks a fault on every provider (ZooKeeper itself was hit).
    pub fn touch_all(&mut self) {
        for slot in 0..self.slots.len() {
            self.touch(slot);
        }
    }

    /// Waits `d` (less if asked to stop, when `interruptible`), checking all along.
    pub async fn hold(&mut self, d: Duration, interruptible: bool) {
        let until = Instant::now() + d;
        loop {
            self.check();
            let now = Instant::now();
            if now >= until || (interruptible && self.stopping()) {
                return;
            }
            let step = CHECK_EVERY.min(until - now);
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = stop.wait_for(|s| *s), if interruptible => {}
            }
        }
    }

    /// One check: processes that exited on their own are counted and started again; a healthy
    /// provider not registered two session timeouts after its last fault is a lost registration
    /// (counted once until its next fault).
    pub fn check(&mut self) {
        let registered = self.discovery.providers();
        for slot in 0..self.slots.len() {
            if self.restart_provider_if_exited(slot) {
                continue;
            }
            self.check_registered(slot, &registered);
        }
        let (programs, t) = (self.programs.clone(), self.t());
        self.ha.restart_exited(&programs, t);
        for i in 0..self.contenders.len() {
            if self.contenders[i].process.has_exited() {
                self.contender_exits += 1;
                println!(
                    "{:>8.3}s {} exited on its own; starting it again",
                    self.t(),
                    self.contenders[i].name
                );
                let programs = self.programs.clone();
                if let Err(e) = self.contenders[i].restart(&programs) {
                    println!(
                        "{:>8.3}s cannot start {}: {e}",
                        self.t(),
                        self.contenders[i].name
                    );
                }
            }
        }
    }

    /// Provider `slot` exited on its own: counted and started again (`true`); `false` if it
    /// runs (or is down by a fault).
    fn restart_provider_if_exited(&mut self, slot: usize) -> bool {
        let exited = self.slots[slot]
            .process
            .as_mut()
            .is_some_and(|p| p.has_exited());
        if !exited {
            return false;
        }
        self.provider_exits += 1;
        println!(
            "{:>8.3}s {} exited on its own; starting it again",
            self.t(),
            self.slots[slot].name
        );
        let (programs, base) = (self.programs.clone(), self.base.clone());
        if let Err(e) = self.slots[slot].start(&programs, &base) {
            println!(
                "{:>8.3}s cannot start {}: {e}",
                self.t(),
                self.slots[slot].name
            );
        }
        self.touch(slot);
        true
    }

    /// Counts provider `slot` as a lost registration if it is healthy, past its grace (two
    /// session timeouts after its last fault), not counted yet, and not in `registered`.
    fn check_registered(&mut self, slot: usize, registered: &[ProviderNode]) {
        let grace = self.programs.session_timeout * 2;
        if !self.slots[slot].healthy() || self.counted_lost[slot] {
            return;
        }
        if self.last_fault_end[slot].elapsed() < grace {
            return;
        }
        let url = &self.slots[slot].url;
        let present = registered.iter().any(|p| {
            let u = p.url.as_str();
            u == url
                || u.strip_prefix(url.as_str())
                    .is_some_and(|r| r.starts_with('?'))
        });
        if !present {
            self.lost_registrations += 1;
            self.counted_lost[slot] = true;
            println!(
                "{:>8.3}s LOST REGISTRATION: {} ({url}) is healthy but not registered {:.1}s after its last fault",
                self.t(),
                self.slots[slot].name,
                self.last_fault_end[slot].elapsed().as_secs_f64()
            );
        }
    }
}
