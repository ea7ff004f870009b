//! `BalancedChannel`: one tower `Service` that any tonic-generated client runs on, spreading its
//! requests over the live endpoints (or, for the master client, following the master).
//!
//! Per request:
//! - The body is read up to the buffer limit ([`body`](super::body)); a request that fits can be
//!   sent again, a larger or still-streaming one is committed to its first endpoint.
//! - An endpoint is picked (`Route`); the attempt waits at most the policy's attempt timeout
//!   for the response headers.
//! - A failed attempt is classified ([`classify_error`]) and the [`decide`] function says whether
//!   another endpoint is tried: never-sent requests always (bounded by the list), maybe-sent
//!   ones with an idempotent policy and within the retry budget. Connection failures eject the
//!   endpoint.
//! - Response headers commit the call: a response (and a stream) is never retried after it.
//!   The response carries an [`Answered`] extension naming the provider and the attempts.
//! - `poll_ready` is always ready: an empty list answers `UNAVAILABLE` at once, naming the base
//!   path; an all-ejected list still tries the endpoint back soonest. Nothing waits without
//!   bound.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use smallvec::SmallVec;
use tonic::Status;
use tonic::body::Body;
use tower::{Service, ServiceExt};
use tracing::{Instrument, debug};
use zoorpc_registry::ProviderUrl;

use super::body::{Prepared, prepare};
use super::deadline::{self, Expired, GRPC_TIMEOUT, Limits, UntilDeadline, caller_timeout};
use super::ejection::Strike;
use super::endpoint::Endpoint;
use super::failure::{Failure, classify_error};
use super::metrics;
use super::retry::CallPolicy;
use super::retry::{Decision, RetryBudget, decide};
pub(crate) use super::route::{BoxFuture, Route};
use zoorpc_proto::STANDBY_METADATA;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The metadata key naming the provider on an error answer through a balanced channel.
pub const PROVIDER_METADATA: &str = "zoorpc-provider";

/// Which provider answered a call through a [`BalancedChannel`]: in the response's extensions
/// (`tonic::Response::extensions().get::<Answered>()`). A call the channel itself failed (no
/// provider, nothing reached, no answer in time, the caller's deadline) carries a [`CallError`]
/// as its status's `source()` instead. An error the provider answered (an application's status,
/// an interceptor's refusal, a standby's) carries none; an application's or interceptor's names
/// the provider in the `zoorpc-provider` metadata ([`PROVIDER_METADATA`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use zoorpc_consumer::{Answered, CallError, Consumer};
/// use zoorpc_proto::{HelloRequest, HelloServiceClient};
/// let consumer = Consumer::connect("127.0.0.1:2181", "/registry").await?;
/// let mut client = HelloServiceClient::new(consumer.channel());
/// match client.say_hello(HelloRequest { name: "zoo".into() }).await {
///     Ok(response) => {
///         if let Some(answered) = response.extensions().get::<Answered>() {
///             println!("{} answered after {} attempt(s)", answered.url, answered.attempts);
///         }
///     }
///     Err(status) => {
///         let failed = std::error::Error::source(&status).and_then(|s| s.downcast_ref::<CallError>());
///         println!("failed: {status} (last provider {:?})", failed.and_then(|e| e.url.as_ref()));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Answered {
    /// The provider's URL.
    pub url: ProviderUrl,
    /// Its node name (e.g. `provider0000000042`), shared with the consumer's list.
    pub node: Arc<str>,
    /// How many endpoints were tried (1 if the first one answered).
    pub attempts: usize,
}

/// Why a call through a [`BalancedChannel`] failed. A tonic client sees [`CallError::status`];
/// this error is that status's `source()`, for callers that want the details.
#[derive(Debug)]
pub struct CallError {
    /// What the caller sees.
    pub status: Status,
    /// The provider of the last attempt, if any was made.
    pub url: Option<ProviderUrl>,
    /// How many endpoints were tried.
    pub attempts: usize,
    /// Whether every attempt failed on its connection (retries exhausted), rather than one
    /// failure that could not be retried.
    pub exhausted: bool,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status.message())
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.status)
    }
}

