//! `handover`: how fast mastership moves when the master resigns. Master and standby hold
//! separate ZooKeeper sessions, as separate servers would. Each round the master resigns; the
//! time is from the resign call until the standby has adopted the master role (the instant its
//! `is_master()` turned true). The resigned one then joins again as the standby.

use std::time::{Duration, Instant};

use zoorpc::registry::election::companion_path;
use zoorpc::registry::{MasterElection, Role, Session, SessionConfig};

use crate::quantile_ms;

const WARMUP: usize = 10;

/// A contender and the session it holds.
type Contender = (Session, MasterElection);

pub async fn run(zk: &str, rounds: usize) -> Result<(), String> {
    let path = format!(
        "/zoorpc-bench/handover-{}/HelloService:1.0.0",
        std::process::id()
    );
    let (a_session, a) = join(zk, &path, "127.0.0.1:1").await?;
    let (b_session, b) = join(zk, &path, "127.0.0.1:2").await?;
    if !a.is_master() || b.is_master() {
        return Err(format!("unexpected start: a {}, b {}", a.role(), b.role()));
    }
    let mut master = (a_session, a);
    let mut standby = (b_session, b);
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds + WARMUP {
        let (took, rejoined) = hand_over(master, &standby, &path, round).await?;
        if round >= WARMUP {
            samples.push(took);
        }
        master = standby;
        standby = rejoined;
    }
    let raw = master.0.client();
    drop(standby);
    master.1.resign().await.map_err(|e| e.to_string())?;
    let _ = raw.delete(&companion_path(&path), None).await;
    if let Some((parent, _)) = path.rsplit_once('/') {
        let _ = raw.delete(parent, None).await;
    }
    println!(
        "handover over {rounds} rounds (after {WARMUP} warm-up rounds), ZooKeeper {zk}: \
         resign→standby is master p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        quantile_ms(&mut samples, 0.5),
        quantile_ms(&mut samples, 0.99),
        quantile_ms(&mut samples, 1.0),
    );
    println!(
        "{{\"scenario\":\"handover\",\"rounds\":{rounds},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        quantile_ms(&mut samples, 0.5),
        quantile_ms(&mut samples, 0.99),
    );
    Ok(())
}

/// A contender for `path` as `address`, in a session of its own.
async fn join(zk: &str, path: &str, address: &str) -> Result<Contender, String> {
    let session = Session::connect(SessionConfig::new(zk))
        .await
        .map_err(|e| e.to_string())?;
    let election = MasterElection::join(&session, path, address)
        .await
        .map_err(|e| e.to_string())?;
    Ok((session, election))
}

/// One round: `master` resigns; the time until `standby` adopted the master role, and the
/// resigned one joined again (in the same session) as the standby.
async fn hand_over(
    master: Contender,
    standby: &Contender,
    path: &str,
    round: usize,
) -> Result<(Duration, Contender), String> {
    let mut changes = standby.1.changes();
    let t = Instant::now();
    let (session, election) = master;
    let address = election.address().to_owned();
    election.resign().await.map_err(|e| e.to_string())?;
    let took = loop {
        let change = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .map_err(|_| format!("round {round}: the standby did not take over within 5 s"))?
            .ok_or("the standby left")?;
        if let Role::Master { .. } = change.role {
            break change.at.saturating_duration_since(t);
        }
    };
    let rejoined = MasterElection::join(&session, path, &address)
        .await
        .map_err(|e| e.to_string())?;
    if rejoined.is_master() {
        return Err(format!(
            "round {round}: the resigned contender took over again"
        ));
    }
    Ok((took, (session, rejoined)))
}
