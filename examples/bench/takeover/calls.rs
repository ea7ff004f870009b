//! The bench's clients: the `MasterClient` loop whose answers time the rounds, and the calls
//! sent straight to a stopped master's own address.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zoorpc::consumer::MasterClient;
use zoorpc::proto::{HelloRequest, HelloServiceClient};

use super::{Last, STEP_TIMEOUT};

/// Pause between two calls of the client loop, and the most calls it keeps in flight.
const PACE: Duration = Duration::from_millis(5);
const MAX_IN_FLIGHT: usize = 20_000;

/// The client loop and its counts.
pub(super) struct Loop {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    pub(super) last: Last,
    calls: Arc<AtomicU64>,
    pub(super) failed: Arc<AtomicU64>,
}

impl Loop {
    pub(super) fn start(client: Arc<MasterClient>) -> Loop {
        let (stop, stopped) = watch::channel(false);
        let (last_tx, last) = watch::channel((Instant::now(), String::new()));
        let failed = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(caller(
            client,
            Arc::new(last_tx),
            calls.clone(),
            failed.clone(),
            stopped,
        ));
        Loop {
            stop,
            task,
            last,
            calls,
            failed,
        }
    }

    /// Stops the loop once its calls in flight finished: (calls, failed).
    pub(super) async fn finish(self) -> (u64, u64) {
        self.stop.send_replace(true);
        let _ = self.task.await;
        (
            self.calls.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Calls to `address` (a stopped server), one every 50 ms until `stop`, in flight together;
/// resolves to whether any was answered OK (as master).
pub(super) fn direct_calls(
    address: &str,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<bool> {
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
