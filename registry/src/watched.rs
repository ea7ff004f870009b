//! `Watched<T>`: a value a background task keeps up to date from ZooKeeper (the provider snapshot
//! of a `Discovery`, the master address of a `MasterFollower`). Starting it returns after the
//! task's first read, so the value is real from the start; dropping it stops the task.

use std::future::Future;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// A value published by a background task, which is aborted on drop.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    value: watch::Receiver<T>,
    task: JoinHandle<()>,
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Spawns `run(publisher, ready)` and waits until it sends `ready` (after its first read)
    /// or ends; `initial` is the value until it publishes.
    pub(crate) async fn start<F>(
        initial: T,
        run: impl FnOnce(watch::Sender<T>, oneshot::Sender<()>) -> F,
    ) -> Watched<T>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (tx, mut value) = watch::channel(initial);
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(run(tx, ready_tx));
        // Sent after the first read, or dropped if the task ends first: never a hang.
        let _ = ready_rx.await;
        value.mark_unchanged();
        Watched { value, task }
    }

    /// A receiver of the value; `changed()` fires on every new one.
    pub(crate) fn subscribe(&self) -> watch::Receiver<T> {
        self.value.clone()
    }

    /// The value now.
    pub(crate) fn get(&self) -> T
    where
        T: Clone,
    {
        self.value.borrow().clone()
    }
}

impl<T> Drop for Watched<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
