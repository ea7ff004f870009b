//! `qps`: what the balancer costs per call. Unary `Say` calls (no delay) through
//! `consumer.channel()` over N providers, and in the same run through a plain tonic `Channel`
//! to one provider, in alternating segments so that both see the same machine. Closed loop:
//! `concurrency` callers, each calling again as soon as it has an answer.
//!
//! The balancer holds one HTTP/2 connection per provider, the direct channel one in all, and
//! hyper writes more frames per system call on one busy connection than on three. So a third
//! side, in the same alternation, calls through plain channels to every provider (caller `i`
//! on provider `i % N`): the same connections as the balancer, without it. The printed `ratio`
//! stays balanced / one direct channel; `ratio_same_connections` is balanced / that side.

use std::time::Duration;

use tonic::transport::Channel;
use zoorpc::apps::echo::EchoClient;
use zoorpc::consumer::{BalancedChannel, Consumer, ConsumerConfig};

use crate::alloc_count::allocations;
use crate::load::{
    Stats, closed_loop, closed_loop_over, remove_base, start_providers, stop_providers,
};
use zoorpc::cli::number;

use crate::{json_num, quantile_ms, seconds};

/// `qps` options.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Providers (1 to 64)
    #[arg(long, value_name = "N", default_value = "3", value_parser = number(1..=64usize))]
    pub providers: usize,
    /// Measured seconds per side, balanced and direct (1 to 3600)
    #[arg(long = "secs", value_name = "S", default_value = "10", value_parser = seconds(1..=3600))]
    pub duration: Duration,
    /// Calls in flight (1 to 4096)
    #[arg(long, value_name = "C", default_value = "32", value_parser = number(1..=4096usize))]
    pub concurrency: usize,
}

/// Each side's time is split into segments this long, alternating with the other side's, so
/// that a burst of other work on a shared machine hits both sides alike.
const SEGMENT: Duration = Duration::from_millis(500);
const WARMUP: Duration = Duration::from_secs(1);

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let base = format!("/zoorpc-bench/qps-{}", std::process::id());
    let providers = start_providers(zk, &base, options.providers, Duration::ZERO).await?;
    let consumer = Consumer::connect_with(ConsumerConfig::new(zk, &base))
        .await
        .map_err(|e| e.to_string())?;
    crate::load::wait_for_providers(&consumer, options.providers).await?;
    let balanced = EchoClient::new(consumer.channel());
    let direct = connect_direct(providers[0].url().endpoint()).await?;
    let mut spread = Vec::with_capacity(providers.len());
    for provider in &providers {
        spread.push(connect_direct(provider.url().endpoint()).await?);
    }
    let measured = Measured::take(&balanced, &direct, &spread, &options).await;
    drop((balanced, direct, spread));
    stop_providers(providers).await;
    remove_base(&consumer).await;
    measured.report(zk, &options);
    Ok(())
}

