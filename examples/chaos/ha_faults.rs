//! Faults of the HA servers, aimed at the master (the holder the master node names):
//!
//! - `ha-stop`: paused (SIGSTOP) for 0.2–0.8 session timeouts (its session survives), then
//!   continued;
//! - `ha-stop-long`: paused for 1.05–1.6 session timeouts (its session expires and a standby
//!   takes over while it is stopped; on SIGCONT it must not answer as master);
//! - `ha-kill`: SIGKILLed, started again 0.5–2 s later on the same port;
//! - `ha-term`: SIGTERM (a graceful hand-over), started again 0.5–1 s later;
//! - `ha-starve`: starved of CPU for 1–3 s (stopped 40–150 ms, run 5–20 ms, over and over);
//! - `ha-delete`: an operator deletes the master node; half of the time while its holder is
//!   stopped for 300 ms (it hears of the delete only after the others did).
//!
//! After every fault (of any kind) a server must answer as master within the session timeout
//! and a second of the fault's end; a miss is counted (`liveness_misses`).

use std::time::{Duration, Instant};

use rand::Rng;

use crate::world::World;

/// The HA fault kinds, picked with equal odds.
pub const HA_KINDS: [&str; 6] = [
    "ha-stop",
    "ha-stop-long",
    "ha-kill",
    "ha-term",
    "ha-starve",
    "ha-delete",
];

impl World {
    /// Injects, holds and undoes one HA fault of `kind`.
    pub async fn ha_fault(&mut self, kind: &str) -> Result<(), String> {
        let timeout = self.programs.session_timeout;
        let Some(master) = self.ha.master().await else {
            self.announce(kind, "nobody (no master now)", Duration::ZERO);
            return Ok(());
        };
        let name = self.ha.slots[master].name.clone();
        let timeout_ms = timeout.as_millis() as u64;
        match kind {
            "ha-stop" | "ha-stop-long" => {
                let paused = if kind == "ha-stop" {
                    self.ms(timeout_ms / 5..timeout_ms * 4 / 5)
                } else {
                    self.ms(timeout_ms * 21 / 20..timeout_ms * 8 / 5)
                };
                self.announce(kind, &name, paused);
                self.pause_ha(master, true)?;
                self.hold(paused, false).await;
                self.pause_ha(master, false)?;
            }
            "ha-kill" | "ha-term" => self.stop_ha(kind, master, &name).await?,
            "ha-starve" => {
                let held = self.ms(1_000..3_000);
                self.announce(kind, &name, held);
                let until = Instant::now() + held;
                while Instant::now() < until {
                    let stopped = self.ms(40..150);
                    let running = self.ms(5..20);
                    self.pause_ha(master, true)?;
                    self.hold(stopped, false).await;
                    self.pause_ha(master, false)?;
                    self.hold(running, false).await;
                }
            }
            _ => self.delete_master_node(kind, master, &name).await?,
        }
        Ok(())
    }

    /// `ha-kill` (SIGKILL, down 0.5–2 s) or `ha-term` (SIGTERM, down 0.5–1 s) of HA server
    /// `master`, then started again on its port.
    async fn stop_ha(&mut self, kind: &str, master: usize, name: &str) -> Result<(), String> {
        let down = if kind == "ha-kill" {
            self.ms(500..2_000)
        } else {
            self.ms(500..1_000)
        };
        self.announce(kind, name, down);
        // Out of its slot while down: not "exited on its own".
        let process = self.ha.slots[master].process.take();
        if let Some(process) = &process {
            let signal = if kind == "ha-kill" {
                libc::SIGKILL
            } else {
                libc::SIGTERM
            };
            let _ = process.signal(signal);
        }
        self.hold(down, false).await;
        if let Some(mut process) = process {
            process.kill();
            self.ha.slots[master].keep_runs(&mut process);
        }
        let (programs, path) = (self.programs.clone(), self.ha.path.clone());
        self.ha.slots[master].start(&programs, &path)
    }

    /// `ha-delete`: an operator deletes the master node of HA server `master`; half of the time
    /// while it is stopped for 300 ms.
    async fn delete_master_node(
        &mut self,
        kind: &str,
        master: usize,
        name: &str,
    ) -> Result<(), String> {
        let stall = self.rng.random_bool(0.5);
        let what = if stall {
            format!("the node of {name}, which is stopped for 0.3 s")
        } else {
            format!("the node of {name}")
        };
        self.announce(kind, &what, Duration::ZERO);
        if stall {
            self.pause_ha(master, true)?;
        }
        let deleted = self.ha.operator.client().delete(&self.ha.path, None).await;
        if stall {
            self.hold(Duration::from_millis(300), false).await;
            self.pause_ha(master, false)?;
        }
        if let Err(e) = deleted {
            println!("{:>8.3}s the delete failed: {e}", self.t());
        }
        Ok(())
    }

    /// After a fault ended at `ended`: waits for a server to answer as master, at most the
    /// session timeout and a second; counts a miss.
    pub async fn check_liveness(&mut self, ended: Instant) {
        let bound = self.programs.session_timeout + Duration::from_secs(1);
        while ended.elapsed() < bound {
            if self.ha.probes.answered_since(ended) {
                return;
            }
            self.hold(Duration::from_millis(20), false).await;
        }
        if !self.ha.probes.answered_since(ended) {
            self.ha.liveness_misses += 1;
            println!(
                "{:>8.3}s NO MASTER SERVING {:.1}s after the fault ended",
                self.t(),
                bound.as_secs_f64()
            );
        }
    }

    /// SIGSTOPs (`stop`) or continues HA server `slot`.
    fn pause_ha(&self, slot: usize, stop: bool) -> Result<(), String> {
        let Some(process) = &self.ha.slots[slot].process else {
            return Ok(());
        };
        let done = if stop {
            process.pause()
        } else {
            process.resume()
        };
        done.map_err(|e| format!("cannot pause or continue {}: {e}", self.ha.slots[slot].name))
    }
}