/// A load-balanced channel: `Clone` (cheap: every clone shares the endpoints), a tower
/// `Service<http::Request<tonic::body::Body>>` for any tonic client.
#[derive(Clone)]
pub struct BalancedChannel {
    /// What every clone shares (one reference count per call).
    shared: Arc<Shared>,
    policy: CallPolicy,
}

/// The part of a [`BalancedChannel`] its clones share.
struct Shared {
    route: Arc<dyn Route>,
    budget: Arc<RetryBudget>,
    buffer_limit: usize,
    /// Whether attempts keep the endpoints' load ([`Route::tracks_load`], asked once).
    track_load: bool,
}

impl fmt::Debug for BalancedChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancedChannel")
            .field("route", &self.shared.route)
            .field("policy", &self.policy)
            .field("buffer_limit", &self.shared.buffer_limit)
            .finish()
    }
}

impl BalancedChannel {
    pub(crate) fn new(
        route: Arc<dyn Route>,
        policy: CallPolicy,
        budget: Arc<RetryBudget>,
        buffer_limit: usize,
    ) -> Self {
        let track_load = route.tracks_load();
        BalancedChannel {
            shared: Arc::new(Shared {
                route,
                budget,
                buffer_limit,
                track_load,
            }),
            policy,
        }
    }

    /// The retry policy of this channel.
    pub fn policy(&self) -> CallPolicy {
        self.policy
    }

    /// This channel with another policy (same endpoints, same budget).
    pub fn with_policy(&self, policy: CallPolicy) -> Self {
        BalancedChannel {
            policy,
            ..self.clone()
        }
    }

