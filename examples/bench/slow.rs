//! `slow`: what one slow provider does to the tail. Three providers, one answering 10× slower
//! than the others; p50/p99 per strategy, beside a healthy baseline (three equal providers,
//! random) measured in the same run. Closed loop of `concurrency` callers per phase, after a
//! warm-up (least-loaded learns latencies from answers).

use std::time::Duration;

use zoorpc::apps::echo::EchoClient;
use zoorpc::consumer::{Consumer, ConsumerConfig, Strategy};

use crate::load::{Stats, closed_loop, remove_base, start_providers, stop_providers};
use zoorpc::cli::{millis, number};

use crate::{json_num, quantile_ms, seconds};

/// `slow` options.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Measured seconds per phase (1 to 3600)
    #[arg(long = "secs", value_name = "S", default_value = "5", value_parser = seconds(1..=3600))]
    pub duration: Duration,
    /// Calls in flight (1 to 4096)
    #[arg(long, value_name = "C", default_value = "16", value_parser = number(1..=4096usize))]
    pub concurrency: usize,
    /// The healthy providers' delay in milliseconds, 1 to 1000 (the slow one's is 10x)
    #[arg(long = "delay-ms", value_name = "MS", default_value = "2", value_parser = millis(1..=1000))]
    pub delay: Duration,
}

/// One measured phase.
struct Phase {
    name: &'static str,
    stats: Stats,
    /// Share of the calls the slow provider answered.
    slow_share: f64,
}

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let pid = std::process::id();
    let healthy_base = format!("/zoorpc-bench/slow-{pid}/healthy");
    let slow_base = format!("/zoorpc-bench/slow-{pid}/one-slow");
    let healthy = start_providers(zk, &healthy_base, 3, options.delay).await?;
    let mut mixed = start_providers(zk, &slow_base, 2, options.delay).await?;
    mixed.extend(start_providers(zk, &slow_base, 1, options.delay * 10).await?);
    let slow_server = mixed[2].local_addr().to_string();
    let warmup = (options.duration / 5).min(Duration::from_secs(1));

    let mut phases = Vec::new();
    let plan = [
        ("baseline", &healthy_base, Strategy::Random),
        ("random", &slow_base, Strategy::Random),
        ("round_robin", &slow_base, Strategy::RoundRobin),
        ("least_loaded", &slow_base, Strategy::LeastLoaded),
    ];
    let mut consumers = Vec::new();
    for (name, base, strategy) in plan {
        let consumer = Consumer::connect_with(ConsumerConfig::new(zk, base).strategy(strategy))
            .await
            .map_err(|e| e.to_string())?;
        crate::load::wait_for_providers(&consumer, 3).await?;
        let client = EchoClient::new(consumer.channel());
        closed_loop(client.clone(), options.concurrency, warmup).await;
        let stats = closed_loop(client, options.concurrency, options.duration).await;
        stats.print_failures(name);
        let slow_share = stats.share_of(&slow_server);
        phases.push(Phase {
            name,
            stats,
            slow_share,
        });
        consumers.push(consumer);
    }
    stop_providers(healthy).await;
    stop_providers(mixed).await;
    for consumer in &consumers {
        remove_base(consumer).await;
    }
    report(zk, &options, warmup, phases);
    Ok(())
}

/// A line per phase, the least-loaded strategy against the baseline, then the JSON object.
fn report(zk: &str, options: &Options, warmup: Duration, mut phases: Vec<Phase>) {
    println!(
        "slow: 3 providers at {:?}, one of them at {:?} instead (baseline: all three at {:?}); \
         {} callers, {:?} per phase after {warmup:?} of warm-up, ZooKeeper {zk}",
        options.delay,
        options.delay * 10,
        options.delay,
        options.concurrency,
        options.duration
    );
    let mut json = String::from("{\"scenario\":\"slow\"");
    let mut p99s = Vec::new();
    let mut rest = String::new();
    for phase in &mut phases {
        let p50 = quantile_ms(&mut phase.stats.latencies, 0.5);
        let p99 = quantile_ms(&mut phase.stats.latencies, 0.99);
        println!(
            "{:<13} p50 {p50:>8.3} ms  p99 {p99:>8.3} ms  {:>7.0} calls/s  slow provider answered {:>5.1} %",
            phase.name,
            phase.stats.qps(),
            phase.slow_share * 100.0
        );
        p99s.push(format!(",\"{}_p99_ms\":{}", phase.name, json_num(p99)));
        rest.push_str(&format!(",\"{}_p50_ms\":{}", phase.name, json_num(p50)));
        if phase.name != "baseline" {
            rest.push_str(&format!(
                ",\"{}_slow_share\":{}",
                phase.name,
                json_num(phase.slow_share)
            ));
        }
    }
    let baseline = quantile_ms(&mut phases[0].stats.latencies, 0.99);
    let least = quantile_ms(&mut phases[3].stats.latencies, 0.99);
    println!(
        "least_loaded p99 / baseline p99 = {:.2} (target <= 1.5)",
        least / baseline
    );
    for p in p99s {
        json.push_str(&p);
    }
    json.push_str(&rest);
    json.push('}');
    println!("{json}");
}
