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
//! The fleet is in `fleet.rs`, the counters and the process's figures in `measure.rs`, what is
//! printed in `report.rs`.

mod fleet;
pub mod measure;
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::task::JoinSet;
use zoorpc::consumer::Consumer;
use zoorpc::registry::{Registration, Session, SessionConfig};

use crate::quantile_ms;
use fleet::{connect_consumers, register_all, until_all_list, url_of};
use measure::{Counters, cpu_ms, mntr, rss_kib};
use report::Figures;
use zoorpc::cli::number;

/// `scale` options.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Providers (1 to 100000)
    #[arg(long, value_name = "P", default_value = "1000", value_parser = number(1..=100_000usize))]
    pub providers: usize,
    /// Consumers, one session each (1 to 1000)
    #[arg(long, value_name = "C", default_value = "100", value_parser = number(1..=1000usize))]
    pub consumers: usize,
    /// Churn events, 0 to 100000 (alternately a provider leaving and one joining)
    #[arg(long, value_name = "N", default_value = "100", value_parser = number(0..=100_000usize))]
    pub churn: usize,
    /// Sessions the providers are registered from (1 to 64)
    #[arg(long, value_name = "N", default_value = "4", value_parser = number(1..=64usize))]
    pub registrar_sessions: usize,
}

/// Registrations in flight at once.
const IN_FLIGHT: usize = 256;
/// Longest wait for convergence, and for one churn event.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(900);
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Joins and leaves measured without consumers, for the registering side's own traffic.
const CALIBRATION: usize = 20;

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let Options {
        providers: p,
        consumers: c,
        churn,
        registrar_sessions,
    } = options;
    let base = format!("/zoorpc-bench/scale-{}", std::process::id());
    let sessions = connect_sessions(zk, registrar_sessions).await?;
    let calibration = calibrate(zk, &sessions, &base).await?;

    // Consumers, one session each, all watching the (empty) base path.
    let rss_before = rss_kib()?;
    let t = Instant::now();
    let consumers = connect_consumers(zk, &base, c).await?;
    let connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    let rss_empty = rss_kib()?;
    eprintln!("scale: {c} consumers connected in {connect_ms:.0} ms; registering {p} providers");

    let (mut registrations, converged) = converge(zk, &sessions, &base, &consumers, p).await?;
    let rss_full = rss_kib()?;
    let idle = idle(zk).await?;
    let registration =
        (converged.traffic.requests - calibration.join.requests * p as f64) / (p as f64 * c as f64);
    let registration_bytes = (converged.traffic.response_bytes
        - calibration.join.response_bytes * p as f64)
        / (p as f64 * c as f64);
    let churned = churn_events(
        zk,
        &sessions,
        &base,
        &consumers,
        &mut registrations,
        churn,
        p,
    )
    .await?;
    let churn_per_event = churned.per_consumer_event(&calibration, idle, c);
    clean_up(consumers, registrations, &base).await;

    let figures = Figures {
        p,
        c,
        registrar_sessions,
        calibration,
        idle,
        converged,
        registration: Counters {
            requests: registration,
            response_bytes: registration_bytes,
        },
        churn_per_event,
        churned,
        rss: [rss_before, rss_empty, rss_full],
    };
    figures.report(zk);
    Ok(())
}

