//! One call through a balanced channel: the attempt loop (an endpoint from the route, an
//! attempt, the retry decision after a failure) until an answer, a failure that stands, the
//! caller's deadline, or no endpoint left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;
use tonic::Status;
use tonic::body::Body;
use tracing::{Instrument, debug};
use zoorpc_registry::ProviderUrl;

use super::super::body::{Prepared, prepare};
use super::super::deadline::{Limits, caller_timeout};
use super::super::ejection::{AttemptStart, Strike};
use super::super::endpoint::Endpoint;
use super::super::failure::Failure;
use super::super::metrics;
use super::super::retry::{Decision, decide};
use super::attempt::{Outcome, attempt};
use super::request::{AttemptRequests, Deadline};
use super::response::ResponseBody;
use super::{Answered, BalancedChannel, BoxError, wording};

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
    /// The caller's extensions: their map carries the response's and [`Answered`] back.
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

    /// An attempt on `endpoint` reached the caller's deadline without response headers: a sign
    /// of a hung provider when its request was sent whole, one that ejects it when it makes
    /// [`SILENT_DEADLINES`](super::super::endpoint::SILENT_DEADLINES) in a row.
    fn silent(&self, endpoint: &Endpoint, noted: AttemptStart, sent_whole: bool) {
        if sent_whole && endpoint.silent_until_deadline() {
            let route = &self.channel.shared.route;
            route.record_failure(endpoint, noted, Strike::Connection);
        }
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

    /// The endpoint of the next attempt and what remains of the caller's deadline; `None`
    /// when the route has none left or the deadline passed.
    async fn next_endpoint(&self) -> Option<(Arc<Endpoint>, Option<Duration>)> {
        let route = &self.channel.shared.route;
        // The list's route answers at once: no future to box for it.
        let next = match route.next_now(&self.tried) {
            Some(next) if !self.switch_only => next,
            _ => {
                let waited = match self.tried.last() {
                    Some(last) if self.switch_only => route.switch_over(last, self.started),
                    _ => route.next(&self.tried, self.started),
                };
                match self.deadline {
                    Some(d) => tokio::time::timeout_at(d.at.into(), waited)
                        .await
                        .unwrap_or(None),
                    None => waited.await,
                }
            }
        };
        let next = match next {
            None if self.channel.policy.wait_for_ready => self.wait_for_ready().await,
            next => next,
        };
        let remaining = self
            .deadline
            .map(|d| d.at.saturating_duration_since(Instant::now()));
        if remaining == Some(Duration::ZERO) {
            return None;
        }
        next.map(|endpoint| (endpoint, remaining))
    }

    /// Wait-for-ready: an endpoint not tried yet, once the list has one, within the caller's
    /// deadline (without one, the attempt timeout).
    async fn wait_for_ready(&self) -> Option<Arc<Endpoint>> {
        let route = &self.channel.shared.route;
        let until = match self.deadline {
            Some(d) => d.at,
            None => self.started + self.channel.policy.attempt_timeout,
        };
        let found = async {
            loop {
                route.changed(&self.tried).await;
                if let Some(next) = route.next_now(&self.tried).flatten() {
                    return next;
                }
            }
        };
        debug!("no provider to try; waiting for one (wait-for-ready)");
        tokio::time::timeout_at(until.into(), found).await.ok()
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

    /// The caller's response for an answer of `endpoint`; `None` if the answer is the
    /// provider giving up at the caller's deadline.
    fn answer(
        &mut self,
        endpoint: &Endpoint,
        mut response: http::Response<Body>,
        counted: metrics::AttemptCount<'_>,
    ) -> Option<http::Response<Body>> {
        let code = Status::from_header_map(response.headers()).map(|s| s.code());
        // A provider that gave up at the caller's deadline (tonic's server answers CANCELLED)
        // answered just as the deadline passed here.
        if matches!(
            code,
            Some(tonic::Code::Cancelled | tonic::Code::DeadlineExceeded)
        ) && Deadline::passed(self.deadline)
        {
            endpoint.answered();
            counted.deadline();
            return None;
        }
        endpoint.record_success();
        counted.answered(endpoint.answered_ok_key(), code);
        self.outcome.answered();
        // The request's extensions are no longer needed (the call is committed): their map,
        // emptied, carries the response's own and `Answered`, so a fresh map and table are not
        // allocated for every call.
        let mut extensions = std::mem::take(&mut self.extensions);
        extensions.clear();
        extensions.extend(std::mem::take(response.extensions_mut()));
        extensions.insert(Answered {
            url: endpoint.url().clone(),
            node: endpoint.node.clone(),
            attempts: self.tried.len(),
        });
        *response.extensions_mut() = extensions;
        // The caller's deadline bounds the response stream too, and a connection that breaks
        // during it is named.
        let url = endpoint.url().clone();
        let deadline = self.deadline.map(|d| (d.at, d.timeout));
        Some(response.map(|body| Body::new(ResponseBody::new(body, url, deadline))))
    }

    /// After an attempt on `endpoint` failed: the call's result if it stops here, `None` to
    /// try another endpoint.
    fn after_failure(
        &mut self,
        endpoint: &Endpoint,
        failed: Failed,
        noted: AttemptStart,
        counted: metrics::AttemptCount<'_>,
    ) -> Option<Result<http::Response<Body>, BoxError>> {
        let Failed {
            failure,
            refused,
            error,
        } = failed;
        // The caller's deadline passing during the attempt (tonic's own enforcement of it may
        // answer first) is no failure of the provider's.
        if Deadline::passed(self.deadline) {
            counted.deadline();
            self.outcome.failed();
            return Some(Err(self.give_up()));
        }
        let code = refused.as_ref().map(|(_, code)| *code);
        if code.is_some() {
            endpoint.answered();
        }
        // Only a connection failure or UNAVAILABLE weighs toward ejection; another retryable
        // code is the provider's answer.
        if failure.is_connection_failure() && code.is_none_or(|c| c == tonic::Code::Unavailable) {
            let strike = Strike::of(failure, code.is_some());
            let route = &self.channel.shared.route;
            route.record_failure(endpoint, noted, strike);
        }
        counted.failed(failure, code.is_some());
        if failure == Failure::MaybeSent {
            self.maybe_sent += 1;
        }
        // A standby's refusal was never processed; another answer is retried only for a
        // retryable code.
        let retryable = failure == Failure::NotSent
            || code.is_none_or(|c| self.channel.policy.retryable.contains(c));
        let gives_up = self.channel.shared.route.gives_up_after(&*error);
        self.switch_only = false;
        if gives_up || !retryable || !self.retry_or_switch_over(endpoint, failure) {
            self.outcome.failed();
            return Some(match refused {
                Some((response, _)) => Ok(response),
                None => Err(wording::failed(
                    endpoint.url(),
                    self.tried.len(),
                    false,
                    error,
                )),
            });
        }
        if failure == Failure::MaybeSent && !self.switch_only {
            self.pause = Some(self.channel.policy.backoff.pause(self.maybe_sent));
        }
        debug!(url = %endpoint.url(), ?failure, error = %error, "attempt failed; trying another endpoint");
        self.last = Some((endpoint.url().clone(), error));
        None
    }

    /// Whether an attempt on `endpoint` still waiting for its answer is abandoned once the route
    /// switches over (see [`Route::superseded`](super::Route)): only an idempotent call's, with
    /// a body it can send again.
    fn superseded<'a>(&'a self, endpoint: &'a Endpoint) -> Option<super::BoxFuture<'a, ()>> {
        if !self.channel.policy.idempotent || !self.body.is_available() {
            return None;
        }
        self.channel.shared.route.superseded(endpoint)
    }

    /// Whether a call whose attempt on `endpoint` failed with `failure` tries again. An
    /// idempotent call whose attempt may have been processed follows a switch-over of the route
    /// (the master client's) outside the retry budget and attempt count: at once to the
    /// endpoint named instead of `endpoint`, or, when the decision refuses `endpoint` again,
    /// waiting for one (`switch_only`), within the route's bound.
    fn retry_or_switch_over(&mut self, endpoint: &Endpoint, failure: Failure) -> bool {
        let switched = (failure == Failure::MaybeSent
            && self.channel.policy.idempotent
            && self.body.is_available())
        .then(|| self.channel.shared.route.switched_from(endpoint))
        .flatten();
        if switched == Some(true) {
            self.switch_only = true;
            return true;
        }
        let follows = switched.is_some();
        if self.retry(failure) {
            return true;
        }
        self.switch_only = follows;
        follows
    }

    /// Whether a call whose attempt failed with `failure` tries another endpoint.
    fn retry(&self, failure: Failure) -> bool {
        // A committed body that an attempt started sending cannot go anywhere else.
        if !self.body.is_available() {
            return false;
        }
        let shared = &self.channel.shared;
        match decide(
            failure,
            &self.channel.policy,
            self.maybe_sent,
            &shared.budget,
        ) {
            Decision::Retry => true,
            Decision::Stop => false,
            Decision::BudgetSpent => {
                debug!("retry budget spent; not retrying");
                false
            }
        }
    }

    /// The error of a call that got no answer: its deadline, the last retried failure, or no
    /// endpoint at all.
    fn give_up(&mut self) -> BoxError {
        if let Some(d) = self.deadline
            && Deadline::passed(self.deadline)
        {
            let last = self.tried.last().map(|e| e.url().clone());
            // Nothing tried: the call spent its deadline waiting for a provider.
            let waiting = self
                .tried
                .is_empty()
                .then(|| self.channel.shared.route.no_endpoint());
            return wording::deadline_passed(d.timeout, self.tried.len(), last, waiting);
        }
        match self.last.take() {
            Some((url, error)) => wording::failed(&url, self.tried.len(), true, error),
            None => wording::no_endpoint(self.channel.shared.route.no_endpoint()),
        }
    }
}

/// An attempt abandoned because the route switched over while it waited (maybe processed).
fn abandoned(endpoint: &Endpoint) -> Outcome {
    let status = Status::unavailable(format!(
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
