//! The caller's deadline across a call's attempts, when an attempt gives up, and how a hung
//! provider is found: the one rule, for the balanced channel, `zoorpc proxy` and the master
//! client alike.
//!
//! A caller sets a deadline with `tonic::Request::set_timeout`; tonic sends it to the server as
//! the `grpc-timeout` header. The balanced channel reads it once per call:
//! - the whole call, retries, their backoff and waits for a master included, ends by that
//!   deadline with `DEADLINE_EXCEEDED`; a retry carries the time that remains, so no provider
//!   works on past it;
//! - one call's deadline passing is the caller's limit, not the provider's failure: it ejects no
//!   one and is never retried;
//! - a response stream ends by it too (`DEADLINE_EXCEEDED` from the stream).
//!
//! How long an attempt waits for response headers:
//! - without a caller's deadline, the policy's attempt timeout
//!   ([`CallPolicy::attempt_timeout`](super::CallPolicy), 5 s by default), counted once the
//!   request was sent (for a client stream or a request over the buffer limit, from its last
//!   frame, so a long upload is not cut);
//! - with a caller's deadline, until that deadline: the default attempt timeout gives way to it,
//!   so a 6.5 s method called with a 10 s deadline is answered. An attempt timeout that was set
//!   (`CallPolicy::with_attempt_timeout`, `zoorpc proxy --attempt-timeout-ms`) is a
//!   per-attempt limit that holds within any deadline (to fit retries in one).
//!
//! How a hung provider (paused, wedged, cut off without a reset) is found, whatever deadlines
//! its callers use:
//! - an attempt timeout that expires is a connection-level failure: it ejects the provider;
//! - [`SILENT_DEADLINES`](super::endpoint::SILENT_DEADLINES) (5) attempts in a row that reached
//!   their caller's deadline with the request sent and no response headers eject it as one (a
//!   call its caller cancels within a tenth of the timeout of the deadline counts too: a client
//!   of `zoorpc proxy` cancels at its own deadline, which started before the proxy's); an
//!   answer of any kind starts the count over, so callers' short deadlines do not eject a slow
//!   provider that still answers;
//! - a watchdog on every provider connection, busy or idle: a health check sent on it after 10 s
//!   without a byte from it, and the connection shut down when nothing comes within 5 s, ending
//!   every call and stream on it with `UNAVAILABLE` (see [`liveness`](super::liveness); not
//!   HTTP/2 PINGs, which stock gRPC servers answer with `GOAWAY too_many_pings`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use tokio::sync::Notify;

/// The header gRPC carries a deadline in.
pub(crate) const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The `grpc-timeout` of a request: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`);
/// `None` if absent or malformed (as tonic's server reads it).
pub(crate) fn caller_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `remaining` as a `grpc-timeout` value: the finest unit that fits in 8 digits.
pub(crate) fn encode(remaining: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let micros = remaining.as_micros();
    let text = if micros <= MAX {
        format!("{}u", micros.max(1))
    } else if remaining.as_millis() <= MAX {
        format!("{}m", remaining.as_millis())
    } else if u128::from(remaining.as_secs()) <= MAX {
        format!("{}S", remaining.as_secs())
    } else {
        format!("{}H", (remaining.as_secs() / 3600).min(MAX as u64))
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("99999999H"))
}

/// When one attempt gives up.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    /// The per-attempt wait for response headers once the request was sent (`None`: none).
    pub(crate) per_attempt: Option<Duration>,
    /// The caller's deadline.
    pub(crate) deadline: Option<Instant>,
    /// Fires when a committed body sent its last frame (`None`: a kept body, sent at once).
    pub(crate) sent: Option<Arc<Notify>>,
}

/// Why an attempt gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// The per-attempt timeout.
    PerAttempt,
    /// The caller's deadline.
    Deadline,
}

impl Limits {
    /// Waits until a limit is reached (for ever if there is none).
    pub(crate) async fn expired(&self) -> Expired {
        let per_attempt = async {
            match self.per_attempt {
                Some(limit) => {
                    if let Some(sent) = &self.sent {
                        sent.notified().await;
                    }
                    tokio::time::sleep(limit).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        match self.deadline {
            Some(deadline) => {
                tokio::select! {
                    biased;
                    _ = tokio::time::sleep_until(deadline.into()) => Expired::Deadline,
                    _ = per_attempt => Expired::PerAttempt,
                }
            }
            None => {
                per_attempt.await;
                Expired::PerAttempt
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_read_and_written() {
        let read = |v: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(GRPC_TIMEOUT, HeaderValue::from_static(v));
            caller_timeout(&headers)
        };
        assert_eq!(read("1000000u"), Some(Duration::from_secs(1)));
        assert_eq!(read("250m"), Some(Duration::from_millis(250)));
        assert_eq!(read("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(read("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "m", "123456789m", "12x", "-1m", "1.5S"] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
        assert_eq!(caller_timeout(&HeaderMap::new()), None);
        for d in [
            Duration::from_micros(1),
            Duration::from_millis(1500),
            Duration::from_secs(3 * 86_400),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(GRPC_TIMEOUT, encode(d));
            let back = caller_timeout(&headers).expect("encoded value reads back");
            assert!(
                back <= d && back.as_secs_f64() >= d.as_secs_f64() * 0.999,
                "{d:?} -> {back:?}"
            );
        }
        assert_eq!(encode(Duration::from_secs(u64::MAX / 4)), "99999999H");
        assert_eq!(encode(Duration::ZERO), "1u");
    }
}
