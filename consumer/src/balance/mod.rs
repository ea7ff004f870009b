//! The balancer: one concern per file, as tower's `balance/p2c/` is laid out.
//!
//! Public here is what a user configures or extends: the channel ([`BalancedChannel`], what it
//! reports: [`Answered`], [`CallError`], [`DialError`]), the policies ([`CallPolicy`],
//! [`RetryableCodes`], [`Backoff`], [`RetryBudget`], [`EjectionPolicy`]) and picking
//! ([`Strategy`], the built-in rules, [`Pick`] for a rule of your own and what it reads:
//! [`Endpoint`], [`Load`], [`Candidates`]). The live list, the failure classification, the
//! retry decision and the dialer are the channel's own.
//!
//! - `endpoint`: one provider: its channel, ejection state, load.
//! - `load`: requests in flight and latency per endpoint (what least-loaded reads).
//! - `endpoint_set`: the live list (one channel per node, lock-free reads) and picking in
//!   tiers (healthy weighted, healthy backups, fail open).
//! - `candidates`: what a strategy draws from, prepared at each list update (O(1) picks).
//! - `strategy`: picking rules as a trait ([`Pick`]) with the built-in [`Strategy`]s beside it
//!   (Curator's `ProviderStrategy`).
//! - `ejection`: outlier ejection as a policy (Envoy's outlier detection, Curator's
//!   `DownInstancePolicy`).
//! - `failure` and `retry`: what a failure means (never sent, maybe processed, an
//!   application's answer) and the one retry decision, with Finagle's retry budget.
//! - `body`: request bodies buffered up to a limit so a never-sent request can go elsewhere.
//! - `dialer`: opening a connection (plaintext, or TLS for `https://`), bounded until the
//!   provider has spoken HTTP/2; `replay` gives the greeting's bytes back to HTTP/2.
//! - `deadline`: the caller's deadline, the attempt timeout and how a hung provider is found
//!   (the rule in one place).
//! - `route`: where attempts go: the live list (or, for the master client, the master).
//! - `channel`: [`BalancedChannel`], the `Service` that ties them together per request.

pub(crate) mod body;
pub(crate) mod candidates;
pub(crate) mod channel;
pub(crate) mod deadline;
pub(crate) mod dialer;
pub(crate) mod ejection;
pub(crate) mod endpoint;
pub(crate) mod endpoint_set;
pub(crate) mod failure;
pub(crate) mod liveness;
pub(crate) mod load;
mod metrics;
mod replay;
pub(crate) mod retry;
pub(crate) mod route;
pub(crate) mod strategy;

pub use body::DEFAULT_BUFFER_LIMIT;
pub use candidates::Candidates;
pub use channel::{Answered, BalancedChannel, CallError, PROVIDER_METADATA, status_trailers};
pub use dialer::DialError;
pub use ejection::EjectionPolicy;
pub use endpoint::{DEFAULT_WEIGHT, Endpoint, weight_of};
pub(crate) use endpoint_set::EndpointSet;
pub use load::Load;
pub use retry::{Backoff, CallPolicy, RetryBudget, RetryableCodes};
pub use strategy::{First, LeastLoaded, Pick, Random, RoundRobin, Strategy};

/// Publishes the size of a consumer's live list (`zoorpc_live_endpoints{base_path}`).
pub(crate) fn live_endpoints(base_path: &str, count: usize) {
    metrics::live(base_path, count);
}
