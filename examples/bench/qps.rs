//! `qps`: what the balancer costs per call. Unary `Say` calls (no delay) through
//! `consumer.channel()` over N providers, and in the same run through a plain tonic `Channel`
//! to one provider, in alternating segments so that both see the same machine. Closed loop:
//! `concurrency` callers, each calling again as soon as it has an answer.

use std::time::Duration;

use zoorpc::apps::echo::EchoClient;
use zoorpc::consumer::{Consumer, ConsumerConfig};

use crate::load::{Stats, closed_loop, remove_base, start_providers, stop_providers};
use crate::{json_num, quantile_ms};

/// `qps` options.
pub struct Options {
    pub providers: usize,
    /// Measured time per side (balanced, direct).
    pub duration: Duration,
    pub concurrency: usize,
}

/// Each side's time is split into this many segments, alternating with the other side's.
const SEGMENTS: u32 = 4;
const WARMUP: Duration = Duration::from_secs(1);

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let base = format!("/zoorpc-bench/qps-{}", std::process::id());
    let providers = start_providers(zk, &base, options.providers, Duration::ZERO).await?;
    let consumer = Consumer::connect_with(ConsumerConfig::new(zk, &base))
        .await
        .map_err(|e| e.to_string())?;
    crate::load::wait_for_providers(&consumer, options.providers).await?;
    let balanced = EchoClient::new(consumer.channel());
    let first = providers[0].url().endpoint();
    let channel = tonic::transport::Endpoint::from_shared(first.clone())
        .map_err(|e| format!("{first}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("connecting to {first}: {e}"))?;
    let direct = EchoClient::new(channel);

    let c = options.concurrency;
    closed_loop(balanced.clone(), c, WARMUP).await;
    closed_loop(direct.clone(), c, WARMUP).await;
    let segment = options.duration / SEGMENTS;
    let (mut through, mut plain) = (Stats::default(), Stats::default());
    for _ in 0..SEGMENTS {
        through.merge(closed_loop(balanced.clone(), c, segment).await);
        plain.merge(closed_loop(direct.clone(), c, segment).await);
    }
    drop((balanced, direct));
    stop_providers(providers).await;
    remove_base(&consumer).await;

    for (name, stats) in [("consumer.channel()", &through), ("direct", &plain)] {
        if stats.failed > 0 {
            println!(
                "{name}: {} calls failed, first: {}",
                stats.failed,
                stats.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    let (consumer_qps, direct_qps) = (through.qps(), plain.qps());
    let ratio = consumer_qps / direct_qps;
    let (cp50, cp99) = (
        quantile_ms(&mut through.latencies, 0.5),
        quantile_ms(&mut through.latencies, 0.99),
    );
    let (dp50, dp99) = (
        quantile_ms(&mut plain.latencies, 0.5),
        quantile_ms(&mut plain.latencies, 0.99),
    );
    println!(
        "qps: {} providers, {c} callers, {:?} per side in {SEGMENTS} alternating segments, ZooKeeper {zk}",
        options.providers, options.duration
    );
    println!(
        "consumer.channel(): {consumer_qps:.0} calls/s, p50 {cp50:.3} ms, p99 {cp99:.3} ms ({} calls)",
        through.ok()
    );
    println!(
        "direct channel:     {direct_qps:.0} calls/s, p50 {dp50:.3} ms, p99 {dp99:.3} ms ({} calls)",
        plain.ok()
    );
    println!(
        "ratio {ratio:.3} (target >= 0.95), p99 ratio {:.3} (target <= 1.1)",
        cp99 / dp99
    );
    println!(
        "{{\"scenario\":\"qps\",\"consumer_qps\":{},\"direct_qps\":{},\"ratio\":{},\"consumer_p99_ms\":{},\"direct_p99_ms\":{}}}",
        json_num(consumer_qps),
        json_num(direct_qps),
        json_num(ratio),
        json_num(cp99),
        json_num(dp99),
    );
    Ok(())
}
