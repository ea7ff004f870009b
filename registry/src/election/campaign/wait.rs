//! What the campaign waits for between two steps (see [`Next`]).

use zookeeper_client as zk;

use super::{Campaign, Next};
use crate::plumbing::RETRY_PAUSE;

impl Campaign {
    /// Waits for what `next` says before the next step; whether the node's watch reported it
    /// deleted while standing by (a poised standby takes it at once, see `poised.rs`).
    pub(super) async fn wait(&mut self, next: Next, client: &zk::Client) -> bool {
        match next {
            Next::Watch(watcher) => {
                return watcher.changed().await.event_type == zk::EventType::NodeDeleted;
            }
            Next::Probe(watcher, suspect) => {
                return self.probe(watcher, suspect).await;
            }
            Next::Master(watcher, companion_watcher) => {
                self.hold(client, watcher, companion_watcher).await;
            }
            Next::WatchUntil(watcher, deadline) => {
                tokio::select! {
                    _ = watcher.changed() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
            }
            Next::Either(a, b) => {
                tokio::select! {
                    _ = a.changed() => {}
                    _ = b.changed() => {}
                }
            }
            Next::StepDown([a, b, c]) => {
                tokio::select! {
                    _ = a.changed() => {}
                    _ = b.changed() => {}
                    _ = c.changed() => {}
                }
            }
            Next::Again | Next::Refused(_) => {}
            Next::Pause => tokio::time::sleep(RETRY_PAUSE).await,
        }
        false
    }
}

/// Resolves when the watched node is deleted; never for another event (our own writes to our
/// participant node, a session event: the session's status decides those).
pub(super) async fn deleted(watch: zk::OneshotWatcher) {
    if watch.changed().await.event_type == zk::EventType::NodeDeleted {
        return;
    }
    std::future::pending().await
}
