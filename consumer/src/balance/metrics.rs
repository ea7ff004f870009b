//! What the balancer counts, through the `metrics` facade (no-ops until a program installs a
//! recorder, e.g. the Prometheus exporter of `zoorpc proxy --metrics ADDR`). Names are prefixed
//! `zoorpc_`; `endpoint` is a provider's `scheme://host:port`.
//!
//! - `zoorpc_attempts_total{endpoint, code}`: attempts that got response headers, by the
//!   gRPC status in them (`OK` when the headers carry none: the status of a streamed answer is
//!   in its trailers, not seen here).
//! - `zoorpc_attempt_failures_total{endpoint, class}`: attempts without an answer
//!   (`never_sent`, `maybe_sent`, `application`: a deadline), or refused (`refused`: UNAVAILABLE, a standby's refusal).
//! - `zoorpc_calls_total{outcome}`: calls, `answered` or `failed` (no answer from any attempt).
//! - `zoorpc_retries_total`: attempts made again on another endpoint.
//! - `zoorpc_ejections_total{endpoint}`: connection failures that ejected an endpoint.
//! - `zoorpc_live_endpoints{base_path}`: the size of a consumer's live list.

use super::failure::Failure;

/// An attempt answered with response headers carrying `code` (`None`: no status there).
pub(crate) fn answered(endpoint: &str, code: Option<tonic::Code>) {
    let code = code.map_or("OK".to_owned(), |c| format!("{c:?}").to_uppercase());
    metrics::counter!("zoorpc_attempts_total", "endpoint" => endpoint.to_owned(), "code" => code)
        .increment(1);
}

/// An attempt that failed or was refused.
pub(crate) fn attempt_failed(endpoint: &str, failure: Failure, refused: bool) {
    let class = match (refused, failure) {
        (true, _) => "refused",
        (false, Failure::NotSent) => "never_sent",
        (false, Failure::MaybeSent) => "maybe_sent",
        (false, Failure::Application) => "application",
    };
    metrics::counter!("zoorpc_attempt_failures_total", "endpoint" => endpoint.to_owned(), "class" => class)
        .increment(1);
}

/// A call ended: answered by some attempt or not.
pub(crate) fn call(answered: bool) {
    let outcome = if answered { "answered" } else { "failed" };
    metrics::counter!("zoorpc_calls_total", "outcome" => outcome).increment(1);
}

/// A call goes on to another endpoint.
pub(crate) fn retry() {
    metrics::counter!("zoorpc_retries_total").increment(1);
}

/// An endpoint was ejected.
pub(crate) fn ejected(endpoint: &str) {
    metrics::counter!("zoorpc_ejections_total", "endpoint" => endpoint.to_owned()).increment(1);
}

/// A consumer's live list has `count` endpoints.
pub(crate) fn live(base_path: &str, count: usize) {
    metrics::gauge!("zoorpc_live_endpoints", "base_path" => base_path.to_owned()).set(count as f64);
}