/// `count` sessions the providers are registered from.
async fn connect_sessions(zk: &str, count: usize) -> Result<Vec<Session>, String> {
    let mut sessions = Vec::new();
    for _ in 0..count {
        sessions.push(
            Session::connect(SessionConfig::new(zk))
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(sessions)
}

/// The registering side's own traffic per join and per leave, with nobody watching.
struct Calibration {
    join: Counters,
    leave: Counters,
}

async fn calibrate(zk: &str, sessions: &[Session], base: &str) -> Result<Calibration, String> {
    let before = mntr(zk)?;
    let probe = register_all(sessions, base, 0..CALIBRATION).await?;
    let joined = mntr(zk)?;
    for registration in probe {
        registration.deregister().await.map_err(|e| e.to_string())?;
    }
    let left = mntr(zk)?;
    Ok(Calibration {
        join: (joined - before).per(CALIBRATION as f64),
        leave: (left - joined).per(CALIBRATION as f64),
    })
}

/// How the P registrations at once went.
struct Converged {
    /// From the first registration until the last was acknowledged.
    registered_ms: f64,
    /// Until every consumer held all of them.
    all_ms: f64,
    /// Until half of the consumers did.
    half_ms: f64,
    /// ZooKeeper's traffic meanwhile (and a second after).
    traffic: Counters,
}

/// P registrations at once; time until every consumer holds all of them. Prints progress every
/// 10 s meanwhile.
async fn converge(
    zk: &str,
    sessions: &[Session],
    base: &str,
    consumers: &[Arc<Consumer>],
    p: usize,
) -> Result<(Vec<Registration>, Converged), String> {
    let c = consumers.len();
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
    let registering = register_all(sessions, base, CALIBRATION..CALIBRATION + p);
    let waiting = until_all_list(
        consumers,
        changes,
        p,
        t0,
        CONVERGE_TIMEOUT,
        Some(&converged),
    );
    let (registrations, took) = tokio::join!(registering, waiting);
    let registrations = registrations?;
    let registered_ms = t0.elapsed().as_secs_f64() * 1000.0;
    reporter.abort();
    let mut took = took?;
    let all_ms = quantile_ms(&mut took, 1.0);
    let half_ms = quantile_ms(&mut took, 0.5);
    // Let the last re-lists finish before reading the counters.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let traffic = mntr(zk)? - m_reg0;
    let converged = Converged {
        registered_ms,
        all_ms,
        half_ms,
        traffic,
    };
    Ok((registrations, converged))
}

/// Pings and other background traffic while nothing changes, per second.
async fn idle(zk: &str) -> Result<Counters, String> {
    let idle_for = Duration::from_secs(2);
    let m_idle0 = mntr(zk)?;
    tokio::time::sleep(idle_for).await;
    Ok((mntr(zk)? - m_idle0).per(idle_for.as_secs_f64()))
}

/// What the churn events took.
struct Churned {
    events: usize,
    joins: usize,
    leaves: usize,
    secs: f64,
    /// One sample per consumer per event: from the change until its list showed it.
    samples: Vec<Duration>,
    /// This process's CPU per event.
    cpu_ms: f64,
    /// ZooKeeper's traffic meanwhile (and a second after).
    traffic: Counters,
}

impl Churned {
    /// ZooKeeper's traffic per consumer per event, less the background and the registering
    /// side's own; NaN without events.
    fn per_consumer_event(&self, calibration: &Calibration, idle: Counters, c: usize) -> Counters {
        if self.events == 0 {
            return Counters {
                requests: f64::NAN,
                response_bytes: f64::NAN,
            };
        }
        let window = self.secs + 1.0;
        let (joins, leaves) = (self.joins as f64, self.leaves as f64);
        let requests = self.traffic.requests
            - idle.requests * window
            - calibration.join.requests * joins
            - calibration.leave.requests * leaves;
        let bytes = self.traffic.response_bytes
            - idle.response_bytes * window
            - calibration.join.response_bytes * joins
            - calibration.leave.response_bytes * leaves;
        Counters {
            requests,
            response_bytes: bytes,
        }
        .per(self.events as f64 * c as f64)
    }
}

/// Churn: one event at a time (a random provider leaves, a new one joins, alternately); every
/// consumer must show it before the next. `p`: the providers registered so far.
async fn churn_events(
    zk: &str,
    sessions: &[Session],
    base: &str,
    consumers: &[Arc<Consumer>],
    registrations: &mut Vec<Registration>,
    events: usize,
    p: usize,
) -> Result<Churned, String> {
    let mut samples = Vec::with_capacity(events * consumers.len());
    let mut next = CALIBRATION + p;
    let (mut joins, mut leaves) = (0usize, 0usize);
    let m_churn0 = mntr(zk)?;
    let churn_started = Instant::now();
    let cpu_before = cpu_ms()?;
    for event in 0..events {
        let changes: Vec<_> = consumers.iter().map(|c| c.updates()).collect();
        let t = Instant::now();
        if event % 2 == 0 && !registrations.is_empty() {
            let victim = rand::rng().random_range(0..registrations.len());
            let registration = registrations.swap_remove(victim);
            registration.deregister().await.map_err(|e| e.to_string())?;
            leaves += 1;
        } else {
            let url = url_of(next)?;
            next += 1;
            let registration =
                Registration::register(&sessions[event % sessions.len()], base, &url)
                    .await
                    .map_err(|e| e.to_string())?;
            registrations.push(registration);
            joins += 1;
        }
        let target = registrations.len();
        let took = until_all_list(consumers, changes, target, t, EVENT_TIMEOUT, None)
            .await
            .map_err(|e| format!("churn event {event}: {e}"))?;
        samples.extend(took);
    }
    let secs = churn_started.elapsed().as_secs_f64();
    let cpu_ms = (cpu_ms()? - cpu_before) / events.max(1) as f64;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Churned {
        events,
        joins,
        leaves,
        secs,
        samples,
        cpu_ms,
        traffic: mntr(zk)? - m_churn0,
    })
}

/// Consumers first (so they do not follow the teardown), then the providers, then the base.
async fn clean_up(consumers: Vec<Arc<Consumer>>, registrations: Vec<Registration>, base: &str) {
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
        let _ = client.delete(base, None).await;
    }
}
