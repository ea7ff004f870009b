//! The failover demo: three providers in their own processes, one client loop, and real signals.
//!
//! `cargo run --example failover` (starts its own ZooKeeper), or `-- --zk HOST:PORT`.
//!
//! Timeline: start p1 p2 p3 → SIGKILL p1 (its node expires with its session) → SIGTERM p2
//! (deregisters at once, drains, exits) → restart both → stop all (calls fail: no providers)
//! → start p3 again. Each call prints which provider answered; a summary ends the run. Exits
//! non-zero if any call failed while a provider was registered.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zoorpc::apps::provider::ProviderProgram;
use zoorpc::cli::millis;
use zoorpc::consumer::{Consumer, ConsumerConfig, Error as ConsumerError};
use zoorpc_testkit::{ChildProcess, ZkServer};

/// The failover demo: three providers in their own processes, one client loop, real signals.
#[derive(clap::Parser, Debug)]
#[command(name = "failover")]
struct Args {
    /// The ZooKeeper to use [default: one the demo starts]
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]", value_parser = zoorpc::apps::connect_string)]
    zk: Option<String>,
    /// Where the providers register
    #[arg(long, default_value = "/registry", value_parser = zoorpc::apps::znode_path)]
    base_path: String,
    /// Pause between calls, in milliseconds (0: no pause; at most 10000: each phase waits at
    /// most 30 s for its calls)
    #[arg(long = "interval-ms", value_name = "MS", default_value = "100", value_parser = millis(0..=10_000))]
    interval: Duration,
    /// How much to log.
    #[command(flatten)]
    log: zoorpc::apps::LogArgs,
}
const SESSION_TIMEOUT_MS: u64 = 2000;

struct Demo {
    started: Instant,
    zk: String,
    base: String,
    exe: std::path::PathBuf,
    ports: BTreeMap<&'static str, u16>,
    running: BTreeMap<&'static str, ChildProcess>,
}

impl Demo {
    fn event(&self, kind: &str, text: &str) {
        println!(
            "{:>8.3}s  {kind:<9} {text}",
            self.started.elapsed().as_secs_f64()
        );
    }

    fn name_of(&self, url: &str) -> &'static str {
        self.ports
            .iter()
            .find(|(_, port)| url.ends_with(&format!(":{port}")))
            .map(|(name, _)| *name)
            .unwrap_or("?")
    }

    fn start(&mut self, name: &'static str) -> Result<(), String> {
        let port = self.ports[name];
        let mut cmd = Command::new(&self.exe);
        cmd.args(["--as-provider", "--zk", &self.zk, "--base-path", &self.base])
            .args(["--port", &port.to_string()])
            .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()]);
        let mut child = ChildProcess::spawn(name, cmd).map_err(|e| e.to_string())?;
        let line = child
            .wait_for_line("registered ", Duration::from_secs(20))
            .map_err(|e| e.to_string())?;
        self.event("start", &format!("{name} {line}"));
        self.running.insert(name, child);
        Ok(())
    }

    fn signal(&mut self, name: &'static str, signal: i32, label: &str) -> Result<(), String> {
        let mut child = self
            .running
            .remove(name)
            .ok_or_else(|| format!("{name} is not running"))?;
        child.signal(signal).map_err(|e| e.to_string())?;
        self.event("signal", &format!("{name} {label} (pid {})", child.pid()));
        let status = child
            .wait_exit(Duration::from_secs(15))
            .map_err(|e| e.to_string())?;
        let said: Vec<String> = child
            .drain_lines()
            .iter()
            .filter(|l| !l.starts_with("registered "))
            .cloned()
            .collect();
        self.event(
            "exit",
            &format!("{name} exited ({status}); it said {said:?}"),
        );
        Ok(())
    }
}

#[derive(Default, Clone)]
struct Tally {
    calls: u64,
    ok: u64,
    failed_no_providers: u64,
    failed_other: u64,
    by_provider: BTreeMap<&'static str, u64>,
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--as-provider") {
        // Child mode: the demo re-runs itself as a provider process (`zoorpc-provider`'s code).
        let args = std::env::args_os().skip(2);
        let program: ProviderProgram =
            zoorpc::cli::parse_from(std::iter::once("failover --as-provider".into()).chain(args));
        program.log.init("warn");
        std::process::exit(program.provider.run());
    }
    let args: Args = zoorpc::cli::parse();
    args.log.init("warn");
    std::process::exit(zoorpc::apps::block_on(run(args)));
}

async fn run(args: Args) -> Result<i32, String> {
    let (interval, base) = (args.interval, args.base_path);
    let started = Instant::now();
    let mut own_zk = None;
    let zk = match args.zk {
        Some(zk) => zk,
        None => {
            let server = ZkServer::start().map_err(|e| e.to_string())?;
            let connect = server.connect_string();
            own_zk = Some(server);
            connect
        }
    };
    let mut ports = BTreeMap::new();
    for name in ["p1", "p2", "p3"] {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        ports.insert(name, l.local_addr().map_err(|e| e.to_string())?.port());
    }
    let mut demo = Demo {
        started,
        zk: zk.clone(),
        base: base.clone(),
        exe: std::env::current_exe().map_err(|e| e.to_string())?,
        ports,
        running: BTreeMap::new(),
    };
    println!(
        "zoorpc failover demo: ZooKeeper {zk}{}, base path {base}, provider session timeout {SESSION_TIMEOUT_MS} ms",
        if own_zk.is_some() {
            " (started by the demo)"
        } else {
            ""
        }
    );
    println!("{:>9}  {:<9} what", "time", "event");

    for name in ["p1", "p2", "p3"] {
        demo.start(name)?;
    }
    let consumer = Arc::new(
        Consumer::connect_with(ConsumerConfig::new(&zk, &base))
            .await
            .map_err(|e| e.to_string())?,
    );
    wait_list(&demo, &consumer, 3).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (loop_task, mut tally_rx) = call_loop(&demo, &consumer, interval, stop.clone());
    timeline(&mut demo, &consumer, &tally_rx).await?;
    stop.store(true, Ordering::Relaxed);
    let _ = loop_task.await;
    let tally = tally_rx.borrow_and_update().clone();
    tally.print_summary(started);
    drop(own_zk);
    Ok(if tally.failed_other == 0 { 0 } else { 1 })
}

