//! Where the next attempt of a call goes: an endpoint from the route (or, with wait-for-ready,
//! one that appears), within the caller's deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use super::super::super::endpoint::Endpoint;
use super::Call;

impl Call {
    /// The endpoint of the next attempt and what remains of the caller's deadline; `None`
    /// when the route has none left or the deadline passed.
    pub(super) async fn next_endpoint(&self) -> Option<(Arc<Endpoint>, Option<Duration>)> {
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
}
