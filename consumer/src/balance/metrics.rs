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
//! - `zoorpc_ejections_total{endpoint}`: ejections, one per ejection (failures while ejected, or
//!   of calls already in flight when it was ejected, are not another).
//! - `zoorpc_live_endpoints{base_path}`: the size of a consumer's live list.

use std::sync::Arc;

use super::failure::Failure;

/// Metadata of the counters counted through a key made once (as the macros' own).
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The key of `zoorpc_attempts_total{endpoint, code="OK"}`, made once per endpoint: counting an
/// answered call then builds no label vector.
pub(crate) fn answered_ok_key(endpoint: &Arc<str>) -> metrics::Key {
    metrics::Key::from_parts(
        "zoorpc_attempts_total",
        vec![
            metrics::Label::new("endpoint", endpoint.clone()),
            metrics::Label::from_static_parts("code", "OK"),
        ],
    )
}

/// An attempt answered with response headers carrying `code` (`None`: no status there).
/// `endpoint` is the endpoint's label and `ok_key` its [`answered_ok_key`], made once per
/// endpoint: counting a call copies nothing. The recorder is looked up on every call (as the
/// macros do), so one installed after the first call counts from then on.
pub(crate) fn answered(endpoint: &Arc<str>, ok_key: &metrics::Key, code: Option<tonic::Code>) {
    match code.map_or("OK", code_name) {
        "OK" => metrics::with_recorder(|r| r.register_counter(ok_key, &METADATA)).increment(1),
        code => metrics::counter!("zoorpc_attempts_total", "endpoint" => endpoint.clone(), "code" => code)
            .increment(1),
    }
}

/// A gRPC code as written in the metric: its name in capitals (`DEADLINEEXCEEDED`), as the
/// provider's `zoorpc_served_total` writes it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALIDARGUMENT",
        DeadlineExceeded => "DEADLINEEXCEEDED",
        NotFound => "NOTFOUND",
        AlreadyExists => "ALREADYEXISTS",
        PermissionDenied => "PERMISSIONDENIED",
        ResourceExhausted => "RESOURCEEXHAUSTED",
        FailedPrecondition => "FAILEDPRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUTOFRANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATALOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An attempt that failed or was refused.
pub(crate) fn attempt_failed(endpoint: &Arc<str>, failure: Failure, refused: bool) {
    let class = match (refused, failure) {
        (true, _) => "refused",
        (false, Failure::NotSent) => "never_sent",
        (false, Failure::MaybeSent) => "maybe_sent",
        (false, Failure::Application) => "application",
    };
    metrics::counter!("zoorpc_attempt_failures_total", "endpoint" => endpoint.clone(), "class" => class)
        .increment(1);
}

/// A call ended: answered by some attempt or not.
pub(crate) fn call(answered: bool) {
    // Literal labels: the macro's key is a static, nothing is built per call.
    if answered {
        metrics::counter!("zoorpc_calls_total", "outcome" => "answered").increment(1);
    } else {
        metrics::counter!("zoorpc_calls_total", "outcome" => "failed").increment(1);
    }
}

/// A call goes on to another endpoint.
pub(crate) fn retry() {
    metrics::counter!("zoorpc_retries_total").increment(1);
}

/// An endpoint was ejected.
pub(crate) fn ejected(endpoint: &Arc<str>) {
    metrics::counter!("zoorpc_ejections_total", "endpoint" => endpoint.clone()).increment(1);
}

/// A consumer's live list has `count` endpoints.
pub(crate) fn live(base_path: &str, count: usize) {
    metrics::gauge!("zoorpc_live_endpoints", "base_path" => base_path.to_owned()).set(count as f64);
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_names_are_the_capitalised_debug_names() {
        for code in 0..17 {
            let code = tonic::Code::from_i32(code);
            assert_eq!(super::code_name(code), format!("{code:?}").to_uppercase());
        }
    }
}
