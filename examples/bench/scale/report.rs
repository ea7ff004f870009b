//! What `scale` prints: the figures as text lines, then one JSON object (the last line).

use super::measure::Counters;
use super::{Calibration, Churned, Converged, IN_FLIGHT};
use crate::{json_num, quantile_ms};

/// Everything `scale` prints.
pub struct Figures {
    pub p: usize,
    pub c: usize,
    pub registrar_sessions: usize,
    pub calibration: Calibration,
    /// Background traffic per second.
    pub idle: Counters,
    pub converged: Converged,
    /// The registration phase's traffic per consumer per registered provider.
    pub registration: Counters,
    pub churn_per_event: Counters,
    pub churned: Churned,
    /// Resident memory before the consumers, with them and an empty list, with all P listed.
    pub rss: [f64; 3],
}

impl Figures {
    /// The text lines, then the JSON object (the last line).
    pub fn report(mut self, zk: &str) {
        let mut samples = std::mem::take(&mut self.churned.samples);
        let churn_quantiles = [
            quantile_ms(&mut samples, 0.5),
            quantile_ms(&mut samples, 0.99),
            quantile_ms(&mut samples, 1.0),
        ];
        self.print_convergence(zk);
        self.print_churn(churn_quantiles);
        self.print_memory();
        self.print_json(churn_quantiles[1]);
    }

    fn print_convergence(&self, zk: &str) {
        let (p, c, registrar_sessions) = (self.p, self.c, self.registrar_sessions);
        let Converged {
            registered_ms,
            all_ms: converge_ms,
            half_ms: converge_p50,
            ..
        } = self.converged;
        let (reg_requests, reg_bytes) =
            (self.registration.requests, self.registration.response_bytes);
        println!(
            "scale: {p} providers (from {registrar_sessions} sessions, {IN_FLIGHT} registrations in flight), \
             {c} consumers (one session each), ZooKeeper {zk}"
        );
        println!(
            "registered all in {registered_ms:.0} ms; every consumer held all {p} after {converge_ms:.0} ms \
             (half of them after {converge_p50:.0} ms); target <= 5000 ms"
        );
        println!(
            "registration phase, per consumer per registered provider: {reg_requests:.3} requests, \
             {reg_bytes:.0} response bytes"
        );
    }

    /// `quantiles`: the churn's propagation p50, p99 and max.
    fn print_churn(&self, [churn_p50, churn_p99, churn_max]: [f64; 3]) {
        let c = self.c;
        let (churn, leaves, joins, churn_secs, churn_cpu_ms) = (
            self.churned.events,
            self.churned.leaves,
            self.churned.joins,
            self.churned.secs,
            self.churned.cpu_ms,
        );
        let (churn_requests, churn_bytes) = (
            self.churn_per_event.requests,
            self.churn_per_event.response_bytes,
        );
        let (join_cost, leave_cost, idle) = (
            self.calibration.join.requests,
            self.calibration.leave.requests,
            self.idle.requests,
        );
        println!(
            "churn: {churn} events ({leaves} leaves, {joins} joins) in {churn_secs:.1} s; per consumer per event: \
             {churn_requests:.3} requests (target <= 2), {churn_bytes:.0} response bytes (target <= 1024); \
             propagation p50 {churn_p50:.3} ms p99 {churn_p99:.3} ms max {churn_max:.3} ms (target p99 <= 50 ms); \
             this process's CPU per event {churn_cpu_ms:.1} ms (all {c} consumers and the registering side)"
        );
        println!(
            "(subtracted: registering side {join_cost:.1} requests per join, {leave_cost:.1} per leave; \
             background {idle:.1} requests/s)"
        );
    }

    fn rss_per_consumer(&self) -> f64 {
        (self.rss[2] - self.rss[0]) / self.c as f64
    }

    fn print_memory(&self) {
        let (p, c) = (self.p, self.c);
        let [rss_before, rss_empty, rss_full] = self.rss;
        println!(
            "resident memory: {:.0} KiB per consumer with {p} providers listed ({:.0} KiB per consumer before any provider; \
             process {rss_before:.0} → {rss_empty:.0} → {rss_full:.0} KiB, the registrations included)",
            self.rss_per_consumer(),
            (rss_empty - rss_before) / c as f64
        );
    }

    fn print_json(&self, churn_p99: f64) {
        let (p, c) = (self.p, self.c);
        println!(
            "{{\"scenario\":\"scale\",\"providers\":{p},\"consumers\":{c},\"converge_ms\":{},\"zk_requests_per_event_per_consumer\":{},\"zk_response_bytes_per_event_per_consumer\":{},\"churn_p99_ms\":{},\"churn_cpu_ms_per_event\":{},\"rss_kib_per_consumer\":{}}}",
            json_num(self.converged.all_ms),
            json_num(self.churn_per_event.requests),
            json_num(self.churn_per_event.response_bytes),
            json_num(churn_p99),
            json_num(self.churned.cpu_ms),
            json_num(self.rss_per_consumer()),
        );
    }
}