/// The client loop: one call per `interval` until `stop`, each printed and counted.
fn call_loop(
    demo: &Demo,
    consumer: &Arc<Consumer>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<()>, watch::Receiver<Tally>) {
    let (tally_tx, tally_rx) = watch::channel(Tally::default());
    let (names, started, consumer) = (demo.ports.clone(), demo.started, consumer.clone());
    let task = tokio::spawn(async move {
        let mut pace = zoorpc::apps::Pace::new(interval);
        while !stop.load(Ordering::Relaxed) {
            pace.next().await;
            let result = consumer.say_hello("demo").await;
            let t = started.elapsed().as_secs_f64();
            tally_tx.send_modify(|tally| tally.record(&result, &names, t));
        }
    });
    (task, tally_rx)
}

/// The demo's script: kill, stop and restart providers, with calls between the steps.
async fn timeline(
    demo: &mut Demo,
    consumer: &Consumer,
    tally_rx: &watch::Receiver<Tally>,
) -> Result<(), String> {
    let calls = |n: u64| {
        let target = tally_rx.borrow().calls + n;
        let mut rx = tally_rx.clone();
        async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|t| t.calls >= target))
                    .await;
        }
    };

    calls(10).await;
    demo.signal("p1", libc::SIGKILL, "killed with SIGKILL")?;
    demo.event(
        "note",
        "p1's node stays until its ZooKeeper session expires; calls that pick it fail over",
    );
    wait_list(demo, consumer, 2).await;
    calls(5).await;
    demo.signal("p2", libc::SIGTERM, "asked to stop with SIGTERM")?;
    wait_list(demo, consumer, 1).await;
    calls(5).await;
    demo.start("p1")?;
    demo.start("p2")?;
    wait_list(demo, consumer, 3).await;
    calls(10).await;
    for name in ["p1", "p2", "p3"] {
        demo.signal(name, libc::SIGTERM, "asked to stop with SIGTERM")?;
    }
    wait_list(demo, consumer, 0).await;
    calls(5).await;
    demo.start("p3")?;
    wait_list(demo, consumer, 1).await;
    calls(5).await;
    demo.signal("p3", libc::SIGTERM, "asked to stop with SIGTERM")
}

impl Tally {
    /// Counts and prints one call's `result` (`t`: seconds since the start; `names`: the
    /// providers by port).
    fn record(
        &mut self,
        result: &Result<zoorpc::consumer::Answer<zoorpc::proto::HelloReply>, ConsumerError>,
        names: &BTreeMap<&'static str, u16>,
        t: f64,
    ) {
        self.calls += 1;
        match result {
            Ok(answer) => {
                let name = names
                    .iter()
                    .find(|(_, p)| answer.url.port() == **p)
                    .map(|(n, _)| *n)
                    .unwrap_or("?");
                self.ok += 1;
                *self.by_provider.entry(name).or_insert(0) += 1;
                let retried = if answer.attempts > 1 {
                    format!(" (after {} attempts)", answer.attempts)
                } else {
                    String::new()
                };
                println!(
                    "{t:>8.3}s  {:<9} ok  {name} {}{retried}",
                    "call", answer.url
                );
            }
            Err(ConsumerError::NoProviders { .. }) => {
                self.failed_no_providers += 1;
                println!("{t:>8.3}s  {:<9} err no providers registered", "call");
            }
            Err(e) => {
                self.failed_other += 1;
                println!("{t:>8.3}s  {:<9} err {e}", "call");
            }
        }
    }

    /// The summary lines, ending with the result.
    fn print_summary(&self, started: Instant) {
        println!();
        println!("summary after {:.1}s:", started.elapsed().as_secs_f64());
        println!(
            "  calls={} ok={} failed={}",
            self.calls,
            self.ok,
            self.failed_no_providers + self.failed_other
        );
        println!(
            "  failed while no provider was registered (expected): {}",
            self.failed_no_providers
        );
        println!(
            "  failed while a provider was registered: {}",
            self.failed_other
        );
        let spread: Vec<String> = self
            .by_provider
            .iter()
            .map(|(n, c)| format!("{n}={c}"))
            .collect();
        println!("  answers by provider: {}", spread.join(" "));
        if self.failed_other == 0 {
            println!("  result: every call made while a provider was registered succeeded");
        } else {
            println!("  result: FAILED: calls failed while providers were registered");
        }
    }
}

async fn wait_list(demo: &Demo, consumer: &Consumer, len: usize) {
    let t = Instant::now();
    let ok = consumer
        .wait_until(Duration::from_millis(SESSION_TIMEOUT_MS * 3), |u| {
            u.len() == len
        })
        .await;
    let names: Vec<&str> = consumer
        .urls()
        .iter()
        .map(|u| demo.name_of(u.as_str()))
        .collect();
    if ok {
        demo.event(
            "list",
            &format!(
                "consumer's list now {names:?} (after {} ms)",
                t.elapsed().as_millis()
            ),
        );
    } else {
        demo.event(
            "list",
            &format!("consumer's list still {names:?}, expected {len} entries"),
        );
    }
}
