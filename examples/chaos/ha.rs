//! The active/standby side of the run: `zoorpc-ha-server` processes (this executable re-run
//! with `ZOORPC_CHAOS_RUN=ha-server`) contending at one election path and running a
//! master-only job, each behind proxies of its own; the prober calling each at its own address
//! (`probes.rs`); a `MasterClient` loop in this process and a `zoorpc proxy --master` process
//! with a call loop through it (clients that route by the master node).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zoorpc::consumer::MasterClient;
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc::registry::election::read_address;
use zoorpc::registry::{Session, SessionConfig};
use zoorpc_testkit::ChildProcess;

use crate::fleet::{Programs, Proxies, wait_for_each};
use crate::probes::{self, Counts, Probes, probe};

/// HA servers in the election.
pub const HA_SERVERS: usize = 2;
/// The HA servers' master-only job runs this often.
const JOB_INTERVAL: Duration = Duration::from_millis(200);
/// Pause between two calls of a client loop.
const CLIENT_PACE: Duration = Duration::from_millis(10);
/// How long a started program may take to print `listening`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One HA server: a fixed port (a restarted one comes back at the same address), its proxies
/// to ZooKeeper, its process, and the job runs of its earlier processes.
pub struct HaSlot {
    /// `ha-<i>`, in the printed lines.
    pub name: String,
    /// `127.0.0.1:<port>`, its address in the master node.
    pub address: String,
    port: u16,
    /// Its way to ZooKeeper.
    pub proxies: Proxies,
    /// The running process (`None` while killed).
    pub process: Option<ChildProcess>,
    /// `run` lines of earlier processes.
    pub past_runs: Vec<String>,
}

impl HaSlot {
    async fn new(index: usize, members: &[SocketAddr]) -> Result<HaSlot, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
        Ok(HaSlot {
            name: format!("ha-{index}"),
            address: format!("127.0.0.1:{port}"),
            port,
            proxies: Proxies::start(members).await?,
            process: None,
            past_runs: Vec::new(),
        })
    }

    /// Starts the HA server program (does not wait for it).
    pub fn start(&mut self, programs: &Programs, path: &str) -> Result<(), String> {
        let mut cmd = programs.command("ha-server");
        cmd.args(["--zk", &self.proxies.connect_string(), "--path", path])
            .args(["--port", &self.port.to_string()])
            .args(["--job-interval-ms", &JOB_INTERVAL.as_millis().to_string()])
            .args(["--job-name", "chaos"])
            .args([
                "--session-timeout-ms",
                &programs.session_timeout.as_millis().to_string(),
            ]);
        self.process =
            Some(ChildProcess::spawn(self.name.clone(), cmd).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// SIGKILLs the process (reaped), keeping its job lines.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
            self.keep_runs(&mut process);
        }
    }

    /// Keeps the job-run lines of `process` (one of this slot's).
    pub fn keep_runs(&mut self, process: &mut ChildProcess) {
        let runs = process
            .drain_lines()
            .iter()
            .filter(|l| l.starts_with("run "))
            .cloned();
        self.past_runs.extend(runs);
    }

    /// Every job-run line of every process of this slot (the current one's so far).
    pub fn runs(&mut self) -> Vec<String> {
        let mut runs = self.past_runs.clone();
        if let Some(process) = self.process.as_mut() {
            runs.extend(
                process
                    .drain_lines()
                    .iter()
                    .filter(|l| l.starts_with("run "))
                    .cloned(),
            );
        }
        runs
    }
}

/// The HA servers contending at `path`, each listening.
async fn start_servers(
    members: &[SocketAddr],
    programs: &Programs,
    path: &str,
) -> Result<Vec<HaSlot>, String> {
    let mut slots = Vec::with_capacity(HA_SERVERS);
    for i in 0..HA_SERVERS {
        let mut slot = HaSlot::new(i, members).await?;
        slot.start(programs, path)?;
        slots.push(slot);
    }
    wait_for_each(
        slots.iter_mut().map(|s| (&s.name, &mut s.process)),
        "listening ",
        "did not start",
    )?;
    Ok(slots)
}

