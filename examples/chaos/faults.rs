//! The faults, one at a time: each is injected, held for a random while (the world is checked
//! all along) and undone before the next, so at most one provider is ever down and the
//! ensemble never loses more than one member.
//!
//! - `sigkill`: a provider is SIGKILLed and, 1–3 s later, started again on the same port (its
//!   old node stays until its session expires);
//! - `sigstop`: a provider is paused (SIGSTOP) for 0.5 s to 1.5 session timeouts (past one
//!   timeout its session expires under it), then continued;
//! - `zk-kill`: a ZooKeeper member (the leader half of the time) is SIGKILLed and restarted
//!   1–4 s later;
//! - `expire`: a provider's or a contender's session is expired: its proxies drop every packet
//!   until ZooKeeper has expired the session (one session timeout and a second more), as the
//!   partition tests do with a process we cannot join the session of;
//! - `partition`: a provider or the master is cut off from ZooKeeper for 0.2–1.2 session
//!   timeouts (mostly shorter than the session: it comes back in the same session);
//! - `expire-consumer`: the calling consumer's own session (in this process) is expired at once
//!   by the harness's `expire_session` (a second client joins it with its id and password and
//!   closes it); the consumer must keep its list, open a new session and follow on.

use std::time::Duration;

use rand::Rng;

use crate::world::World;

/// The kinds of fault, picked with equal odds.
const KINDS: [&str; 6] = [
    "sigkill",
    "sigstop",
    "zk-kill",
    "expire",
    "partition",
    "expire-consumer",
];

/// Who a session fault is aimed at.
enum Target {
    Provider(usize),
    Contender(usize),
}

impl World {
    /// Picks one fault (an HA one only, with `--only-ha`), injects it, holds it and undoes it;
    /// then checks that a master serves within the session timeout and a second.
    pub async fn fault(&mut self) -> Result<(), String> {
        self.faults += 1;
        let ha = crate::ha_faults::HA_KINDS;
        let pick = if self.only_ha {
            self.rng.random_range(KINDS.len()..KINDS.len() + ha.len())
        } else {
            self.rng.random_range(0..KINDS.len() + ha.len())
        };
        match pick.checked_sub(KINDS.len()) {
            Some(i) => self.ha_fault(ha[i]).await?,
            None => self.other_fault(KINDS[pick]).await?,
        }
        self.check_liveness(std::time::Instant::now()).await;
        Ok(())
    }

    /// Injects, holds and undoes one fault of the registry's side or of ZooKeeper.
    async fn other_fault(&mut self, kind: &str) -> Result<(), String> {
        let timeout = self.programs.session_timeout;
        match kind {
            "sigkill" => self.sigkill_provider(kind).await?,
            "sigstop" => self.sigstop_provider(kind).await?,
            "zk-kill" => self.kill_member(kind).await?,
            "expire" => {
                let target = self.session_target(false);
                let held = timeout + Duration::from_secs(1);
                self.cut(kind, target, held).await;
            }
            "expire-consumer" => self.expire_consumer(kind).await?,
            _ => {
                let target = self.session_target(true);
                let held =
                    self.ms(timeout.as_millis() as u64 / 5..timeout.as_millis() as u64 * 6 / 5);
                self.cut(kind, target, held).await;
            }
        }
        Ok(())
    }

    /// `sigkill`: a random provider, started again on its port 1–3 s later.
    async fn sigkill_provider(&mut self, kind: &str) -> Result<(), String> {
        let slot = self.rng.random_range(0..self.slots.len());
        let down = self.ms(1_000..3_000);
        let pid = self.slots[slot].process.as_ref().map_or(0, |p| p.pid());
        self.announce(
            kind,
            &format!("{} (pid {pid})", self.slots[slot].name),
            down,
        );
        // Dropped: SIGKILL and reaped.
        drop(self.slots[slot].process.take());
        self.touch(slot);
        self.hold(down, true).await;
        let (programs, base) = (self.programs.clone(), self.base.clone());
        self.slots[slot].start(&programs, &base)?;
        self.touch(slot);
        Ok(())
    }

