//! Where a balanced channel's attempts go: the `Route` trait, and the consumer's route, which
//! picks from the live list (`ListRoute`). The master client's route follows the master
//! (`master_client/route.rs`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tonic::Status;

use super::ejection::{AttemptStart, Strike};
use super::endpoint::Endpoint;
use super::endpoint_set::EndpointSet;
use crate::error::Error;

/// A boxed, sendable future (what a route's `next` returns).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the attempts of a balanced channel go.
pub(crate) trait Route: Send + Sync + fmt::Debug + 'static {
    /// The endpoint for the next attempt of a call that started at `started`, having tried
    /// `tried` (in order); `None` when there is none left. May wait, within a bound (the master
    /// client waits for a new master).
    fn next<'a>(
        &'a self,
        tried: &'a [Arc<Endpoint>],
        started: Instant,
    ) -> BoxFuture<'a, Option<Arc<Endpoint>>>;

    /// The answer of [`Route::next`] when the route knows it without waiting (`Some`), so the
    /// call does not box a future for it; `None`: ask `next`.
    fn next_now(&self, _tried: &[Arc<Endpoint>]) -> Option<Option<Arc<Endpoint>>> {
        None
    }

    /// Waits until [`Route::next`] may find an endpoint not in `tried` (the list changed);
    /// never, for a route whose `next` waits itself.
    fn changed<'a>(&'a self, _tried: &'a [Arc<Endpoint>]) -> BoxFuture<'a, ()> {
        Box::pin(std::future::pending())
    }

    /// A failure of an attempt on `endpoint` that started at `started` (ejection; see
    /// [`Strike`] for what each kind weighs).
    fn record_failure(&self, endpoint: &Endpoint, started: AttemptStart, strike: Strike);

    /// Whether attempts keep the endpoints' load (in flight, latency): only when picking
    /// reads it.
    fn tracks_load(&self) -> bool {
        false
    }

    /// Whether a call stops after an attempt failed with `error`, whatever the retry policy
    /// says: the route knows another attempt cannot help.
    fn gives_up_after(&self, _error: &(dyn std::error::Error + 'static)) -> bool {
        false
    }

    /// The status of a call that found no endpoint at all.
    fn no_endpoint(&self) -> Status;

    /// Why a call whose last attempt was on `last` found nowhere else to go, said after that
    /// attempt's failure (what the caller can do about it); `None` (the default): nothing to add.
    fn gave_up_on(&self, _last: &Endpoint) -> Option<String> {
        None
    }

    /// For a route whose one endpoint can be replaced (the master client's switch-over): a
    /// future that resolves once the route names another endpoint than `endpoint`, so an
    /// idempotent attempt still waiting on it may be abandoned and sent there. `None` (the
    /// default): the route has no switch-overs, and a call waits on its attempt as the limits
    /// say.
    fn superseded<'a>(&'a self, _endpoint: &'a Endpoint) -> Option<BoxFuture<'a, ()>> {
        None
    }

    /// Whether the route names another endpoint than `from` now (a switch-over happened);
    /// `None` (the default) for a route without switch-overs.
    fn switched_from(&self, _from: &Endpoint) -> Option<bool> {
        None
    }

    /// The endpoint of a switch-over away from `from`, for an idempotent call that may not try
    /// `from` again (retry budget or attempts spent): waits, within the route's bound for a call
    /// that started at `started`, until the route names another endpoint. `None` for a route
    /// without switch-overs (the default), or when the bound passes.
    fn switch_over<'a>(
        &'a self,
        _from: &'a Endpoint,
        _started: Instant,
    ) -> BoxFuture<'a, Option<Arc<Endpoint>>> {
        Box::pin(std::future::ready(None))
    }
}

/// The consumer's route: pick from the live list.
#[derive(Debug)]
pub(crate) struct ListRoute {
    pub(crate) endpoints: Arc<EndpointSet>,
    pub(crate) base_path: String,
    /// The task that keeps the list following ZooKeeper: shared with the `Consumer`, so a
    /// channel kept after its consumer was dropped still follows the list (it stops when the
    /// consumer and every channel are gone).
    pub(crate) _follower: Arc<Follower>,
}

/// A background task that runs while anything holds it, aborted when the last holder drops it.
#[derive(Debug)]
pub(crate) struct Follower(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Route for ListRoute {
    fn next<'a>(
        &'a self,
        tried: &'a [Arc<Endpoint>],
        _started: Instant,
    ) -> BoxFuture<'a, Option<Arc<Endpoint>>> {
        Box::pin(std::future::ready(self.endpoints.pick_after(tried)))
    }

    fn next_now(&self, tried: &[Arc<Endpoint>]) -> Option<Option<Arc<Endpoint>>> {
        Some(self.endpoints.pick_after(tried))
    }

    fn changed<'a>(&'a self, tried: &'a [Arc<Endpoint>]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut updates = self.endpoints.updates();
            loop {
                updates.borrow_and_update();
                if self.endpoints.pick_after(tried).is_some() {
                    return;
                }
                if updates.changed().await.is_err() {
                    // The list is no longer kept: nothing will change.
                    std::future::pending::<()>().await;
                }
            }
        })
    }

    fn record_failure(&self, endpoint: &Endpoint, started: AttemptStart, strike: Strike) {
        self.endpoints.record_strike(endpoint, started, strike);
    }

    fn tracks_load(&self) -> bool {
        self.endpoints.reads_load()
    }

    fn no_endpoint(&self) -> tonic::Status {
        tonic::Status::unavailable(
            Error::NoProviders {
                base_path: self.base_path.clone(),
            }
            .to_string(),
        )
    }
}
