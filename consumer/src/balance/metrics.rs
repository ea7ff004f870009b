//! What the balancer counts, through the `metrics` facade (no-ops until a program installs a
//! recorder, e.g. the Prometheus exporter of `zoorpc proxy --metrics ADDR`). Names are prefixed
//! `zoorpc_`; `endpoint` is a provider's `scheme://host:port`.
//!
//! - `zoorpc_attempts_total{endpoint, code}`: attempts that got response headers, by the
//!   gRPC status in them (`OK` when the headers carry none: the status of a streamed answer is
//!   in its trailers, not seen here).
//! - `zoorpc_attempt_failures_total{endpoint, class}`: attempts without an answer
//!   (`never_sent`, `maybe_sent`, `application`), refused by a standby (`refused`: UNAVAILABLE
//!   with the `zoorpc-standby` metadata, the request not processed; a refused connection is
//!   `never_sent`), answered `UNAVAILABLE` otherwise (`unavailable`: the provider's own
//!   answer, which may have been processed), answered with another code the retry policy
//!   retries (`retryable`), cut by the caller's deadline before an answer (`deadline`), or
//!   abandoned by a caller that went away while the endpoint had not answered (`cancelled`).
//! - `zoorpc_calls_total{outcome}`: calls, `answered`, `failed` (no answer from any attempt,
//!   the caller's deadline included) or `cancelled` (the caller dropped the call, e.g. a client
//!   of `zoorpc proxy` that reset its stream at its own deadline, before it ended).
//!
//! Every call counts exactly one outcome, and every attempt exactly one of
//! `zoorpc_attempts_total` or `zoorpc_attempt_failures_total`: a call or attempt dropped before
//! it ended is counted by a drop guard ([`CallCount`], [`AttemptCount`]).
//! - `zoorpc_retries_total`: attempts made again on another endpoint.
//! - `zoorpc_ejections_total{endpoint}`: connection failures that ejected an endpoint.
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
fn answered(endpoint: &Arc<str>, ok_key: &metrics::Key, code: Option<tonic::Code>) {
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

/// An attempt that failed, or was answered with the error `code` (one the call looks at before
/// returning it). An answer whose request reached no handler (`NotSent`) is a standby's
/// refusal: the attempt makes it only for `UNAVAILABLE` carrying the `zoorpc-standby` metadata.
fn attempt_failed(endpoint: &Arc<str>, failure: Failure, code: Option<tonic::Code>) {
    let class = match (code, failure) {
        (Some(_), Failure::NotSent) => "refused",
        (Some(tonic::Code::Unavailable), _) => "unavailable",
        (Some(_), _) => "retryable",
        (None, Failure::NotSent) => "never_sent",
        (None, Failure::MaybeSent) => "maybe_sent",
        (None, Failure::Application) => "application",
    };
    failure_of(endpoint, class);
}

fn failure_of(endpoint: &Arc<str>, class: &'static str) {
    metrics::counter!("zoorpc_attempt_failures_total", "endpoint" => endpoint.clone(), "class" => class)
        .increment(1);
}

/// A call's outcome, counted once: by [`CallCount::answered`] or [`CallCount::failed`]
/// (the first of them counts), or as `cancelled` when it is dropped before either (the caller
/// went away).
pub(crate) struct CallCount {
    counted: bool,
}

impl CallCount {
    /// A call begins.
    pub(crate) fn start() -> Self {
        CallCount { counted: false }
    }

    /// Some attempt answered.
    pub(crate) fn answered(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            // Literal labels: the macro's key is a static, nothing is built per call.
            metrics::counter!("zoorpc_calls_total", "outcome" => "answered").increment(1);
        }
    }

    /// No attempt answered.
    pub(crate) fn failed(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            metrics::counter!("zoorpc_calls_total", "outcome" => "failed").increment(1);
        }
    }
}

impl Drop for CallCount {
    fn drop(&mut self) {
        if !self.counted {
            metrics::counter!("zoorpc_calls_total", "outcome" => "cancelled").increment(1);
        }
    }
}

/// An attempt's outcome on one endpoint, counted once: answered, failed, cut by the caller's
/// deadline, or (dropped before any of these) `cancelled`.
pub(crate) struct AttemptCount<'a> {
    endpoint: &'a Arc<str>,
    counted: bool,
}

impl<'a> AttemptCount<'a> {
    /// An attempt on the endpoint labelled `endpoint` begins.
    pub(crate) fn start(endpoint: &'a Arc<str>) -> Self {
        AttemptCount {
            endpoint,
            counted: false,
        }
    }

    /// Answered with headers carrying `code` (see [`answered`]).
    pub(crate) fn answered(mut self, ok_key: &metrics::Key, code: Option<tonic::Code>) {
        self.counted = true;
        answered(self.endpoint, ok_key, code);
    }

    /// Failed, or answered with the error `code` (see [`attempt_failed`]).
    pub(crate) fn failed(mut self, failure: Failure, code: Option<tonic::Code>) {
        self.counted = true;
        attempt_failed(self.endpoint, failure, code);
    }

    /// The caller's deadline passed before an answer came.
    pub(crate) fn deadline(mut self) {
        self.counted = true;
        failure_of(self.endpoint, "deadline");
    }
}

impl Drop for AttemptCount<'_> {
    fn drop(&mut self) {
        if !self.counted {
            failure_of(self.endpoint, "cancelled");
        }
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
