//! The errors a caller of a balanced channel sees: the last failure's status naming the
//! provider, or the caller's deadline, or no endpoint at all; each a [`CallError`] as the
//! status's `source()`.

use std::fmt;
use std::sync::Arc;

use tonic::{Code, Status};
use zoorpc_registry::ProviderUrl;

use super::{BoxError, CallError};

/// The error a caller sees: the last failure's status, naming the provider.
pub(super) fn failed(
    url: &ProviderUrl,
    attempts: usize,
    exhausted: bool,
    error: BoxError,
) -> BoxError {
    failed_with(url, attempts, exhausted, error, None)
}

/// [`failed`], with the route's `note` on why the call stopped there (after the cause).
pub(super) fn failed_with(
    url: &ProviderUrl,
    attempts: usize,
    exhausted: bool,
    error: BoxError,
    note: Option<String>,
) -> BoxError {
    let error: Arc<dyn std::error::Error + Send + Sync> = Arc::from(error);
    let inner = Status::from_error(Box::new(ArcError(error.clone())));
    let (code, cause) = if matches!(inner.code(), Code::Unknown | Code::Cancelled) {
        // A transport failure tonic cannot name (reset, closed, broken pipe), or a request
        // hyper dropped because its connection closed (which tonic calls CANCELLED, although
        // the caller cancelled nothing), is the connection's failure: UNAVAILABLE, as gRPC
        // maps it.
        (
            Code::Unavailable,
            format!("the connection broke ({})", causes(&*error)),
        )
    } else {
        (inner.code(), inner.message().to_owned())
    };
    // Several attempts are named as such even when the last one could not be retried.
    let mut message = if exhausted || attempts > 1 {
        format!("call failed after {attempts} attempt(s); last failure at {url}: {cause}")
    } else {
        format!("call to {url} failed: {cause}")
    };
    if let Some(note) = note {
        message.push_str("; ");
        message.push_str(&note);
    }
    let mut status = Status::new(code, message);
    status.set_source(error);
    Box::new(CallError {
        status,
        url: Some(url.clone()),
        attempts,
        exhausted,
    })
}

/// A response body's error as the caller sees it: a connection that broke during the response
/// (reset, closed, or shut down as silent by its watchdog; tonic says `UNKNOWN`) is
/// `UNAVAILABLE` naming the provider, as gRPC maps a transport failure; any other status stands.
pub(super) fn broken_during_response(url: &ProviderUrl, status: Status) -> Status {
    if status.code() != Code::Unknown {
        return status;
    }
    let mut broken = Status::unavailable(format!(
        "the connection to {url} broke during the response: {}",
        status.message()
    ));
    broken.set_source(Arc::new(status));
    broken
}

/// The error of a call whose deadline (given as `timeout`) passed after `attempts`, the last
/// one at `last`; `waiting`: the route's status while the call waited for an endpoint.
pub(super) fn deadline_passed(
    timeout: std::time::Duration,
    attempts: usize,
    last: Option<ProviderUrl>,
    waiting: Option<Status>,
) -> BoxError {
    let at_url = last
        .as_ref()
        .map(|url| format!("; last attempt at {url}"))
        .unwrap_or_default();
    let waited = waiting
        .map(|status| format!(", waiting for a provider to try ({})", status.message()))
        .unwrap_or_default();
    Box::new(CallError {
        status: Status::deadline_exceeded(format!(
            "the caller's deadline ({timeout:?}) passed after {attempts} attempt(s){at_url}{waited}"
        )),
        url: last,
        attempts,
        exhausted: false,
    })
}

/// The error of a call that found no endpoint at all (`status` is the route's).
pub(super) fn no_endpoint(status: Status) -> BoxError {
    Box::new(CallError {
        status,
        url: None,
        attempts: 0,
        exhausted: false,
    })
}

/// `error` and its sources, each once (`transport error: connection error: Connection reset by
/// peer`): tonic's own line for a transport failure is only its first part.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut source = Some(error);
    while let Some(err) = source {
        let text = err.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        source = err.source();
    }
    line
}

/// A shared error, so the status can keep the original as its source.
#[derive(Debug)]
struct ArcError(Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Display for ArcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
