//! `propagation`: how fast a registration reaches a consumer's live list, and a deregistration
//! leaves it. Provider and consumer have separate ZooKeeper sessions, as in production.

use std::time::{Duration, Instant};

use zoorpc::consumer::Consumer;
use zoorpc::registry::{ProviderUrl, Registration, Session, SessionConfig};

use crate::quantile_ms;

const WARMUP: usize = 10;

pub async fn run(zk: &str, rounds: usize) -> Result<(), String> {
    let base = format!("/zoorpc-bench/propagation-{}", std::process::id());
    let provider_session = Session::connect(SessionConfig::new(zk))
        .await
        .map_err(|e| e.to_string())?;
    let consumer = Consumer::connect(zk, &base)
        .await
        .map_err(|e| e.to_string())?;
    let mut add = Vec::with_capacity(rounds);
    let mut remove = Vec::with_capacity(rounds);
    for round in 0..rounds + WARMUP {
        let (added, removed) = one_round(&provider_session, &consumer, &base, round).await?;
        if round >= WARMUP {
            add.push(added);
            remove.push(removed);
        }
    }
    let raw = provider_session.client();
    let _ = raw.delete(&base, None).await;
    println!(
        "propagation over {rounds} rounds (after {WARMUP} warm-up rounds), ZooKeeper {zk}: \
         register→listed p50 {:.3} ms p99 {:.3} ms max {:.3} ms; deregister→unlisted p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        quantile_ms(&mut add, 0.5),
        quantile_ms(&mut add, 0.99),
        quantile_ms(&mut add, 1.0),
        quantile_ms(&mut remove, 0.5),
        quantile_ms(&mut remove, 0.99),
        quantile_ms(&mut remove, 1.0),
    );
    println!(
        "{{\"scenario\":\"propagation\",\"rounds\":{rounds},\"add_p50_ms\":{:.3},\"add_p99_ms\":{:.3},\"remove_p50_ms\":{:.3},\"remove_p99_ms\":{:.3}}}",
        quantile_ms(&mut add, 0.5),
        quantile_ms(&mut add, 0.99),
        quantile_ms(&mut remove, 0.5),
        quantile_ms(&mut remove, 0.99),
    );
    Ok(())
}

/// Round `round`: registers a provider of a URL of its own and deregisters it, each time
/// waiting (at most 5 s) for the consumer to see it; how long each took to be seen.
async fn one_round(
    provider_session: &Session,
    consumer: &Consumer,
    base: &str,
    round: usize,
) -> Result<(Duration, Duration), String> {
    // A distinct URL per round so each change is unambiguous.
    let port = 10_000 + (round % 50_000) as u16;
    let url = ProviderUrl::http("127.0.0.1", port).map_err(|e| e.to_string())?;

    let t = Instant::now();
    let registration = Registration::register(provider_session, base, &url)
        .await
        .map_err(|e| e.to_string())?;
    let seen = consumer
        .wait_until(Duration::from_secs(5), |urls| urls.contains(&url))
        .await;
    let added = t.elapsed();
    if !seen {
        return Err(format!("round {round}: registration not seen within 5 s"));
    }

    let t = Instant::now();
    registration.deregister().await.map_err(|e| e.to_string())?;
    let gone = consumer
        .wait_until(Duration::from_secs(5), |urls| !urls.contains(&url))
        .await;
    let removed = t.elapsed();
    if !gone {
        return Err(format!("round {round}: deregistration not seen within 5 s"));
    }
    Ok((added, removed))
}
