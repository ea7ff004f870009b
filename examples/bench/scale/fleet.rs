//! The fleet `scale` drives: providers (registrations only, from a few shared sessions) and
//! consumers (one session each), and the wait until every consumer lists a given count.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use zoorpc::consumer::{Consumer, ConsumerConfig};
use zoorpc::registry::{ProviderUrl, Registration, Session};

use super::IN_FLIGHT;

/// A distinct URL for provider `i` (nothing listens there).
pub fn url_of(i: usize) -> Result<ProviderUrl, String> {
    let host = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    ProviderUrl::http(&host, 9000).map_err(|e| e.to_string())
}

/// Registers providers `range` from `sessions` in turn, `IN_FLIGHT` at a time.
pub async fn register_all(
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

/// `count` consumers, one session each, all watching `base`, connected at once.
pub async fn connect_consumers(
    zk: &str,
    base: &str,
    count: usize,
) -> Result<Vec<Arc<Consumer>>, String> {
    let mut connecting = JoinSet::new();
    for _ in 0..count {
        let config = ConsumerConfig::new(zk, base);
        connecting.spawn(async move { Consumer::connect_with(config).await });
    }
    let mut consumers = Vec::with_capacity(count);
    while let Some(done) = connecting.join_next().await {
        let consumer = done
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("connecting a consumer: {e}"))?;
        consumers.push(Arc::new(consumer));
    }
    Ok(consumers)
}

/// Waits until every consumer lists `count` endpoints; the time each took from `since`.
/// `changes` were subscribed before the change was made.
pub async fn until_all_list(
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
