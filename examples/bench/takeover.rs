//! `takeover`: how long a service is without a master when its master goes, by kind of going.
//! Two `zoorpc-ha-server` processes (the default 10 s session timeout unless
//! `--session-timeout-ms`) under a loop of idempotent `SayHello` calls through a
//! `MasterClient`; each round the master is SIGKILLed, SIGSTOPped or SIGTERMed (`--rounds` of
//! each, in turn). The time is from the signal to the first call answered by the other server
//! (its reply names it). A SIGSTOPped master is continued once the other answered, while calls
//! sent to its own address wait on it: any of them answered OK is a round "served by the
//! resumed master". A killed or stopped server is started again (same port) as the standby.
//! Failed calls are counted (they are idempotent: none should fail).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zoorpc::consumer::MasterClient;
use zoorpc::proto::{HelloRequest, HelloServiceClient};

use crate::harness::ChildProcess;
use crate::{json_num, quantile_ms};

/// `takeover` options.
pub struct Options {
    /// Rounds of each kind.
    pub rounds: usize,
    /// The servers' session timeout.
    pub session_timeout: Duration,
    /// Where `zoorpc-ha-server` is.
    pub server_bin: Option<PathBuf>,
}

/// How long anything may take before the round is given up.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two calls of the client loop, and the most calls it keeps in flight.
const PACE: Duration = Duration::from_millis(5);
const MAX_IN_FLIGHT: usize = 20_000;

/// One kind of going, as the JSON names it.
#[derive(Clone, Copy, PartialEq)]
enum Going {
    Kill,
    Stop,
    Term,
}

