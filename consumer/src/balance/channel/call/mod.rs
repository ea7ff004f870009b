//! One call through a balanced channel: the attempt loop (an endpoint from the route, an
//! attempt, the retry decision after a failure) until an answer, a failure that stands, the
//! caller's deadline, or no endpoint left.
//!
//! Layout: here the call's state and its attempt loop; `next` (where the next attempt goes:
//! the route, wait-for-ready, the deadline that remains); `after` (what an attempt came to: the
//! caller's response, the retry decision after a failure, the error of a call that gives up).

mod after;
mod next;

use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;
use tonic::body::Body;
use tracing::{Instrument, debug};
use zoorpc_registry::ProviderUrl;

use super::super::body::{Prepared, prepare};
use super::super::deadline::{Limits, caller_timeout};
use super::super::ejection::AttemptStart;
use super::super::endpoint::Endpoint;
use super::super::failure::Failure;
use super::super::metrics;
use super::attempt::{Outcome, attempt};
use super::request::{AttemptRequests, Deadline};
use super::{BalancedChannel, BoxError};

/// Sends `request` through `channel`: the [`Service`](tower::Service)'s work.
pub(super) async fn send(
    channel: BalancedChannel,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, BoxError> {
    let (mut parts, body) = request.into_parts();
    let started = Instant::now();
    let body = prepare(body, channel.shared.buffer_limit).await?;
    channel.shared.budget.deposit();
    // The caller's deadline (`grpc-timeout`) bounds the whole call.
    let deadline = caller_timeout(&parts.headers).map(|timeout| Deadline {
        at: started + timeout,
        timeout,
    });
    let requests = AttemptRequests::new(&mut parts);
    let call = Call {
        channel,
        started,
        body,
        deadline,
        requests,
        extensions: parts.extensions,
        tried: SmallVec::new(),
        maybe_sent: 0,
        last: None,
        pause: None,
        switch_only: false,
        // Counted once however the call ends, dropped by a caller that went away included.
        outcome: metrics::CallCount::start(),
    };
    call.run().await
}

/// A call's state across its attempts.
struct Call {
    channel: BalancedChannel,
    started: Instant,
    /// The request body, kept for another attempt if it fits the buffer limit.
    body: Prepared,
    deadline: Option<Deadline>,
    /// Builds each attempt's request.
    requests: AttemptRequests,
    /// The caller's extensions: their map carries the response's and
    /// [`Answered`](super::Answered) back.
    extensions: http::Extensions,
    /// Up to two endpoints without a heap allocation (a retry is rare).
    tried: SmallVec<[Arc<Endpoint>; 2]>,
    /// Attempts that may have reached a provider.
    maybe_sent: usize,
    /// The last failure that was retried: the provider and its error.
    last: Option<(ProviderUrl, BoxError)>,
    /// The backoff before the next attempt (a retry of a maybe-processed one).
    pause: Option<Duration>,
    /// The next attempt goes only where the route switches over to (the master client's new
    /// master), never to the endpoint tried last.
    switch_only: bool,
    /// The call's one outcome in the metrics.
    outcome: metrics::CallCount,
}

/// What a failed attempt leaves behind.
struct Failed {
    failure: Failure,
    /// An error answer and its code, returned as it is if the call stops here.
    refused: Option<(http::Response<Body>, tonic::Code)>,
    error: BoxError,
}

impl Call {
    async fn run(mut self) -> Result<http::Response<Body>, BoxError> {
        loop {
            if let Some(pause) = self.pause.take() {
                self.back_off(pause).await;
            }
            let Some((endpoint, remaining)) = self.next_endpoint().await else {
                break;
            };
            let Some((attempt_body, sent)) = self.body.attempt() else {
                break;
            };
            // A retry is counted when it is made (deciding to retry with nowhere left to go is
            // no retry).
            if !self.tried.is_empty() {
                metrics::retry();
            }
            self.tried.push(endpoint.clone());
            let n = self.tried.len();
            let request = self
                .requests
                .next(attempt_body, n, self.deadline, remaining);
            // A kept body was sent whole at once: silence until the deadline is the provider's.
            let sent_whole = sent.is_none();
            let limits = self.limits(sent);
            let noted = endpoint.attempt_started();
            let started = (noted, sent_whole);
            // Counted once however the attempt ends, dropped with the call included.
            let counted = metrics::AttemptCount::start(endpoint.label());
            let failed = match self.attempt(&endpoint, request, limits, started).await {
                Outcome::Answer(response) => match self.answer(&endpoint, response, counted) {
                    Some(response) => return Ok(response),
                    None => break,
                },
                Outcome::Refused(response, failure, status) => Failed {
                    failure,
                    refused: Some((response, status.code())),
                    error: Box::new(status),
                },
                Outcome::Failed(failure, error) => Failed {
                    failure,
                    refused: None,
                    error,
                },
                Outcome::Deadline => {
                    self.silent(&endpoint, noted, sent_whole);
                    counted.deadline();
                    break;
                }
            };
            // tonic's own enforcement of the deadline may fail the attempt first.
            if failed.refused.is_none() && Deadline::passed(self.deadline) {
                self.silent(&endpoint, noted, sent_whole);
            }
            if let Some(result) = self.after_failure(&endpoint, failed, noted, counted) {
                return result;
            }
        }
        self.outcome.failed();
        Err(self.give_up())
    }

    /// When an attempt gives up: the caller's deadline, and the policy's attempt timeout unless
    /// a deadline replaces it (see [`deadline`](super::super::deadline)). `sent` fires when a
    /// committed body was sent whole.
    fn limits(&self, sent: Option<Arc<tokio::sync::Notify>>) -> Limits {
        let policy = &self.channel.policy;
        let per_attempt = match self.deadline {
            Some(_) if !policy.attempt_timeout_fixed => None,
            _ => Some(policy.attempt_timeout),
        };
        Limits {
            per_attempt,
            deadline: self.deadline.map(|d| d.at),
            sent,
        }
    }

    /// Waits `pause` before a retry, never past the caller's deadline.
    async fn back_off(&self, pause: Duration) {
        let until = Instant::now() + pause;
        let until = match self.deadline {
            Some(d) => until.min(d.at),
            None => until,
        };
        tokio::time::sleep_until(until.into()).await;
    }

    /// One attempt, in its own span (inside the call's): endpoint, attempt number, outcome.
    /// `started`: what the attempt noted as it started, and whether its request went whole.
    async fn attempt(
        &self,
        endpoint: &Endpoint,
        request: http::Request<Body>,
        limits: Limits,
        started: (AttemptStart, bool),
    ) -> Outcome {
        let span = tracing::debug_span!(
            "attempt",
            endpoint = %endpoint.url(),
            n = self.tried.len(),
            outcome = tracing::field::Empty
        );
        let shared = &self.channel.shared;
        let retryable = self.channel.policy.retryable;
        let mut cancelled = CancelledAtDeadline {
            call: self,
            endpoint,
            started,
            armed: true,
        };
        let attempt = attempt(endpoint, request, limits, shared.track_load, retryable)
            .instrument(span.clone());
        let outcome = match self.superseded(endpoint) {
            Some(superseded) => tokio::select! {
                biased;
                outcome = attempt => outcome,
                () = superseded => abandoned(endpoint),
            },
            None => attempt.await,
        };
        cancelled.armed = false;
        let ended = outcome.name();
        span.record("outcome", ended);
        debug!(parent: &span, outcome = ended, "attempt ended");
        outcome
    }
}

/// An attempt abandoned because the route switched over while it waited (maybe processed).
fn abandoned(endpoint: &Endpoint) -> Outcome {
    let status = tonic::Status::unavailable(format!(
        "{} stopped being the master while the call waited for its answer",
        endpoint.url()
    ));
    Outcome::Failed(Failure::MaybeSent, Box::new(status))
}

/// Armed while an attempt waits: a call dropped then, at its deadline (a client of `zoorpc
/// proxy` cancels its call when its own deadline passes, a moment before the proxy's timer),
/// counts as an attempt that reached its deadline with no response headers, as if the channel
/// had seen the deadline itself.
struct CancelledAtDeadline<'a> {
    call: &'a Call,
    endpoint: &'a Endpoint,
    started: (AttemptStart, bool),
    armed: bool,
}

impl Drop for CancelledAtDeadline<'_> {
    fn drop(&mut self) {
        let Some(deadline) = self.call.deadline.filter(|_| self.armed) else {
            return;
        };
        // The caller's clock started before this call's (the request's transit): a cancel
        // within a tenth of the timeout (at most 250 ms) of the deadline is the deadline's.
        let margin = (deadline.timeout / 10).min(Duration::from_millis(250));
        if deadline.at.saturating_duration_since(Instant::now()) <= margin {
            let (noted, sent_whole) = self.started;
            self.call.silent(self.endpoint, noted, sent_whole);
        }
    }
}