/// A plain tonic channel to the provider at `url`, connected.
async fn connect_direct(url: String) -> Result<EchoClient<Channel>, String> {
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| format!("{url}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    Ok(EchoClient::new(channel))
}

/// What the three sides did.
struct Measured {
    /// Through `consumer.channel()`.
    through: Stats,
    /// Through one plain channel.
    plain: Stats,
    /// Through plain channels to every provider.
    plain_spread: Stats,
    /// Per pair of segments: balanced calls / direct calls, to show the spread; sorted.
    pair_ratios: Vec<f64>,
    /// Heap allocations during the balanced and the direct side's segments (client and
    /// servers: one process).
    allocs: (u64, u64),
    segments: u32,
    segment: Duration,
}

impl Measured {
    /// Warms every side up, then runs them in alternating segments.
    async fn take(
        balanced: &EchoClient<BalancedChannel>,
        direct: &EchoClient<Channel>,
        spread: &[EchoClient<Channel>],
        options: &Options,
    ) -> Measured {
        let c = options.concurrency;
        closed_loop(balanced.clone(), c, WARMUP).await;
        closed_loop(direct.clone(), c, WARMUP).await;
        closed_loop_over(spread, c, WARMUP).await;
        let segments = (options.duration.as_millis() / SEGMENT.as_millis()).max(1) as u32;
        let segment = options.duration / segments;
        let (mut through, mut plain, mut plain_spread) =
            (Stats::default(), Stats::default(), Stats::default());
        let mut pair_ratios = Vec::with_capacity(segments as usize);
        let (mut through_allocs, mut plain_allocs) = (0u64, 0u64);
        for _ in 0..segments {
            let before = allocations();
            let a = closed_loop(balanced.clone(), c, segment).await;
            let between = allocations();
            let b = closed_loop(direct.clone(), c, segment).await;
            through_allocs += between - before;
            plain_allocs += allocations() - between;
            let d = closed_loop_over(spread, c, segment).await;
            pair_ratios.push(a.qps() / b.qps());
            through.merge(a);
            plain.merge(b);
            plain_spread.merge(d);
        }
        pair_ratios.sort_by(f64::total_cmp);
        Measured {
            through,
            plain,
            plain_spread,
            pair_ratios,
            allocs: (through_allocs, plain_allocs),
            segments,
            segment,
        }
    }

    /// The pair ratio at quantile `q` (0 to 1).
    fn pair_quantile(&self, q: f64) -> f64 {
        let i = ((q * self.pair_ratios.len() as f64) as usize).min(self.pair_ratios.len() - 1);
        self.pair_ratios[i]
    }

    /// Failures first, then the figures; the last line is the JSON object.
    fn report(mut self, zk: &str, options: &Options) {
        self.print_failures();
        let (c, segments, segment) = (options.concurrency, self.segments, self.segment);
        let (consumer_qps, direct_qps) = (self.through.qps(), self.plain.qps());
        let ratio = consumer_qps / direct_qps;
        let spread_qps = self.plain_spread.qps();
        let spread_p99 = quantile_ms(&mut self.plain_spread.latencies, 0.99);
        let (cp50, cp99) = (
            quantile_ms(&mut self.through.latencies, 0.5),
            quantile_ms(&mut self.through.latencies, 0.99),
        );
        let (dp50, dp99) = (
            quantile_ms(&mut self.plain.latencies, 0.5),
            quantile_ms(&mut self.plain.latencies, 0.99),
        );
        println!(
            "qps: {} providers, {c} callers, {:?} per side in {segments} alternating segments of {segment:?}, ZooKeeper {zk}",
            options.providers, options.duration
        );
        println!(
            "consumer.channel(): {consumer_qps:.0} calls/s, p50 {cp50:.3} ms, p99 {cp99:.3} ms ({} calls)",
            self.through.ok()
        );
        println!(
            "direct channel:     {direct_qps:.0} calls/s, p50 {dp50:.3} ms, p99 {dp99:.3} ms ({} calls)",
            self.plain.ok()
        );
        println!(
            "direct, {n} channels (one per provider, as the balancer): {spread_qps:.0} calls/s, p99 {spread_p99:.3} ms; \
             ratio with the same connections {:.3}, p99 ratio {:.3}",
            consumer_qps / spread_qps,
            cp99 / spread_p99,
            n = options.providers,
        );
        let per_call = |allocs: u64, stats: &Stats| allocs as f64 / (stats.ok() as f64).max(1.0);
        println!(
            "heap allocations per call (caller and providers, one process): consumer.channel() {:.1}, direct {:.1}",
            per_call(self.allocs.0, &self.through),
            per_call(self.allocs.1, &self.plain),
        );
        println!(
            "ratio {ratio:.3} (target >= 0.95), p99 ratio {:.3} (target <= 1.1); \
             per segment pair: min {:.3} median {:.3} max {:.3}",
            cp99 / dp99,
            self.pair_quantile(0.0),
            self.pair_quantile(0.5),
            self.pair_quantile(1.0),
        );
        println!(
            "{{\"scenario\":\"qps\",\"consumer_qps\":{},\"direct_qps\":{},\"ratio\":{},\"consumer_p99_ms\":{},\"direct_p99_ms\":{},\"direct_spread_qps\":{},\"ratio_same_connections\":{}}}",
            json_num(consumer_qps),
            json_num(direct_qps),
            json_num(ratio),
            json_num(cp99),
            json_num(dp99),
            json_num(spread_qps),
            json_num(consumer_qps / spread_qps),
        );
    }

    /// Says how many calls of each side failed, and the first failure's cause.
    fn print_failures(&self) {
        for (name, stats) in [
            ("consumer.channel()", &self.through),
            ("direct", &self.plain),
            ("direct, one per provider", &self.plain_spread),
        ] {
            stats.print_failures(name);
        }
    }
}