/// `zoorpc proxy --master path --idempotent` on a free port: the process and where it listens.
fn start_proxy(
    programs: &Programs,
    connect: &str,
    path: &str,
) -> Result<(ChildProcess, String), String> {
    let mut cmd = programs.command("proxy");
    cmd.args(["--zk", connect, "--listen", "127.0.0.1:0", "--master", path])
        .arg("--idempotent");
    let mut proxy = ChildProcess::spawn("proxy", cmd).map_err(|e| e.to_string())?;
    let line = tokio::task::block_in_place(|| proxy.wait_for_line("listening ", START_TIMEOUT))
        .map_err(|e| format!("zoorpc proxy --master did not start: {e}"))?;
    let listen = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("unexpected proxy line {line:?}"))?
        .to_owned();
    Ok((proxy, listen))
}

/// The HA servers, what calls them, and an operator's session (to delete the master node).
pub struct HaFleet {
    pub slots: Vec<HaSlot>,
    /// The election path.
    pub path: String,
    /// The operator's own session on the ensemble.
    pub operator: Session,
    pub probes: Arc<Probes>,
    /// The `MasterClient` loop's counts.
    pub master_client: Arc<Counts>,
    /// The loop through `zoorpc proxy --master`.
    pub proxied: Arc<Counts>,
    /// HA servers that exited on their own (started again).
    pub exits: u64,
    /// Faults after which no master answered within the session timeout and a second.
    pub liveness_misses: u64,
    proxy: ChildProcess,
    tasks: Vec<JoinHandle<()>>,
}

impl HaFleet {
    /// Starts the servers, the proxy and every call loop; returns once every server listens.
    pub async fn start(
        members: &[SocketAddr],
        programs: &Programs,
        path: &str,
        stop: watch::Receiver<bool>,
    ) -> Result<HaFleet, String> {
        let connect = members
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let slots = start_servers(members, programs, path).await?;
        let operator = Session::connect(SessionConfig::new(&connect))
            .await
            .map_err(|e| format!("cannot open the operator's session: {e}"))?;
        let probes = Arc::new(Probes::default());
        let mut tasks = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            tasks.push(probe(i, slot.address.clone(), probes.clone(), stop.clone()));
        }
        let client = MasterClient::connect(&connect, path)
            .await
            .map_err(|e| format!("cannot start the master client: {e}"))?;
        let master_client = Arc::new(Counts::default());
        tasks.push(master_client_loop(
            client,
            master_client.clone(),
            stop.clone(),
        ));
        let (proxy, listen) = start_proxy(programs, &connect, path)?;
        let proxied = Arc::new(Counts::default());
        tasks.push(proxied_loop(listen, proxied.clone(), stop)?);
        let fleet = HaFleet {
            slots,
            path: path.to_owned(),
            operator,
            probes,
            master_client,
            proxied,
            exits: 0,
            liveness_misses: 0,
            proxy,
            tasks,
        };
        Ok(fleet)
    }

    /// The slot whose address the master node holds now (as ZooKeeper says), if any.
    pub async fn master(&self) -> Option<usize> {
        let (data, _) = self.operator.client().get_data(&self.path).await.ok()?;
        let holder = read_address(&data).ok()?;
        self.slots.iter().position(|s| s.address == holder)
    }

    /// Starts again the servers that exited on their own (not those killed by a fault).
    pub fn restart_exited(&mut self, programs: &Programs, t: f64) {
        let path = self.path.clone();
        for slot in &mut self.slots {
            let exited = slot.process.as_mut().is_some_and(ChildProcess::has_exited);
            if exited {
                self.exits += 1;
                println!(
                    "{t:>8.3}s {} exited on its own; starting it again",
                    slot.name
                );
                slot.kill();
                if let Err(e) = slot.start(programs, &path) {
                    println!("{t:>8.3}s cannot start {}: {e}", slot.name);
                }
            }
        }
    }

    /// The HA side's counts, as JSON fields (the clients and probes must have stopped); prints
    /// every answer that proves two masters.
    pub fn summary(&mut self, started: Instant) -> (String, Vec<(&'static str, u64)>) {
        let answers = self.probes.answers();
        let overlapping = probes::overlapping(&answers);
        for (stale, newer) in overlapping.iter().take(20) {
            println!(
                "TWO MASTERS: {} answered under epoch {} (sent at {:.3}s, answered at {:.3}s) after {} had answered under epoch {} (at {:.3}s)",
                self.slots[stale.server].name,
                stale.epoch.unwrap_or(0),
                (stale.sent - started).as_secs_f64(),
                (stale.replied - started).as_secs_f64(),
                self.slots[newer.server].name,
                newer.epoch.unwrap_or(0),
                (newer.replied - started).as_secs_f64(),
            );
        }
        let (mc_calls, mc_failed) = self.master_client.get();
        let (px_calls, px_failed) = self.proxied.get();
        let seqs = self.job_seqs();
        let json = format!(
            "\"ha_answers\":{},\"overlapping_masters\":{},\"liveness_misses\":{},\"master_client_calls\":{mc_calls},\"master_client_failed\":{mc_failed},\"proxy_master_calls\":{px_calls},\"proxy_master_failed\":{px_failed},\"ha_job_runs\":{},\"ha_job_runs_duplicated\":{},\"ha_job_seqs_skipped\":{},\"ha_job_seqs_skipped_by_one_master\":{},\"ha_exits\":{}",
            answers.len(),
            overlapping.len(),
            self.liveness_misses,
            seqs.runs,
            seqs.duplicated,
            seqs.skipped.len(),
            seqs.unexplained.len(),
            self.exits,
        );
        let zeros = vec![
            ("overlapping_masters", overlapping.len() as u64),
            ("liveness_misses", self.liveness_misses),
            ("master_client_failed", mc_failed),
            ("proxy_master_failed", px_failed),
            ("ha_job_runs_duplicated", seqs.duplicated),
            (
                "ha_job_seqs_skipped_by_one_master",
                seqs.unexplained.len() as u64,
            ),
        ];
        (json, zeros)
    }

    /// The HA servers' job runs, counted; prints the skipped seqs (those skipped by one master
    /// with the runs around them: who ran which seq under which epoch).
    fn job_seqs(&mut self) -> probes::JobSeqs {
        let mut runs = Vec::new();
        let mut who = Vec::new();
        for slot in &mut self.slots {
            let lines = slot.runs();
            who.extend(
                lines
                    .iter()
                    .filter_map(|l| probes::parse_run(l))
                    .map(|(seq, epoch)| (slot.name.clone(), seq, epoch)),
            );
            runs.extend(lines);
        }
        let seqs = probes::job_seqs(runs.iter());
        if !seqs.skipped.is_empty() {
            println!(
                "HA job seqs skipped at a change of master (claimed by a master deposed or dead before it started them; at most once by design, not counted against the zeros): {:?}",
                seqs.skipped
            );
        }
        if !seqs.unexplained.is_empty() {
            println!(
                "HA JOB SEQS SKIPPED BY ONE MASTER (runs on both sides under one epoch): {:?}",
                seqs.unexplained
            );
            for seq in &seqs.unexplained {
                println!("  seq {seq}: {}", probes::neighbours(&who, *seq));
            }
        }
        seqs
    }

    /// Stops the loops and the proxy; returns every job-run line.
    pub async fn finish(mut self) -> Vec<String> {
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.proxy.kill();
        let mut runs = Vec::new();
        for slot in &mut self.slots {
            slot.kill();
            runs.append(&mut slot.past_runs);
        }
        runs
    }
}

