//! The three provider processes: started, SIGKILLed in turn and started again (each a new process, port and node), killed on drop.

use super::*;

/// A `zoorpc-echo` process in a slot; SIGKILLed on drop.
pub(super) struct EchoProcess {
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

/// The provider processes, by slot, and which slot every node ever started belongs to.
pub(super) struct Fleet {
    bin: PathBuf,
    pub(super) base: String,
    pub(super) slots: Vec<Option<EchoProcess>>,
    /// Node name → slot, for every process ever started.
    pub(super) node_slot: HashMap<String, usize>,
}

impl Fleet {
    /// One `zoorpc-echo` per slot, each registered.
    pub(super) async fn start(bin: PathBuf, zk: &str, base: String) -> Result<Fleet, String> {
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
    pub(super) async fn kill_in_turn(
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
