//! What an attempt came to: the caller's response for an answer, and after a failure whether
//! the call stops there (its result) or tries another endpoint.

use tonic::Status;
use tonic::body::Body;
use tracing::debug;

use super::super::super::ejection::{AttemptStart, Strike};
use super::super::super::endpoint::Endpoint;
use super::super::super::failure::Failure;
use super::super::super::metrics;
use super::super::super::retry::{Decision, decide};
use super::super::request::Deadline;
use super::super::response::ResponseBody;
use super::super::{Answered, BoxError, wording};
use super::{Call, Failed};

impl Call {
    /// An attempt on `endpoint` reached the caller's deadline without response headers: a sign
    /// of a hung provider when its request was sent whole, one that ejects it when it makes
    /// [`SILENT_DEADLINES`](super::super::super::endpoint::SILENT_DEADLINES) in a row.
    pub(super) fn silent(&self, endpoint: &Endpoint, noted: AttemptStart, sent_whole: bool) {
        if sent_whole && endpoint.silent_until_deadline() {
            let route = &self.channel.shared.route;
            route.record_failure(endpoint, noted, Strike::Connection);
        }
    }

    /// The caller's response for an answer of `endpoint`; `None` if the answer is the
    /// provider giving up at the caller's deadline.
    pub(super) fn answer(
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
        let open = endpoint.open_call();
        Some(response.map(|body| Body::new(ResponseBody::new(body, url, deadline, open))))
    }

    /// After an attempt on `endpoint` failed: the call's result if it stops here, `None` to
    /// try another endpoint.
    pub(super) fn after_failure(
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
        counted.failed(failure, code);
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
    /// switches over (see [`Route::superseded`](super::super::super::route::Route)): only an
    /// idempotent call's, with a body it can send again.
    pub(super) fn superseded<'a>(
        &'a self,
        endpoint: &'a Endpoint,
    ) -> Option<super::super::BoxFuture<'a, ()>> {
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
    pub(super) fn give_up(&mut self) -> BoxError {
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
            Some((url, error)) => {
                // The route may know why nowhere else was left (the master client: no
                // switch-over within its bound).
                let note = self
                    .tried
                    .last()
                    .and_then(|last| self.channel.shared.route.gave_up_on(last));
                wording::failed_with(&url, self.tried.len(), true, error, note)
            }
            None => wording::no_endpoint(self.channel.shared.route.no_endpoint()),
        }
    }
}