/// `MasterClient::say_hello` (idempotent, retried across a switch-over) until `stop`.
fn master_client_loop(
    client: MasterClient,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let result = tokio::select! {
                result = client.say_hello("chaos") => result,
                _ = stop.wait_for(|s| *s) => return,
            };
            counts.calls.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = result
                && counts.failed.fetch_add(1, Ordering::Relaxed) < 10
            {
                println!("master client call failed: {e}");
            }
            tokio::time::sleep(CLIENT_PACE).await;
        }
    })
}

/// Plain gRPC calls through `zoorpc proxy --master --idempotent` at `listen` until `stop`.
fn proxied_loop(
    listen: String,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{listen}"))
        .map_err(|e| format!("bad proxy address {listen}: {e}"))?
        .timeout(Duration::from_secs(20));
    let mut client = HelloServiceClient::new(endpoint.connect_lazy());
    Ok(tokio::spawn(async move {
        loop {
            let call = client.say_hello(HelloRequest {
                name: "chaos".into(),
            });
            let result = tokio::select! {
                result = call => result,
                _ = stop.wait_for(|s| *s) => return,
            };
            counts.calls.fetch_add(1, Ordering::Relaxed);
            if let Err(status) = result
                && counts.failed.fetch_add(1, Ordering::Relaxed) < 10
            {
                println!(
                    "call through proxy --master failed: {}: {}",
                    status.code(),
                    status.message()
                );
            }
            tokio::time::sleep(CLIENT_PACE).await;
        }
    }))
}
