//! The errors a caller of a balanced channel sees: the last failure's status naming the
//! provider, or the caller's deadline, or no endpoint at all; each a [`CallError`] as the
//! status's `source()`.

use std::fmt;
use std::sync::Arc;

use tonic::Status;
use zoorpc_registry::ProviderUrl;

use super::{BoxError, CallError};

/// The error a caller sees: the last failure's status, naming the provider.
pub(super) fn failed(
    url: &ProviderUrl,
    attempts: usize,
    exhausted: bool,
    error: BoxError,
) -> BoxError {
    let error: Arc<dyn std::error::Error + Send + Sync> = Arc::from(error);
    let inner = Status::from_error(Box::new(ArcError(error.clone())));
    // Several attempts are named as such even when the last one could not be retried.
    let message = if exhausted || attempts > 1 {
        format!(
            "call failed after {attempts} attempt(s); last failure at {url}: {}",
            inner.message()
        )
    } else {
        format!("call to {url} failed: {}", inner.message())
    };
    let mut status = Status::new(inner.code(), message);
    status.set_source(error);
    Box::new(CallError {
        status,
        url: Some(url.clone()),
        attempts,
        exhausted,
    })
}

/// The error of a call whose deadline (given as `timeout`) passed after `attempts`, the last
/// one at `last`.
pub(super) fn deadline_passed(
    timeout: std::time::Duration,
    attempts: usize,
    last: Option<ProviderUrl>,
) -> BoxError {
    let at_url = last
        .as_ref()
        .map(|url| format!("; last attempt at {url}"))
        .unwrap_or_default();
    Box::new(CallError {
        status: Status::deadline_exceeded(format!(
            "the caller's deadline ({timeout:?}) passed after {attempts} attempt(s){at_url}"
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
