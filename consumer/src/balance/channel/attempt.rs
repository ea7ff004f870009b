//! One attempt on one endpoint: sent, then awaited until response headers, the per-attempt
//! timeout or the caller's deadline ([`Limits`]), and what it came to ([`Outcome`]).

use std::future::Future;
use std::time::Instant;

use tonic::Status;
use tonic::body::Body;
use tower::{Service, ServiceExt};
use zoorpc_proto::STANDBY_METADATA;

use super::super::deadline::{Expired, Limits};
use super::super::endpoint::Endpoint;
use super::super::failure::{Failure, classify_error};
use super::super::retry::RetryableCodes;
use super::{BoxError, PROVIDER_METADATA};

/// What one attempt came to.
pub(super) enum Outcome {
    /// Response headers (an answer, possibly an application's error): the call is committed.
    Answer(http::Response<Body>),
    /// An error answer that says the request was not (or may not have been) processed: a
    /// standby's refusal, `UNAVAILABLE`.
    Refused(http::Response<Body>, Failure, Status),
    /// No response.
    Failed(Failure, BoxError),
    /// The caller's deadline passed first.
    Deadline,
}

impl Outcome {
    /// How the attempt ended, as its span and log line say it.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Outcome::Answer(_) => "answered",
            Outcome::Refused(..) => "refused",
            Outcome::Failed(Failure::NotSent, _) => "not sent",
            Outcome::Failed(Failure::MaybeSent, _) => "maybe sent",
            Outcome::Failed(Failure::Application, _) => "failed",
            Outcome::Deadline => "deadline",
        }
    }
}

/// One attempt on `endpoint`, until response headers or a limit; its load kept if
/// `track_load`.
pub(super) async fn attempt(
    endpoint: &Endpoint,
    request: http::Request<Body>,
    limits: Limits,
    track_load: bool,
    retryable: RetryableCodes,
) -> Outcome {
    // The latency is measured only where the load is kept: no clock read otherwise.
    let in_flight = track_load.then(|| (endpoint.load().start(), Instant::now()));
    let call = async {
        let mut channel = endpoint.lend_channel();
        channel.ready().await?;
        let response = channel.call(request);
        // Handed over: the channel serves the next attempt while this one waits.
        endpoint.give_back(channel);
        response.await
    };
    // The common case (a kept body, no caller deadline) arms one timer, as `timeout` does.
    let result = if limits.deadline.is_none() && limits.sent.is_none() {
        match limits.per_attempt {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .map_err(|_| Expired::PerAttempt),
            None => Ok(call.await),
        }
    } else {
        // Boxed: the common case's future stays as small as it was.
        Box::pin(within(call, &limits)).await
    };
    let outcome = match result {
        Err(Expired::Deadline) => Outcome::Deadline,
        Err(Expired::PerAttempt) => Outcome::Failed(
            Failure::MaybeSent,
            Box::new(Status::deadline_exceeded(format!(
                "no answer from {} within {:?}",
                endpoint.url(),
                limits.per_attempt.unwrap_or_default()
            ))),
        ),
        Ok(Err(error)) => Outcome::Failed(classify_error(&error), Box::new(error)),
        Ok(Ok(response)) => answered(endpoint, response, retryable),
    };
    if let Some((in_flight, started)) = in_flight {
        in_flight.finish(matches!(outcome, Outcome::Answer(_)).then(|| started.elapsed()));
    }
    outcome
}

/// What response headers mean: an answer, or an error answer the call looks at before
/// returning it (`UNAVAILABLE`, which counts toward ejection; a standby's refusal, which is
/// retried elsewhere; a code the policy retries).
fn answered(
    endpoint: &Endpoint,
    mut response: http::Response<Body>,
    retryable: RetryableCodes,
) -> Outcome {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return Outcome::Answer(response);
    };
    let code = status.code();
    if code == tonic::Code::Ok {
        return Outcome::Answer(response);
    }
    if code == tonic::Code::Unavailable && response.headers().contains_key(STANDBY_METADATA) {
        return Outcome::Refused(response, Failure::NotSent, status);
    }
    name_provider(&mut response, endpoint);
    if code == tonic::Code::Unavailable || retryable.contains(code) {
        Outcome::Refused(response, Failure::MaybeSent, status)
    } else {
        Outcome::Answer(response)
    }
}

/// Names the provider of an application's error answer in its metadata: tonic turns the answer
/// into a `Status` and drops extensions, so `Answered` cannot carry it.
fn name_provider(response: &mut http::Response<Body>, endpoint: &Endpoint) {
    if let Ok(value) = endpoint.url().as_str().parse() {
        response.headers_mut().insert(PROVIDER_METADATA, value);
    }
}

/// `call`, unless a limit is reached first.
async fn within<F: Future>(call: F, limits: &Limits) -> Result<F::Output, Expired> {
    tokio::select! {
        biased;
        done = call => Ok(done),
        expired = limits.expired() => Err(expired),
    }
}
