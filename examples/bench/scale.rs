//! `scale`: a large fleet. C consumers, each with its own ZooKeeper session, watch one base
//! path; then P providers register (from a few shared sessions, all at once, as fast as
//! ZooKeeper takes them). Measured:
//! - convergence: from the first registration until every consumer's live list holds all P;
//! - churn, one event at a time (a random provider leaves, a new one joins): the time from the
//!   change until each consumer's list shows it (one sample per consumer per event);
//! - ZooKeeper's traffic per consumer per event, from the server's own counters (`mntr`:
//!   `zk_packets_received`, `zk_response_bytes`) before and after, less what the registering
//!   side costs (measured alone first) and the sessions' pings (measured while idle);
//! - resident memory per consumer (`VmRSS` before the consumers and after they hold P).
//!
//! Providers are registrations only (nothing listens at their URLs; consumers dial lazily).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use zoorpc::consumer::{Consumer, ConsumerConfig};
use zoorpc::registry::{ProviderUrl, Registration, Session, SessionConfig};

use crate::{json_num, quantile_ms};

/// `scale` options.
pub struct Options {
    pub providers: usize,
    pub consumers: usize,
    /// Churn events (alternately a provider leaving and one joining).
    pub churn: usize,
    /// Sessions the providers are registered from.
    pub registrar_sessions: usize,
}

/// Registrations in flight at once.
const IN_FLIGHT: usize = 256;
/// Longest wait for convergence, and for one churn event.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(900);
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Joins and leaves measured without consumers, for the registering side's own traffic.
const CALIBRATION: usize = 20;

/// ZooKeeper's request and response-byte counters at one instant.
#[derive(Clone, Copy, Debug)]
struct Counters {
    requests: f64,
    response_bytes: f64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, earlier: Counters) -> Counters {
        Counters {
            requests: self.requests - earlier.requests,
            response_bytes: self.response_bytes - earlier.response_bytes,
        }
    }
}

/// Reads `mntr` from the first server of the connect string.
fn mntr(zk: &str) -> Result<Counters, String> {
    let first = zk.split(',').next().unwrap_or(zk);
    let address = first.split('/').next().unwrap_or(first);
    let ask = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"mntr")?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    };
    let reply = ask().map_err(|e| format!("asking {address} for mntr: {e}"))?;
    let values: HashMap<&str, f64> = reply
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('\t')?;
            Some((key, value.trim().parse().ok()?))
        })
        .collect();
    let get = |key: &str| {
        values.get(key).copied().ok_or_else(|| {
            format!(
                "{address} did not report {key} in mntr (is `mntr` in 4lw.commands.whitelist? it answered {:?})",
                reply.chars().take(200).collect::<String>()
            )
        })
    };
    Ok(Counters {
        requests: get("zk_packets_received")?,
        response_bytes: get("zk_response_bytes")?,
    })
}

/// Resident memory of this process in KiB.
fn rss_kib() -> Result<f64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_owned())
}

/// CPU time (user and system) this process has used, in ms: what the consumers' side costs,
/// whatever else the machine runs (`/proc/self/stat`, in clock ticks of 10 ms).
fn cpu_ms() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("reading /proc/self/stat: {e}"))?;
    // After the command name (in parentheses): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) * 10.0),
        _ => Err("no utime/stime in /proc/self/stat".to_owned()),
    }
}

/// A distinct URL for provider `i` (nothing listens there).
fn url_of(i: usize) -> Result<ProviderUrl, String> {
    let host = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    ProviderUrl::http(&host, 9000).map_err(|e| e.to_string())
}

/// Registers providers `range` from `sessions` in turn, `IN_FLIGHT` at a time.
async fn register_all(
    sessions: &[Session],
    base: &str,
    range: std::ops::Range<usize>,
) -> Result<Vec<Registration>, String> {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for i in range {
        let session = sessions[i % sessions.len()].clone();
        let base = base.to_owned();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
            let url = url_of(i)?;
            Registration::register(&session, &base, &url)
                .await
                .map_err(|e| format!("registering provider {i}: {e}"))
        });
    }
    let mut registrations = Vec::new();
    while let Some(done) = tasks.join_next().await {
        registrations.push(done.map_err(|e| e.to_string())??);
    }
    Ok(registrations)
}