    async fn send(self, request: http::Request<Body>) -> Result<http::Response<Body>, BoxError> {
        let (mut parts, body) = request.into_parts();
        let started = Instant::now();
        let mut body = prepare(body, self.shared.buffer_limit).await?;
        self.shared.budget.deposit();
        // The caller's deadline (`grpc-timeout`) bounds the whole call.
        let deadline = caller_timeout(&parts.headers).map(|timeout| (started + timeout, timeout));
        let deadline_passed = || deadline.is_some_and(|(at, _)| Instant::now() >= at);
        let mut headers = AttemptHeaders::new(std::mem::take(&mut parts.headers));
        // Up to two endpoints without a heap allocation (a retry is rare).
        let mut tried: SmallVec<[Arc<Endpoint>; 2]> = SmallVec::new();
        let mut maybe_sent = 0;
        let mut last: Option<(ProviderUrl, Failure, BoxError)> = None;
        loop {
            // The list's route answers at once: no future to box for it.
            let next = match self.shared.route.next_now(&tried) {
                Some(next) => next,
                None => {
                    let waited = self.shared.route.next(&tried, started);
                    match deadline {
                        Some((at, _)) => tokio::time::timeout_at(at.into(), waited)
                            .await
                            .unwrap_or(None),
                        None => waited.await,
                    }
                }
            };
            let remaining = deadline.map(|(at, _)| at.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                break;
            }
            let Some(endpoint) = next else {
                break;
            };
            let Some((attempt_body, sent)) = body.attempt() else {
                break;
            };
            // A retry is counted when it is made (deciding to retry with nowhere left to go
            // is no retry).
            if !tried.is_empty() {
                metrics::retry();
            }
            tried.push(endpoint.clone());
            let mut request = http::Request::new(attempt_body);
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = headers.next();
            if let (Some(remaining), Some((_, timeout))) = (remaining, deadline)
                && (tried.len() > 1 || timeout - remaining >= Duration::from_millis(1))
            {
                // A retry, or an attempt after a wait (for a master), carries what remains of
                // the caller's deadline.
                request
                    .headers_mut()
                    .insert(GRPC_TIMEOUT, deadline::encode(remaining));
            }
            // No extensions: the endpoint channels below never read any a gRPC request carries
            // (tonic's connection reads none, hyper only extended CONNECT's), and the caller's
            // stay with the call: their map carries `Answered` back.
            // One span per attempt, inside the call's: endpoint, attempt number, outcome.
            let span = tracing::debug_span!(
                "attempt",
                endpoint = %endpoint.url(),
                n = tried.len(),
                outcome = tracing::field::Empty
            );
            let limits = Limits {
                // Both apply: the per-attempt timeout is what finds a hung provider (and ejects
                // it), whatever deadline a caller gives.
                per_attempt: Some(self.policy.attempt_timeout),
                deadline: deadline.map(|(at, _)| at),
                sent,
            };
            let noted = endpoint.attempt_started();
            let outcome = attempt(&endpoint, request, limits, self.shared.track_load)
                .instrument(span.clone())
                .await;
            let ended = match &outcome {
                Outcome::Answer(_) => "answered",
                Outcome::Refused(..) => "refused",
                Outcome::Failed(Failure::NotSent, _) => "not sent",
                Outcome::Failed(Failure::MaybeSent, _) => "maybe sent",
                Outcome::Failed(Failure::Application, _) => "failed",
                Outcome::Deadline => "deadline",
            };
            span.record("outcome", ended);
            debug!(parent: &span, outcome = ended, "attempt ended");
            let (failure, refused, error) = match outcome {
                Outcome::Answer(mut response) => {
                    let code = Status::from_header_map(response.headers()).map(|s| s.code());
                    // A provider that gave up at the caller's deadline (tonic's server answers
                    // CANCELLED) answered just as the deadline passed here.
                    if matches!(
                        code,
                        Some(tonic::Code::Cancelled | tonic::Code::DeadlineExceeded)
                    ) && deadline_passed()
                    {
                        break;
                    }
                    endpoint.record_success();
                    metrics::answered(endpoint.label(), endpoint.answered_ok_key(), code);
                    metrics::call(true);
                    // The request's extensions are no longer needed (the call is committed):
                    // their map, emptied, carries the response's own and `Answered`, so a
                    // fresh map and table are not allocated for every call.
                    let mut extensions = std::mem::take(&mut parts.extensions);
                    extensions.clear();
                    extensions.extend(std::mem::take(response.extensions_mut()));
                    extensions.insert(Answered {
                        url: endpoint.url().clone(),
                        node: endpoint.node.clone(),
                        attempts: tried.len(),
                    });
                    *response.extensions_mut() = extensions;
                    // The caller's deadline bounds the response stream too.
                    if let Some((at, timeout)) = deadline {
                        return Ok(
                            response.map(|body| Body::new(UntilDeadline::new(body, at, timeout)))
                        );
                    }
                    return Ok(response);
                }
                // An error answer that may be retried is kept, to be returned if it is not.
                Outcome::Refused(response, failure, status) => {
                    (failure, Some(response), Box::new(status) as BoxError)
                }
                Outcome::Failed(failure, error) => (failure, None, error),
                Outcome::Deadline => break,
            };
            // The caller's deadline passing during the attempt (tonic's own enforcement of it
            // may answer first) is no failure of the provider's.
            if deadline_passed() {
                break;
            }
            if failure.is_connection_failure() {
                let strike = Strike::of(failure, refused.is_some());
                self.shared.route.record_failure(&endpoint, noted, strike);
            }
            metrics::attempt_failed(endpoint.label(), failure, refused.is_some());
            if failure == Failure::MaybeSent {
                maybe_sent += 1;
            }
            if self.shared.route.gives_up_after(&*error) || !self.retry(failure, maybe_sent, &body)
            {
                metrics::call(false);
                return match refused {
                    Some(response) => Ok(response),
                    None => Err(failed(endpoint.url(), tried.len(), false, error)),
                };
            }
            debug!(url = %endpoint.url(), ?failure, error = %error, "attempt failed; trying another endpoint");
            last = Some((endpoint.url().clone(), failure, error));
        }
        metrics::call(false);
        if let Some((_, timeout)) = deadline
            && deadline_passed()
        {
            let last = tried.last().map(|e| e.url().clone());
            let at_url = last
                .as_ref()
                .map(|url| format!("; last attempt at {url}"))
                .unwrap_or_default();
            return Err(Box::new(CallError {
                status: Status::deadline_exceeded(format!(
                    "the caller's deadline ({timeout:?}) passed after {} attempt(s){at_url}",
                    tried.len()
                )),
                url: last,
                attempts: tried.len(),
                exhausted: false,
            }));
        }
        match last {
            Some((url, _, error)) => Err(failed(&url, tried.len(), true, error)),
            None => Err(Box::new(CallError {
                status: self.shared.route.no_endpoint(),
                url: None,
                attempts: 0,
                exhausted: false,
            })),
        }
    }