impl Going {
    fn name(self) -> &'static str {
        match self {
            Going::Kill => "sigkill",
            Going::Stop => "sigstop",
            Going::Term => "sigterm",
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

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let bin = crate::failover::sibling_binary(options.server_bin.as_ref(), "zoorpc-ha-server")?;
    let path = format!(
        "/zoorpc-bench/takeover-{}/HelloService:1.0.0",
        std::process::id()
    );
    let mut slots = Vec::new();
    for _ in 0..2 {
        let port = free_port()?;
        slots.push(Slot {
            port,
            address: format!("127.0.0.1:{port}"),
            process: None,
        });
    }
    for slot in &mut slots {
        start(&bin, zk, &path, options.session_timeout, slot, "role ").await?;
    }
    let client = Arc::new(
        MasterClient::connect(zk, &path)
            .await
            .map_err(|e| e.to_string())?,
    );
    let (stop_tx, stop) = watch::channel(false);
    let (last_tx, last) = watch::channel((Instant::now(), String::new()));
    let last_tx = Arc::new(last_tx);
    let failed = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let callers = vec![tokio::spawn(caller(
        client.clone(),
        last_tx.clone(),
        calls.clone(),
        failed.clone(),
        stop.clone(),
    ))];
    let mut figures = Vec::new();
    let mut resumed_served = 0u64;
    for going in [Going::Kill, Going::Stop, Going::Term] {
        let failed_before = failed.load(Ordering::Relaxed);
        let mut samples = Vec::with_capacity(options.rounds);
        for round in 0..options.rounds {
            let (took, served) = round_of(going, &bin, zk, &path, &options, &mut slots, &last)
                .await
                .map_err(|e| format!("{} round {round}: {e}", going.name()))?;
            samples.push(took);
            resumed_served += u64::from(served);
        }
        let failed_here = failed.load(Ordering::Relaxed) - failed_before;
        println!(
            "{}: first call answered by the new master after p50 {:.0} ms, max {:.0} ms ({} rounds); {failed_here} calls failed",
            going.name(),
            quantile_ms(&mut samples, 0.5),
            quantile_ms(&mut samples, 1.0),
            samples.len()
        );
        figures.push((going, samples, failed_here));
    }
    stop_tx.send_replace(true);
    for caller in callers {
        let _ = caller.await;
    }
    let (calls, failed) = (
        calls.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    println!(
        "takeover: 2 zoorpc-ha-server processes, session timeout {:?}, ZooKeeper {zk}; {calls} idempotent calls through a MasterClient, {failed} failed; SIGSTOP rounds in which the resumed master answered a call as master: {resumed_served}",
        options.session_timeout
    );
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
    drop(slots);
    println!("{json}");
    Ok(())
}

/// One round: the master goes; returns how long until the other server answered, and whether
/// a resumed (SIGSTOPped) master answered a call as master afterwards.
async fn round_of(
    going: Going,
    bin: &PathBuf,
    zk: &str,
    path: &str,
    options: &Options,
    slots: &mut [Slot],
    last: &Last,
) -> Result<(Duration, bool), String> {
    // The master is the server answering now.
    let mut last = last.clone();
    let master_address = tokio::time::timeout(STEP_TIMEOUT, last.wait_for(|(_, a)| !a.is_empty()))
        .await
        .map_err(|_| "no call answered".to_owned())?
        .map_err(|_| "the client loop stopped".to_owned())?
        .1
        .clone();
    let master = slots
        .iter()
        .position(|s| s.address == master_address)
        .ok_or_else(|| format!("{master_address} is not one of ours"))?;
    let signal = match going {
        Going::Kill => libc::SIGKILL,
        Going::Stop => libc::SIGSTOP,
        Going::Term => libc::SIGTERM,
    };
    let process = slots[master]
        .process
        .as_ref()
        .ok_or("the master has no process")?;
    let t = Instant::now();
    if going == Going::Stop {
        process.pause().map_err(|e| format!("SIGSTOP: {e}"))?;
    } else {
        process.signal(signal).map_err(|e| format!("signal: {e}"))?;
    }
    // Calls to the stopped master's own address, queued while it is stopped and sent on for a
    // second after it continues.
    let (direct_stop, direct_stopped) = watch::channel(false);
    let direct =
        (going == Going::Stop).then(|| direct_calls(&slots[master].address, direct_stopped));
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
        if let Some(process) = &slots[master].process {
            process.resume().map_err(|e| format!("SIGCONT: {e}"))?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        direct_stop.send_replace(true);
        served = direct.await.unwrap_or(false);
    }
    // Back as the standby: a new process after a kill or a stop, so every round starts alike.
    if let Some(mut process) = slots[master].process.take() {
        process.kill();
    }
    start(
        bin,
        zk,
        path,
        options.session_timeout,
        &mut slots[master],
        "role standby",
    )
    .await?;
    Ok((took, served))
}

/// Calls to `address` (a stopped server), one every 50 ms until `stop`, in flight together;
/// resolves to whether any was answered OK (as master).
fn direct_calls(address: &str, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<bool> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map(|e| e.timeout(STEP_TIMEOUT).connect_lazy());
    tokio::spawn(async move {
        let Ok(channel) = endpoint else { return false };
        let mut calls = tokio::task::JoinSet::new();
        while !*stop.borrow() {
            let mut client = HelloServiceClient::new(channel.clone());
            calls.spawn(async move {
                let request = HelloRequest {
                    name: "direct".into(),
                };
                client.say_hello(request).await.is_ok()
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut served = false;
        while let Some(ok) = calls.join_next().await {
            served |= ok.unwrap_or(false);
        }
        served
    })
}

/// The client loop: a `SayHello` through the master client every [`PACE`], each in flight on
/// its own (a call stuck on a stopped master does not hold the next ones back), until `stop`;
/// publishes who answered last.
async fn caller(
    client: Arc<MasterClient>,
    last: Arc<watch::Sender<(Instant, String)>>,
    calls: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PACE) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        while in_flight.try_join_next().is_some() {}
        if in_flight.len() >= MAX_IN_FLIGHT {
            continue;
        }
        let (client, last, calls, failed) =
            (client.clone(), last.clone(), calls.clone(), failed.clone());
        in_flight.spawn(async move {
            let result = client.say_hello("bench").await;
            calls.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(answer) => {
                    let at = Instant::now();
                    last.send_if_modified(|(when, who)| {
                        if at > *when {
                            *when = at;
                            who.clone_from(&answer.value.provider);
                            true
                        } else {
                            false
                        }
                    });
                }
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        println!("call failed: {e}");
                    }
                }
            }
        });
    }
    // Calls in flight finish (each is bounded by the client's own timeouts).
    while in_flight.join_next().await.is_some() {}
}

/// Starts `zoorpc-ha-server` in `slot` and waits for a line starting with `until`.
async fn start(
    bin: &PathBuf,
    zk: &str,
    path: &str,
    session_timeout: Duration,
    slot: &mut Slot,
    until: &str,
) -> Result<(), String> {
    let mut cmd = Command::new(bin);
    cmd.args(["--zk", zk, "--path", path])
        .args(["--port", &slot.port.to_string()])
        .args([
            "--session-timeout-ms",
            &session_timeout.as_millis().to_string(),
        ]);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "error");
    }
    let mut process = ChildProcess::spawn(slot.address.clone(), cmd).map_err(|e| e.to_string())?;
    tokio::task::block_in_place(|| process.wait_for_line(until, STEP_TIMEOUT))
        .map_err(|e| e.to_string())?;
    slot.process = Some(process);
    Ok(())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}
