//! What a run saw: every call counted, the kills and restarts marked, and the timeline drawn from them.

use super::*;

/// What a run saw.
pub(super) struct Run {
    /// From the start of the load until every caller and provider stopped.
    pub(super) wall: Duration,
    pub(super) calls: Vec<Call>,
    pub(super) marks: Vec<Mark>,
    /// How long each restarted provider took to register.
    pub(super) restarts: Vec<Duration>,
    pub(super) node_slot: HashMap<String, usize>,
}

impl Run {
    pub(super) fn failed(&self) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.outcome.is_err()).collect()
    }

    /// Prints the figures (and writes the plot to `plot_file`, if asked); the p99 latency.
    pub(super) fn report(
        &self,
        zk: &str,
        options: &Options,
        plot_file: Option<std::fs::File>,
    ) -> Result<f64, String> {
        let (calls, failed) = (&self.calls, self.failed());
        let mut latencies: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
        let p50 = quantile_ms(&mut latencies, 0.5);
        let p99 = quantile_ms(&mut latencies, 0.99);
        let max = quantile_ms(&mut latencies, 1.0);
        let kills = self
            .marks
            .iter()
            .filter(|m| matches!(m, Mark::Kill { .. }))
            .count();
        println!(
            "failover: {PROVIDERS} zoorpc-echo processes, {} calls/s from {} callers for {:?}; \
             one SIGKILLed every {:?}, started again {:?} later ({kills} kills), ZooKeeper {zk}",
            options.rate, options.concurrency, options.duration, options.kill_every, options.down
        );
        println!(
            "calls {} ({:.0}/s), failed {}, latency p50 {p50:.3} ms p99 {p99:.3} ms max {max:.3} ms",
            calls.len(),
            calls.len() as f64 / self.wall.as_secs_f64(),
            failed.len()
        );
        if let Some(first) = failed.first() {
            println!(
                "first failure at {:.3} s: {}",
                first.at.as_secs_f64(),
                first.outcome.as_ref().err().map_or("", |e| e.as_str())
            );
        }
        if !self.restarts.is_empty() {
            let mut restarts = self.restarts.clone();
            println!(
                "a restarted provider registered after p50 {:.0} ms (process start to `registered`)",
                quantile_ms(&mut restarts, 0.5)
            );
        }
        if let (Some(path), Some(mut file)) = (&options.plot, plot_file) {
            let timeline = timeline(calls, &self.marks, &self.node_slot, options.duration);
            let title = format!(
                "failover: {} calls, {} failed, p99 {p99:.1} ms — one of {PROVIDERS} providers SIGKILLed every {:.1} s, restarted {:.1} s later",
                calls.len(),
                failed.len(),
                options.kill_every.as_secs_f64(),
                options.down.as_secs_f64()
            );
            file.write_all(timeline.svg(&title).as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            println!("timeline written to {}", path.display());
        }
        Ok(p99)
    }
}

/// Calls per 100 ms by the slot that answered, failures, latency; kill and restart marks.
pub(super) fn timeline(
    calls: &[Call],
    marks: &[Mark],
    node_slot: &HashMap<String, usize>,
    duration: Duration,
) -> Timeline {
    let count = duration.as_millis().div_ceil(BUCKET.as_millis()) as usize;
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); count];
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|_| Bucket {
            per_slot: vec![0; PROVIDERS + 1],
            errors: 0,
            p99_ms: f64::NAN,
        })
        .collect();
    for call in calls {
        let i = (call.at.as_millis() / BUCKET.as_millis()) as usize;
        let Some(bucket) = buckets.get_mut(i) else {
            continue;
        };
        match &call.outcome {
            // Slot PROVIDERS: an answer from a node not started here (should not happen).
            Ok(node) => {
                bucket.per_slot[node_slot.get(node).copied().unwrap_or(PROVIDERS)] += 1;
            }
            Err(_) => bucket.errors += 1,
        }
        latencies[i].push(call.latency);
    }
    for (bucket, mut samples) in buckets.iter_mut().zip(latencies) {
        bucket.p99_ms = quantile_ms(&mut samples, 0.99);
    }
    Timeline {
        bucket: BUCKET,
        slots: PROVIDERS,
        buckets,
        marks: marks.to_vec(),
    }
}