/// Waits until every consumer lists `count` endpoints; the time each took from `since`.
/// `changes` were subscribed before the change was made.
async fn until_all_list(
    consumers: &[Arc<Consumer>],
    changes: Vec<tokio::sync::watch::Receiver<u64>>,
    count: usize,
    since: Instant,
    timeout: Duration,
    progress: Option<&AtomicUsize>,
) -> Result<Vec<Duration>, String> {
    let mut tasks = JoinSet::new();
    for (consumer, mut changes) in consumers.iter().cloned().zip(changes) {
        tasks.spawn(async move {
            loop {
                changes.borrow_and_update();
                if consumer.endpoints().len() == count {
                    return Some(since.elapsed());
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        });
    }
    let mut took = Vec::with_capacity(consumers.len());
    let deadline = tokio::time::Instant::now() + timeout;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(Some(t)))) => {
                took.push(t);
                if let Some(p) = progress {
                    p.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Some(_)) => return Err("a consumer stopped following".to_owned()),
            Ok(None) => break,
            Err(_) => {
                return Err(format!(
                    "after {timeout:?} only {} of {} consumers list {count} providers",
                    took.len(),
                    consumers.len()
                ));
            }
        }
    }
    Ok(took)
}

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let Options {
        providers: p,
        consumers: c,
        churn,
        registrar_sessions,
    } = options;
    let base = format!("/zoorpc-bench/scale-{}", std::process::id());
    let mut sessions = Vec::new();
    for _ in 0..registrar_sessions {
        sessions.push(
            Session::connect(SessionConfig::new(zk))
                .await
                .map_err(|e| e.to_string())?,
        );
    }

    // The registering side's own traffic per join and per leave, with nobody watching.
    let before = mntr(zk)?;
    let probe = register_all(&sessions, &base, 0..CALIBRATION).await?;
    let joined = mntr(zk)?;
    for registration in probe {
        registration.deregister().await.map_err(|e| e.to_string())?;
    }
    let left = mntr(zk)?;
    let join_cost = (joined - before).requests / CALIBRATION as f64;
    let leave_cost = (left - joined).requests / CALIBRATION as f64;
    let join_bytes = (joined - before).response_bytes / CALIBRATION as f64;
    let leave_bytes = (left - joined).response_bytes / CALIBRATION as f64;

    // Consumers, one session each, all watching the (empty) base path.
    let rss_before = rss_kib()?;
    let t = Instant::now();
    let mut connecting = JoinSet::new();
    for _ in 0..c {
        let config = ConsumerConfig::new(zk, &base);
        connecting.spawn(async move { Consumer::connect_with(config).await });
    }
    let mut consumers = Vec::with_capacity(c);
    while let Some(done) = connecting.join_next().await {
        let consumer = done
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("connecting a consumer: {e}"))?;
        consumers.push(Arc::new(consumer));
    }
    let connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    let rss_empty = rss_kib()?;
    eprintln!("scale: {c} consumers connected in {connect_ms:.0} ms; registering {p} providers");

    // P registrations at once; time until every consumer holds all of them.
    let changes: Vec<_> = consumers.iter().map(|c| c.updates()).collect();
    let converged = Arc::new(AtomicUsize::new(0));
    let reporter = tokio::spawn({
        let converged = converged.clone();
        async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!(
                    "scale: {:.0} s, {} of {c} consumers hold all {p} providers",
                    started.elapsed().as_secs_f64(),
                    converged.load(Ordering::Relaxed)
                );
            }
        }
    });
    let m_reg0 = mntr(zk)?;
    let t0 = Instant::now();
    let registering = register_all(&sessions, &base, CALIBRATION..CALIBRATION + p);
    let waiting = until_all_list(
        &consumers,
        changes,
        p,
        t0,
        CONVERGE_TIMEOUT,
        Some(&converged),
    );
    let (registrations, took) = tokio::join!(registering, waiting);
    let mut registrations = registrations?;
    let registered_ms = t0.elapsed().as_secs_f64() * 1000.0;
    reporter.abort();
    let mut took = took?;
    let converge_ms = quantile_ms(&mut took, 1.0);
    let converge_p50 = quantile_ms(&mut took, 0.5);
    // Let the last re-lists finish before reading the counters.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m_reg1 = mntr(zk)?;
    let rss_full = rss_kib()?;

    // Pings and other background traffic while nothing changes.
    let idle_for = Duration::from_secs(2);
    let m_idle0 = mntr(zk)?;
    tokio::time::sleep(idle_for).await;
    let idle = (mntr(zk)? - m_idle0).requests / idle_for.as_secs_f64();
    let idle_bytes = (mntr(zk)? - m_idle0).response_bytes / idle_for.as_secs_f64();

    let registration_phase = m_reg1 - m_reg0;
    let reg_requests = (registration_phase.requests - join_cost * p as f64) / (p as f64 * c as f64);
    let reg_bytes =
        (registration_phase.response_bytes - join_bytes * p as f64) / (p as f64 * c as f64);

    // Churn: one event at a time; every consumer must show it before the next.
    let mut samples = Vec::with_capacity(churn * c);
    let mut next = CALIBRATION + p;
    let (mut joins, mut leaves) = (0usize, 0usize);
    let m_churn0 = mntr(zk)?;
    let churn_started = Instant::now();
    let cpu_before = cpu_ms()?;
    for event in 0..churn {
        let changes: Vec<_> = consumers.iter().map(|c| c.updates()).collect();
        let t = Instant::now();
        let target = if event % 2 == 0 && !registrations.is_empty() {
            let victim = rand::rng().random_range(0..registrations.len());
            let registration = registrations.swap_remove(victim);
            registration.deregister().await.map_err(|e| e.to_string())?;
            leaves += 1;
            registrations.len()
        } else {
            let url = url_of(next)?;
            next += 1;
            let registration =
                Registration::register(&sessions[event % sessions.len()], &base, &url)
                    .await
                    .map_err(|e| e.to_string())?;
            registrations.push(registration);
            joins += 1;
            registrations.len()
        };
        let took = until_all_list(&consumers, changes, target, t, EVENT_TIMEOUT, None)
            .await
            .map_err(|e| format!("churn event {event}: {e}"))?;
        samples.extend(took);
    }
    let churn_secs = churn_started.elapsed().as_secs_f64();
    let churn_cpu_ms = (cpu_ms()? - cpu_before) / churn.max(1) as f64;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let churn_traffic = mntr(zk)? - m_churn0;
    let churn_window = churn_secs + 1.0;
    let (churn_requests, churn_bytes) = if churn > 0 {
        let requests = churn_traffic.requests
            - idle * churn_window
            - join_cost * joins as f64
            - leave_cost * leaves as f64;
        let bytes = churn_traffic.response_bytes
            - idle_bytes * churn_window
            - join_bytes * joins as f64
            - leave_bytes * leaves as f64;
        (
            requests / (churn as f64 * c as f64),
            bytes / (churn as f64 * c as f64),
        )
    } else {
        (f64::NAN, f64::NAN)
    };
    let churn_p50 = quantile_ms(&mut samples, 0.5);
    let churn_p99 = quantile_ms(&mut samples, 0.99);
    let churn_max = quantile_ms(&mut samples, 1.0);
    let rss_per_consumer = (rss_full - rss_before) / c as f64;

    // Clean up: consumers first (so they do not follow the teardown), then the providers.
    let cleanup = consumers
        .first()
        .and_then(|c| c.session().map(|s| s.client()));
    drop(consumers);
    let mut leaving = JoinSet::new();
    for registration in registrations {
        leaving.spawn(registration.deregister());
    }
    while leaving.join_next().await.is_some() {}
    if let Some(client) = cleanup {
        let _ = client.delete(&base, None).await;
    }

    println!(
        "scale: {p} providers (from {registrar_sessions} sessions, {IN_FLIGHT} registrations in flight), \
         {c} consumers (one session each), ZooKeeper {zk}"
    );
    println!(
        "registered all in {registered_ms:.0} ms; every consumer held all {p} after {converge_ms:.0} ms \
         (half of them after {converge_p50:.0} ms); target <= 5000 ms"
    );
    println!(
        "registration phase, per consumer per registered provider: {reg_requests:.3} requests, \
         {reg_bytes:.0} response bytes"
    );
    println!(
        "churn: {churn} events ({leaves} leaves, {joins} joins) in {churn_secs:.1} s; per consumer per event: \
         {churn_requests:.3} requests (target <= 2), {churn_bytes:.0} response bytes (target <= 1024); \
         propagation p50 {churn_p50:.3} ms p99 {churn_p99:.3} ms max {churn_max:.3} ms (target p99 <= 50 ms); \
         this process's CPU per event {churn_cpu_ms:.1} ms (all {c} consumers and the registering side)"
    );
    println!(
        "(subtracted: registering side {join_cost:.1} requests per join, {leave_cost:.1} per leave; \
         background {idle:.1} requests/s)"
    );
    println!(
        "resident memory: {:.0} KiB per consumer with {p} providers listed ({:.0} KiB per consumer before any provider; \
         process {rss_before:.0} → {rss_empty:.0} → {rss_full:.0} KiB, the registrations included)",
        rss_per_consumer,
        (rss_empty - rss_before) / c as f64
    );
    println!(
        "{{\"scenario\":\"scale\",\"providers\":{p},\"consumers\":{c},\"converge_ms\":{},\"zk_requests_per_event_per_consumer\":{},\"zk_response_bytes_per_event_per_consumer\":{},\"churn_p99_ms\":{},\"churn_cpu_ms_per_event\":{},\"rss_kib_per_consumer\":{}}}",
        json_num(converge_ms),
        json_num(churn_requests),
        json_num(churn_bytes),
        json_num(churn_p99),
        json_num(churn_cpu_ms),
        json_num(rss_per_consumer),
    );
    Ok(())
}