    fn retry(&self, failure: Failure, maybe_sent: usize, body: &Prepared) -> bool {
        // A committed body that an attempt started sending cannot go anywhere else.
        if !body.is_available() {
            return false;
        }
        match decide(failure, &self.policy, maybe_sent, &self.shared.budget) {
            Decision::Retry => true,
            Decision::Stop => false,
            Decision::BudgetSpent => {
                debug!("retry budget spent; not retrying");
                false
            }
        }
    }
}

impl Service<http::Request<Body>> for BalancedChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is per endpoint, inside each attempt: never wait on the set here.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let span = tracing::debug_span!("call", method = %request.uri().path());
        Box::pin(self.clone().send(request).instrument(span))
    }
}

/// A request's headers for each attempt. The first attempt carries the caller's map itself; a
/// copy of its entries is kept inline (no allocation for up to [`INLINE_HEADERS`]: a gRPC call
/// carries `content-type`, `te` and what metadata the caller adds) to build the map of any
/// later attempt, since an attempt consumes its request.
struct AttemptHeaders {
    first: Option<HeaderMap>,
    copy: SmallVec<[(HeaderName, HeaderValue); INLINE_HEADERS]>,
}

/// Header entries [`AttemptHeaders`] keeps without a heap allocation.
const INLINE_HEADERS: usize = 4;

impl AttemptHeaders {
    fn new(headers: HeaderMap) -> Self {
        let copy = headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        AttemptHeaders {
            first: Some(headers),
            copy,
        }
    }

    /// The headers of the next attempt: the caller's map the first time, then maps built from
    /// the copy (every value of a repeated name, in order).
    fn next(&mut self) -> HeaderMap {
        self.first.take().unwrap_or_else(|| {
            let mut headers = HeaderMap::with_capacity(self.copy.len());
            for (name, value) in &self.copy {
                headers.append(name.clone(), value.clone());
            }
            headers
        })
    }
}

/// What one attempt came to.
enum Outcome {
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

/// One attempt on `endpoint`, until response headers or a limit; its load kept if
/// `track_load`.
async fn attempt(
    endpoint: &Endpoint,
    request: http::Request<Body>,
    limits: Limits,
    track_load: bool,
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
        Ok(Ok(response)) => match Status::from_header_map(response.headers()) {
            Some(status) if status.code() == tonic::Code::Unavailable => {
                let mut response = response;
                let failure = if response.headers().contains_key(STANDBY_METADATA) {
                    Failure::NotSent
                } else {
                    name_provider(&mut response, endpoint);
                    Failure::MaybeSent
                };
                Outcome::Refused(response, failure, status)
            }
            Some(status) if status.code() != tonic::Code::Ok => {
                let mut response = response;
                name_provider(&mut response, endpoint);
                Outcome::Answer(response)
            }
            _ => Outcome::Answer(response),
        },
    };
    if let Some((in_flight, started)) = in_flight {
        in_flight.finish(matches!(outcome, Outcome::Answer(_)).then(|| started.elapsed()));
    }
    outcome
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

/// The error a caller sees: the last failure's status, naming the provider.
fn failed(url: &ProviderUrl, attempts: usize, exhausted: bool, error: BoxError) -> BoxError {
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
