//! `takeover`: how long a service is without a master when its master goes, by kind of going.
//! Two `zoorpc-ha-server` processes (the default 10 s session timeout unless
//! `--session-timeout-ms`) under a loop of idempotent `SayHello` calls through a
//! `MasterClient`; each round the master is SIGKILLed, SIGSTOPped, SIGTERMed or designated away
//! to the standby (`designate`, as `zoorpc designate` does) (`--rounds` of each, in turn). The
//! time is from the signal (the designation's send) to the first call answered by the other
//! server (its reply names it). A SIGSTOPped master is continued once the other answered, while calls
//! sent to its own address wait on it: any of them answered OK is a round "served by the
//! resumed master". A killed or stopped server is started again (same port) as the standby; a
//! designated-away one stays, a standby.
//! Failed calls are counted (they are idempotent: none should fail).

mod calls;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zoorpc::consumer::MasterClient;
use zoorpc::registry::{Session, designate};

use crate::harness::ChildProcess;
use zoorpc::cli::{file_name, millis, number};

use self::calls::{Loop, direct_calls};
use crate::{json_num, quantile_ms};

/// `takeover` options.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Rounds of each kind (1 to 1000)
    #[arg(long, value_name = "N", default_value = "20", value_parser = number(1..=1000usize))]
    pub rounds: usize,
    /// The servers' session timeout, in milliseconds (1000 to 600000)
    #[arg(long = "session-timeout-ms", value_name = "MS", default_value = "10000", value_parser = millis(1_000..=600_000))]
    pub session_timeout: Duration,
    /// Where zoorpc-ha-server is [default: beside this program's directory]
    #[arg(long, value_name = "PATH", value_parser = file_name)]
    pub server_bin: Option<PathBuf>,
}

/// How long anything may take before the round is given up.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// One kind of going, as the JSON names it.
#[derive(Clone, Copy, PartialEq)]
enum Going {
    Kill,
    Stop,
    Term,
    /// Designated away (`zoorpc designate` to the standby): it steps down and stays a standby.
    Designate,
}

impl Going {
    fn name(self) -> &'static str {
        match self {
            Going::Kill => "sigkill",
            Going::Stop => "sigstop",
            Going::Term => "sigterm",
            Going::Designate => "designate",
        }
    }
}

/// An HA server slot: its port (kept across restarts) and process.
struct Slot {
    port: u16,
    address: String,
    process: Option<ChildProcess>,
}

/// What the client loop saw last: (when, which server answered).
type Last = watch::Receiver<(Instant, String)>;

/// The two servers and how to start them.
struct Servers {
    bin: PathBuf,
    zk: String,
    path: String,
    session_timeout: Duration,
    slots: Vec<Slot>,
    /// The operator's session, for `designate`.
    operator: Session,
}

/// One kind of going's figures: the rounds' times and the calls that failed meanwhile.
type Figures = (Going, Vec<Duration>, u64);

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let bin = crate::sibling_binary(options.server_bin.as_ref(), "zoorpc-ha-server")?;
    let path = format!(
        "/zoorpc-bench/takeover-{}/HelloService:1.0.0",
        std::process::id()
    );
    let mut servers = Servers::start(bin, zk, &path, options.session_timeout).await?;
    let client = Arc::new(
        MasterClient::connect(zk, &path)
            .await
            .map_err(|e| e.to_string())?,
    );
    let calls = Loop::start(client);
    let mut figures = Vec::new();
    let mut resumed_served = 0u64;
    for going in [Going::Kill, Going::Stop, Going::Term, Going::Designate] {
        let failed_before = calls.failed.load(Ordering::Relaxed);
        let mut samples = Vec::with_capacity(options.rounds);
        for round in 0..options.rounds {
            let (took, served) = servers
                .round(going, &calls.last)
                .await
                .map_err(|e| format!("{} round {round}: {e}", going.name()))?;
            samples.push(took);
            resumed_served += u64::from(served);
        }
        let failed_here = calls.failed.load(Ordering::Relaxed) - failed_before;
        println!(
            "{}: first call answered by the new master after p50 {:.0} ms, max {:.0} ms ({} rounds); {failed_here} calls failed",
            going.name(),
            quantile_ms(&mut samples, 0.5),
            quantile_ms(&mut samples, 1.0),
            samples.len()
        );
        figures.push((going, samples, failed_here));
    }
    let (calls, failed) = calls.finish().await;
    println!(
        "takeover: 2 zoorpc-ha-server processes, session timeout {:?}, ZooKeeper {zk}; {calls} idempotent calls through a MasterClient, {failed} failed; SIGSTOP rounds in which the resumed master answered a call as master: {resumed_served}",
        options.session_timeout
    );
    let json = json_line(&options, figures, resumed_served, (calls, failed));
    drop(servers);
    println!("{json}");
    Ok(())
}