    /// `sigstop`: a random provider paused for 0.5 s to 1.5 session timeouts, then continued.
    async fn sigstop_provider(&mut self, kind: &str) -> Result<(), String> {
        let slot = self.rng.random_range(0..self.slots.len());
        let upper = (self.programs.session_timeout.as_millis() as u64 * 3 / 2).max(600);
        let paused = self.ms(500..upper);
        let name = self.slots[slot].name.clone();
        self.announce(kind, &name, paused);
        if let Some(process) = &self.slots[slot].process {
            process
                .pause()
                .map_err(|e| format!("cannot pause {name}: {e}"))?;
            self.slots[slot].paused = true;
        }
        self.touch(slot);
        self.hold(paused, true).await;
        if let Some(process) = &self.slots[slot].process {
            process
                .resume()
                .map_err(|e| format!("cannot continue {name}: {e}"))?;
        }
        self.slots[slot].paused = false;
        self.touch(slot);
        Ok(())
    }

    /// `zk-kill`: a ZooKeeper member (the leader half of the time) killed, restarted 1–4 s later.
    async fn kill_member(&mut self, kind: &str) -> Result<(), String> {
        let down = self.ms(1_000..4_000);
        let random = self.rng.random_range(0..self.members.len());
        let aim_leader = self.rng.random_bool(0.5);
        let ensemble = self.ensemble.clone();
        let (member, leader) = tokio::task::spawn_blocking(move || {
            let mut ensemble = ensemble.lock().unwrap_or_else(|p| p.into_inner());
            let leader = ensemble.leader();
            let member = match leader {
                Some(l) if aim_leader => l,
                _ => random,
            };
            ensemble.member(member).kill();
            (member, leader == Some(member))
        })
        .await
        .map_err(|e| format!("killing a ZooKeeper member failed: {e}"))?;
        let what = format!(
            "zookeeper member {}{}",
            member + 1,
            if leader { " (the leader)" } else { "" }
        );
        self.announce(kind, &what, down);
        self.touch_all();
        self.hold(down, true).await;
        let ensemble = self.ensemble.clone();
        tokio::task::spawn_blocking(move || {
            let mut ensemble = ensemble.lock().unwrap_or_else(|p| p.into_inner());
            ensemble.member(member).restart()
        })
        .await
        .map_err(|e| format!("restarting ZooKeeper member {} failed: {e}", member + 1))?
        .map_err(|e| format!("cannot restart ZooKeeper member {}: {e}", member + 1))?;
        self.touch_all();
        Ok(())
    }

    /// `expire-consumer`: the calling consumer's own session, expired at once.
    async fn expire_consumer(&mut self, kind: &str) -> Result<(), String> {
        let Some(session) = self.consumer.session() else {
            return Err("the consumer has no session to expire".to_owned());
        };
        let info = session.client().session().clone();
        let id = session.session_id();
        self.announce(kind, &format!("consumer session {id:#x}"), Duration::ZERO);
        let connect = self
            .members
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        zoorpc_testkit::expire_session(&connect, info)
            .await
            .map_err(|e| format!("cannot expire the consumer's session {id:#x}: {e}"))
    }

    /// A provider or a contender, half and half; `master`: the contender that is master now.
    fn session_target(&mut self, master: bool) -> Target {
        if self.rng.random_bool(0.5) {
            return Target::Provider(self.rng.random_range(0..self.slots.len()));
        }
        let random = self.rng.random_range(0..self.contenders.len());
        if master {
            let found = (0..self.contenders.len()).find(|&i| self.contenders[i].is_master());
            return Target::Contender(found.unwrap_or(random));
        }
        Target::Contender(random)
    }

    /// Cuts `target` off from ZooKeeper for `held`, then heals it.
    async fn cut(&mut self, kind: &str, target: Target, held: Duration) {
        match target {
            Target::Provider(slot) => {
                let name = self.slots[slot].name.clone();
                self.announce(kind, &name, held);
                self.slots[slot].proxies.cut();
                self.touch(slot);
                self.hold(held, true).await;
                self.slots[slot].proxies.heal();
                self.touch(slot);
            }
            Target::Contender(i) => {
                let master = if self.contenders[i].is_master() {
                    " (the master)"
                } else {
                    ""
                };
                let what = format!("{}{master}", self.contenders[i].name);
                self.announce(kind, &what, held);
                self.contenders[i].proxies.cut();
                self.hold(held, true).await;
                self.contenders[i].proxies.heal();
            }
        }
    }

    /// A random duration in `range` milliseconds.
    pub fn ms(&mut self, range: std::ops::Range<u64>) -> Duration {
        Duration::from_millis(self.rng.random_range(range))
    }

    /// One line per fault, as it happens.
    pub fn announce(&self, kind: &str, target: &str, held: Duration) {
        println!(
            "{:>8.3}s fault {:>3}: {kind:<9} {target} for {:.1}s",
            self.t(),
            self.faults,
            held.as_secs_f64()
        );
    }
}
