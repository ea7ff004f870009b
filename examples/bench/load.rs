//! Load for the call scenarios: echo providers in this process, and a closed loop of
//! concurrent callers on any channel a tonic client runs on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tonic::codegen::{Body, Bytes, StdError};
use zoorpc::apps::echo::{EchoClient, EchoRequest, EchoServer, EchoService};
use zoorpc::consumer::Consumer;
use zoorpc::provider::{Provider, ProviderConfig};

/// What a closed loop measured.
#[derive(Debug, Default)]
pub struct Stats {
    /// Latency of every successful call.
    pub latencies: Vec<Duration>,
    /// Failed calls.
    pub failed: u64,
    /// The first failure, to say why.
    pub first_error: Option<String>,
    /// Successful calls per answering server (`host:port`).
    pub by_server: HashMap<String, u64>,
    /// How long the loop ran.
    pub elapsed: Duration,
}

impl Stats {
    /// Counts one call: its latency and the server that answered, or its failure (the first
    /// one kept, to say why).
    fn record(&mut self, latency: Duration, answered: Result<String, tonic::Status>) {
        match answered {
            Ok(server) => {
                self.latencies.push(latency);
                *self.by_server.entry(server).or_insert(0) += 1;
            }
            Err(status) => {
                self.failed += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(status.to_string());
                }
            }
        }
    }

    /// Successful calls.
    pub fn ok(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// Successful calls per second.
    pub fn qps(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Adds another loop's figures (run with the same settings).
    pub fn merge(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        for (server, n) in other.by_server {
            *self.by_server.entry(server).or_default() += n;
        }
        self.elapsed += other.elapsed;
    }

    /// Says how many calls of the loop `name` failed, and the first failure's cause; nothing
    /// when none did.
    pub fn print_failures(&self, name: &str) {
        if self.failed > 0 {
            println!(
                "{name}: {} calls failed, first: {}",
                self.failed,
                self.first_error.as_deref().unwrap_or("?")
            );
        }
    }

    /// The share of successful calls `server` answered.
    pub fn share_of(&self, server: &str) -> f64 {
        let n = self.by_server.get(server).copied().unwrap_or(0);
        n as f64 / (self.ok() as f64).max(1.0)
    }
}

/// The request every scenario sends: a short text, no payload.
pub fn request() -> EchoRequest {
    EchoRequest {
        text: "bench".to_owned(),
        ..Default::default()
    }
}

/// Runs `concurrency` callers, each calling `Say` one after another on its own clone of
/// `client`, for `duration`.
pub async fn closed_loop<T>(client: EchoClient<T>, concurrency: usize, duration: Duration) -> Stats
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    closed_loop_over(std::slice::from_ref(&client), concurrency, duration).await
}

/// As [`closed_loop`], caller `i` calling through `clients[i % clients.len()]`.
pub async fn closed_loop_over<T>(
    clients: &[EchoClient<T>],
    concurrency: usize,
    duration: Duration,
) -> Stats
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    if clients.is_empty() {
        return Stats::default();
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..concurrency {
        let mut client = clients[i % clients.len()].clone();
        tasks.spawn(async move {
            let mut stats = Stats::default();
            while Instant::now() < deadline {
                let t = Instant::now();
                let answered = client.say(request()).await;
                stats.record(t.elapsed(), answered.map(|r| r.into_inner().server));
            }
            stats
        });
    }
    let mut total = Stats::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(stats) => {
                let elapsed = total.elapsed;
                total.merge(stats);
                total.elapsed = elapsed;
            }
            Err(e) => {
                total.failed += 1;
                total.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Starts `count` echo providers in this process under `base`, answering after `delay`.
pub async fn start_providers(
    zk: &str,
    base: &str,
    count: usize,
    delay: Duration,
) -> Result<Vec<Provider>, String> {
    let mut providers = Vec::with_capacity(count);
    for _ in 0..count {
        let provider = Provider::serve(
            ProviderConfig::new(zk, base, 0),
            EchoServer::new(EchoService::new(delay)),
        )
        .await
        .map_err(|e| format!("starting an echo provider: {e}"))?;
        providers.push(provider);
    }
    Ok(providers)
}

/// Stops `providers` (deregister, drain).
pub async fn stop_providers(providers: Vec<Provider>) {
    for provider in providers {
        if let Err(e) = provider.shutdown().await {
            eprintln!("warning: stopping a provider: {e}");
        }
    }
}

/// Waits until `consumer` lists `count` providers (at most 10 s).
pub async fn wait_for_providers(consumer: &Consumer, count: usize) -> Result<(), String> {
    if consumer
        .wait_until(Duration::from_secs(10), |urls| urls.len() == count)
        .await
    {
        Ok(())
    } else {
        Err(format!(
            "the consumer of {} did not list {count} providers within 10 s (it lists {})",
            consumer.base_path(),
            consumer.urls().len()
        ))
    }
}

/// Deletes the (empty) base path a scenario used, and its parent if empty; best effort.
pub async fn remove_base(consumer: &Consumer) {
    let Some(client) = consumer.session().map(|s| s.client()) else {
        return;
    };
    let base = consumer.base_path();
    let _ = client.delete(base, None).await;
    if let Some((parent, _)) = base.rsplit_once('/')
        && !parent.is_empty()
    {
        let _ = client.delete(parent, None).await;
    }
}
