//! Following a value kept in ZooKeeper: the one loop behind [`crate::Discovery`] (the providers
//! under a base path) and [`crate::MasterWatch`] (the master's address). A recipe says how to
//! read its value (arming watches) and how to wait for the next change ([`Follow`]); this loop
//! does the rest, the same way for both:
//! - wait for a connected session; after a reconnect or a new session, read again (events during
//!   a disconnect can be lost; a new session has lost every watch);
//! - publish the value when it differs from the last one;
//! - wait for a watch or a session change, whichever comes first;
//! - after a failed read, pause ([`RETRY_PAUSE`]) or wait for the session, then read again.
//!
//! [`Watched::start`] returns once the first read succeeded, so the value is real from the start;
//! a first read that fails for good (e.g. not authorized) is its error, and a ZooKeeper out of
//! reach for the connect timeout is [`Error::Unreachable`]. Dropping the [`Watched`] stops the
//! task.

use std::future::Future;
use std::ops::ControlFlow;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::debug;
use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::plumbing::{RETRY_PAUSE, unanswered};
use crate::session::{Session, SessionStatus};

/// A value followed in ZooKeeper: how to read it and how to hear of its next change.
pub(crate) trait Follow: Send + 'static {
    /// What is published.
    type Value: PartialEq + Send + Sync + 'static;

    /// What is followed, for logs and errors (a path).
    fn path(&self) -> &str;

    /// The session changed (reconnected, or a new session): watches may be lost, read afresh.
    /// `new_session` says whether it is a new session (every watch of the old one is gone).
    fn session_changed(&mut self, new_session: bool);

    /// Reads the value, arming the watches `changed` waits on; `Ok(None)` means "read again at
    /// once" (the node appeared or vanished between two reads).
    fn read(
        &mut self,
        status: &SessionStatus,
    ) -> impl Future<Output = std::result::Result<Option<Self::Value>, zk::Error>> + Send;

    /// Waits until a watch armed by the last read reports a change.
    fn changed(&mut self) -> impl Future<Output = ()> + Send;
}

/// A value published by a background task, which is aborted on drop.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    value: watch::Receiver<T>,
    task: JoinHandle<()>,
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Starts following with `follow` (publishing `initial` until the first read) and returns
    /// after the first read; see the module docs for the errors.
    pub(crate) async fn start<F>(session: &Session, follow: F, initial: T) -> Result<Watched<T>>
    where
        F: Follow<Value = T>,
    {
        let path = follow.path().to_owned();
        let (tx, mut value) = watch::channel(initial);
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(run(session.clone(), follow, tx, ready_tx));
        let bound = session.connect_timeout();
        let first = tokio::time::timeout(bound, ready_rx).await;
        let failed = match first {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some(Error::zk("read", &path, e)),
            // The task ended (cannot happen while the session lives) or the bound passed.
            Ok(Err(_)) | Err(_) => Some(Error::Unreachable {
                connect: session.connect_string().to_owned(),
                timeout: bound,
                detail: format!("could not read {path}"),
            }),
        };
        if let Some(e) = failed {
            task.abort();
            return Err(e);
        }
        value.mark_unchanged();
        Ok(Watched { value, task })
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

/// The follow loop (see the module docs).
async fn run<F: Follow>(
    session: Session,
    mut follow: F,
    tx: watch::Sender<F::Value>,
    ready: oneshot::Sender<std::result::Result<(), zk::Error>>,
) {
    let mut ready = Some(ready);
    let mut statuses = session.subscribe();
    let mut generation = None;
    loop {
        let status = statuses.borrow_and_update().clone();
        if !status.is_connected() {
            // Keep the last value; read again when the link is back.
            if statuses.changed().await.is_err() {
                return;
            }
            follow.session_changed(false);
            continue;
        }
        if generation != Some(status.generation) {
            if generation.is_some() {
                follow.session_changed(true);
            }
            generation = Some(status.generation);
        }
        let flow = match follow.read(&status).await {
            Ok(Some(value)) => {
                publish(&tx, value);
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Ok(()));
                }
                next_change(&mut follow, &mut statuses).await
            }
            Ok(None) => ControlFlow::Continue(()),
            Err(e) => after_failed_read(e, &mut follow, &mut statuses, &mut ready).await,
        };
        if flow.is_break() {
            return;
        }
    }
}

/// Publishes `value` if it differs from the last one.
fn publish<T: PartialEq>(tx: &watch::Sender<T>, value: T) {
    tx.send_if_modified(|current| {
        let changed = *current != value;
        if changed {
            *current = value;
        }
        changed
    });
}

/// Waits for a watch of the last read or a session change, whichever comes first; `Break` once
/// the session is gone.
async fn next_change<F: Follow>(
    follow: &mut F,
    statuses: &mut watch::Receiver<SessionStatus>,
) -> ControlFlow<()> {
    tokio::select! {
        // The session first: after a change the watches of the last read may belong to an
        // ended client and must not be awaited any more.
        biased;
        changed = statuses.changed() => session_moved(changed, follow),
        () = follow.changed() => ControlFlow::Continue(()),
    }
}

/// After a failed read: a first read refused for good ends the task with its error; any other
/// is read again after [`RETRY_PAUSE`] or a session change. `Break` when the loop ends.
async fn after_failed_read<F: Follow>(
    e: zk::Error,
    follow: &mut F,
    statuses: &mut watch::Receiver<SessionStatus>,
    ready: &mut Option<oneshot::Sender<std::result::Result<(), zk::Error>>>,
) -> ControlFlow<()> {
    debug!(error = %e, path = follow.path(), "read failed; trying again");
    if !unanswered(&e)
        && !matches!(e, zk::Error::SessionExpired)
        && let Some(ready) = ready.take()
    {
        // A first read refused for good (not authorized, say): its error, at once.
        let _ = ready.send(Err(e));
        return ControlFlow::Break(());
    }
    tokio::select! {
        () = tokio::time::sleep(RETRY_PAUSE) => ControlFlow::Continue(()),
        changed = statuses.changed() => session_moved(changed, follow),
    }
}

/// The session's status changed: read afresh, unless the session is gone (`Break`).
fn session_moved<F: Follow>(
    changed: std::result::Result<(), watch::error::RecvError>,
    follow: &mut F,
) -> ControlFlow<()> {
    if changed.is_err() {
        return ControlFlow::Break(());
    }
    follow.session_changed(false);
    ControlFlow::Continue(())
}