/// The last line: `totals` are (calls, failed) of the whole run.
fn json_line(
    options: &Options,
    figures: Vec<Figures>,
    resumed_served: u64,
    (calls, failed): (u64, u64),
) -> String {
    let mut json = format!(
        "{{\"scenario\":\"takeover\",\"rounds\":{},\"session_timeout_ms\":{}",
        options.rounds,
        options.session_timeout.as_millis()
    );
    for (going, mut samples, failed_here) in figures {
        json.push_str(&format!(
            ",\"{0}_p50_ms\":{1},\"{0}_max_ms\":{2},\"{0}_failed\":{failed_here}",
            going.name(),
            json_num(quantile_ms(&mut samples, 0.5)),
            json_num(quantile_ms(&mut samples, 1.0))
        ));
    }
    json.push_str(&format!(
        ",\"sigstop_resumed_served\":{resumed_served},\"calls\":{calls},\"failed\":{failed}}}"
    ));
    json
}

impl Servers {
    /// Two servers on free ports, each started (and deciding its role) in turn.
    async fn start(
        bin: PathBuf,
        zk: &str,
        path: &str,
        session_timeout: Duration,
    ) -> Result<Servers, String> {
        let mut servers = Servers {
            bin,
            zk: zk.to_owned(),
            path: path.to_owned(),
            session_timeout,
            slots: Vec::new(),
            operator: Session::connect_to(zk).await.map_err(|e| e.to_string())?,
        };
        for _ in 0..2 {
            let port = free_port()?;
            servers.slots.push(Slot {
                port,
                address: format!("127.0.0.1:{port}"),
                process: None,
            });
        }
        for slot in 0..servers.slots.len() {
            servers.start_slot(slot, "role ").await?;
        }
        Ok(servers)
    }

    /// One round: the master goes; returns how long until the other server answered, and
    /// whether a resumed (SIGSTOPped) master answered a call as master afterwards.
    async fn round(&mut self, going: Going, last: &Last) -> Result<(Duration, bool), String> {
        let mut last = last.clone();
        let (master, master_address) = self.answering(&mut last).await?;
        let t = Instant::now();
        self.go(master, going).await?;
        // Calls to the stopped master's own address, queued while it is stopped and sent on for
        // a second after it continues.
        let (direct_stop, direct_stopped) = watch::channel(false);
        let direct = (going == Going::Stop)
            .then(|| direct_calls(&self.slots[master].address, direct_stopped));
        let answered = tokio::time::timeout(
            STEP_TIMEOUT,
            last.wait_for(|(at, a)| *at > t && *a != master_address),
        )
        .await
        .map_err(|_| format!("nobody else answered within {STEP_TIMEOUT:?}"))?
        .map_err(|_| "the client loop stopped".to_owned())?
        .0;
        let took = answered.saturating_duration_since(t);
        let mut served = false;
        if let Some(direct) = direct {
            if let Some(process) = &self.slots[master].process {
                process.resume().map_err(|e| format!("SIGCONT: {e}"))?;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            direct_stop.send_replace(true);
            served = direct.await.unwrap_or(false);
        }
        if going == Going::Designate {
            // Stepped down, and a standby in the same process.
            return Ok((took, served));
        }
        // Back as the standby: a new process after a kill or a stop, so every round starts alike.
        if let Some(mut process) = self.slots[master].process.take() {
            process.kill();
        }
        self.start_slot(master, "role standby").await?;
        Ok((took, served))
    }

    /// Makes the master in `slot` go as `going` says.
    async fn go(&self, slot: usize, going: Going) -> Result<(), String> {
        let process = self.slots[slot]
            .process
            .as_ref()
            .ok_or("the master has no process")?;
        match going {
            Going::Stop => process.pause().map_err(|e| format!("SIGSTOP: {e}")),
            Going::Kill => process
                .signal(libc::SIGKILL)
                .map_err(|e| format!("signal: {e}")),
            Going::Term => process
                .signal(libc::SIGTERM)
                .map_err(|e| format!("signal: {e}")),
            Going::Designate => {
                let other = &self.slots[1 - slot].address;
                designate(&self.operator, &self.path, other)
                    .await
                    .map_err(|e| format!("designate {other}: {e}"))
            }
        }
    }

    /// The master: the server answering now (its slot and address).
    async fn answering(&self, last: &mut Last) -> Result<(usize, String), String> {
        let address = tokio::time::timeout(STEP_TIMEOUT, last.wait_for(|(_, a)| !a.is_empty()))
            .await
            .map_err(|_| "no call answered".to_owned())?
            .map_err(|_| "the client loop stopped".to_owned())?
            .1
            .clone();
        let slot = self
            .slots
            .iter()
            .position(|s| s.address == address)
            .ok_or_else(|| format!("{address} is not one of ours"))?;
        Ok((slot, address))
    }

    /// Starts `zoorpc-ha-server` in `slot` and waits for a line starting with `until`.
    async fn start_slot(&mut self, slot: usize, until: &str) -> Result<(), String> {
        let slot = &mut self.slots[slot];
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--zk", &self.zk, "--path", &self.path])
            .args(["--port", &slot.port.to_string()])
            .args([
                "--session-timeout-ms",
                &self.session_timeout.as_millis().to_string(),
            ]);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "error");
        }
        let mut process =
            ChildProcess::spawn(slot.address.clone(), cmd).map_err(|e| e.to_string())?;
        tokio::task::block_in_place(|| process.wait_for_line(until, STEP_TIMEOUT))
            .map_err(|e| e.to_string())?;
        slot.process = Some(process);
        Ok(())
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}
