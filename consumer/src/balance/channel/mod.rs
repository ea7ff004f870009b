//! `BalancedChannel`: one tower `Service` that any tonic-generated client runs on, spreading its
//! requests over the live endpoints (or, for the master client, following the master).
//!
//! Per request:
//! - The body is read up to the buffer limit ([`body`](super::body)); a request that fits can be
//!   sent again, a larger or still-streaming one is committed to its first endpoint.
//! - An endpoint is picked (`Route`); the attempt waits for the response headers until the
//!   caller's deadline, or without one for the policy's attempt timeout (the rule, and how a
//!   hung provider is found: [`deadline`](super::deadline)).
//! - A failed attempt is classified ([`classify_error`](super::classify_error)) and the
//!   [`decide`](super::decide) function says whether another endpoint is tried: never-sent
//!   requests always and at once (bounded by the list); maybe-sent ones, and answers with a
//!   code the policy retries, with an idempotent policy, within the retry budget and after a
//!   jittered backoff ([`Backoff`](super::Backoff)). Connection failures eject the endpoint.
//! - Response headers commit the call: a response (and a stream) is never retried after it.
//!   The response carries an [`Answered`] extension naming the provider and the attempts; a
//!   connection that breaks during the response ends it `UNAVAILABLE` naming the provider.
//! - `poll_ready` is always ready: an empty list answers `UNAVAILABLE` at once, naming the base
//!   path (with wait-for-ready, the call waits for a provider within its deadline); an
//!   all-ejected list still tries the endpoint back soonest. Nothing waits without bound.
//!
//! Layout, as tower splits retry, timeout and balance:
//! - `call`: the attempt loop of one call and the retry decision after each failure;
//! - `attempt`: one attempt, bounded by the attempt timeout or the caller's deadline, and what
//!   it came to;
//! - `request`: each attempt's request (headers, the deadline that remains);
//! - `response`: the response body a caller reads (the deadline, a connection that breaks);
//! - `wording`: the errors a caller sees.
//!
//! Where an attempt goes is the `Route`'s (the live list's picking, or the master).

mod attempt;
mod call;
mod request;
mod response;
mod wording;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;
use tower::Service;
use tracing::Instrument;
use zoorpc_registry::ProviderUrl;

use super::retry::{CallPolicy, RetryBudget};
pub(crate) use super::route::{BoxFuture, Route};
pub use response::status_trailers;

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
#[non_exhaustive]
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
#[non_exhaustive]
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
        Box::pin(call::send(self.clone(), request).instrument(span))
    }
}
