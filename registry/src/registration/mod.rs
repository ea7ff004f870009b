//! `Registration`: a provider's `EPHEMERAL_SEQUENTIAL` node `<base>/provider<10 digits>` holding
//! its URL, or its `EPHEMERAL` instance node `<base>/<name>/<id>` in the Curator layout holding
//! Curator's JSON ([`Registration::register_curator`], [`crate::curator`]), kept in place for as
//! long as the registration lives. Every guarantee below holds for both.
//!
//! Guarantees:
//! - `register` returns once the node exists; missing parents are created (persistent). While
//!   ZooKeeper is out of reach it waits at most the session's connect timeout, then fails with
//!   [`Error::Unreachable`].
//! - Session expiry: the node is re-created in the new session. A reconnect within the same
//!   session re-creates nothing (the node survived).
//! - The node deleted by someone else (an operator, `zkCli.sh delete`; with a credential only
//!   the owner identity can): re-created.
//! - With a credential ([`crate::auth`]) the node and the parents it creates are readable by
//!   all and changeable only by that identity; without the identity, `register` fails with
//!   [`Error::NoAuth`].
//! - Another URL written into the node (`zkCli.sh set`): our URL is written back (with a warning);
//!   consumers follow both changes. Only the data is restored, never another session's node.
//!   Our URL with only its weight changed is kept instead ([`crate::weight`]).
//! - A `create` whose reply was lost: the node is looked up by owner and data before trying
//!   again, so a lost reply never leaves two nodes for one provider.
//! - The Curator layout's node keeps its name (the instance's id) in every session: the same
//!   path after an expiry or a delete. Found there owned by another session (an earlier session
//!   of this registration that ZooKeeper has not ended yet), it is deleted and created again, as
//!   Curator's `ServiceDiscoveryImpl` does, so watchers see the new node. Its JSON written over
//!   is written back whole, but for a change of only the `weight` of its Spring metadata, which
//!   is kept as a URL's weight is ([`crate::weight`]).
//! - `deregister` deletes the node before returning. With ZooKeeper out of reach it gives up
//!   after one session timeout with [`Error::Unreachable`]: the node then goes with the session.
//!   Dropping without deregistering lets the node go with the session (or deletes it in the
//!   background if a runtime is running).

use std::ops::ControlFlow;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

mod create;

use crate::curator::{CuratorInstance, CuratorService};
use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;
use crate::plumbing::{RETRY_PAUSE, unanswered};
use crate::provider_url::ProviderUrl;
use crate::session::{LinkState, Session, SessionStatus};
use create::{NodeName, create_node};

/// The prefix of provider children under a base path: ZooKeeper appends a 10-digit sequence
/// number, e.g. `/registry/provider0000000042`.
///
/// ```
/// assert_eq!(zoorpc_registry::PROVIDER_PREFIX, "provider");
/// ```
pub const PROVIDER_PREFIX: &str = "provider";

/// A live registration of one provider URL under one base path.
#[derive(Debug)]
pub struct Registration {
    session: Session,
    node: watch::Receiver<Option<String>>,
    /// The URL the node stands for as kept (a weight changed in ZooKeeper included).
    url: watch::Receiver<ProviderUrl>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Registration {
    /// Registers `url` under `base_path` and keeps it registered: re-created with the same
    /// data in the new session after an expiry, re-created when someone deletes it, its data
    /// written back when someone changes it; a reconnect within the session re-creates nothing.
    /// Missing parents are created (persistent). Errors: a bad base path, ZooKeeper out of reach
    /// for the session's connect timeout, or a refused create ([`crate::Error::NoAuth`]).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_registry::Error> {
    /// use zoorpc_registry::{ProviderUrl, Registration, Session};
    /// let session = Session::connect_to("127.0.0.1:2181").await?;
    /// let url = ProviderUrl::http("127.0.0.1", 11214)?.with_metadata("weight", "50")?;
    /// let registration = Registration::register(&session, "/registry", &url).await?;
    /// println!("registered {}", registration.node_path().unwrap_or_default());
    /// registration.deregister().await?;
    /// # Ok(()) }
    /// ```
    pub async fn register(session: &Session, base_path: &str, url: &ProviderUrl) -> Result<Self> {
        let base = validate_path(base_path)?.to_owned();
        let data = url.as_str().as_bytes().to_vec();
        Registration::keep(session, base, NodeName::Sequential, data, url).await
    }

    /// Registers the provider at `url` as an instance of `service` in the Curator layout: the
    /// `EPHEMERAL` node `<base>/<name>/<id>` (a new random id) holding the JSON Curator's
    /// `JsonInstanceSerializer` reads ([`crate::curator`]), kept in place as
    /// [`Registration::register`] keeps its node. Errors as `register`'s, and a service name
    /// that is no node name.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zoorpc_registry::Error> {
    /// use zoorpc_registry::curator::{CuratorPayload, CuratorService};
    /// use zoorpc_registry::{ProviderUrl, Registration, Session};
    /// let session = Session::connect_to("127.0.0.1:2181").await?;
    /// let url = ProviderUrl::http("127.0.0.1", 11214)?;
    /// let service = CuratorService::new("greeter").payload(CuratorPayload::SpringCloud);
    /// let registration = Registration::register_curator(&session, &service, &url).await?;
    /// println!("registered {}", registration.node_path().unwrap_or_default());
    /// # Ok(()) }
    /// ```
    pub async fn register_curator(
        session: &Session,
        service: &CuratorService,
        url: &ProviderUrl,
    ) -> Result<Self> {
        let base = service.path()?;
        let instance = CuratorInstance::for_url(service, url);
        let data = instance.to_json(service.payload_kind());
        Registration::keep(session, base, NodeName::Fixed(instance.id), data, url).await
    }

    /// Creates the node `name` under `base` holding `data` and keeps it there.
    async fn keep(
        session: &Session,
        base: String,
        name: NodeName,
        data: Vec<u8>,
        url: &ProviderUrl,
    ) -> Result<Self> {
        let status = session.connected_within_timeout().await?;
        let node = create_node(&status, session.node_acl(), &base, &name, &data).await?;
        info!(node = %node, url = %url, "registered");
        let (node_tx, node_rx) = watch::channel(Some(node.clone()));
        let (url_tx, url_rx) = watch::channel(url.clone());
        let (stop_tx, stop_rx) = oneshot::channel();
        let keeper = Keeper {
            session: session.clone(),
            base,
            name,
            data,
            generation: status.generation,
            node,
            present: true,
            node_tx,
            url_tx,
            statuses: session.subscribe(),
            stop: stop_rx,
        };
        let task = tokio::spawn(keeper.keep());
        Ok(Registration {
            session: session.clone(),
            node: node_rx,
            url: url_rx,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The full path of the node as it is now (`None` while it is being re-created).
    pub fn node_path(&self) -> Option<String> {
        self.node.borrow().clone()
    }

    /// The URL the node stands for now, as this registration keeps it: the one registered, or
    /// it with the weight an operator changed in ZooKeeper ([`crate::weight`]), which is what a
    /// re-created node holds.
    pub fn url(&self) -> ProviderUrl {
        self.url.borrow().clone()
    }

    /// Changes of the node path (a new path after each re-creation).
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.node.clone()
    }

    /// Deletes the node and stops maintaining it. Returns once ZooKeeper confirmed the delete.
    pub async fn deregister(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let Some(node) = self.node_path() else {
            return Ok(());
        };
        let mut attempts = 0;
        loop {
            // Out of reach for a whole session timeout: ZooKeeper expires the session (and the
            // node with it) once this process is gone; waiting longer helps nobody.
            let status = self
                .session
                .connected_within(self.session.session_timeout())
                .await?;
            match status.client.delete(&node, None).await {
                Ok(()) | Err(zk::Error::NoNode) => {
                    info!(node = %node, "deregistered");
                    return Ok(());
                }
                Err(e) if unanswered(&e) && attempts < 10 => attempts += 1,
                Err(e) => return Err(Error::zk("delete", &node, e)),
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        task.abort();
        if let (Some(node), Ok(rt)) = (self.node_path(), tokio::runtime::Handle::try_current()) {
            let client = self.session.client();
            rt.spawn(async move {
                let _ = client.delete(&node, None).await;
            });
        }
    }
}

/// The kept registration: its node, the session it was created in, and whether it is there.
struct Keeper {
    session: Session,
    base: String,
    /// How the node is named (the same when it is created again).
    name: NodeName,
    data: Vec<u8>,
    /// The session generation `node` was created in.
    generation: u64,
    node: String,
    /// Whether `node` is known to be there as ours.
    present: bool,
    node_tx: watch::Sender<Option<String>>,
    /// Where [`Registration::url`] is published: a weight kept changes it.
    url_tx: watch::Sender<ProviderUrl>,
    statuses: watch::Receiver<SessionStatus>,
    stop: oneshot::Receiver<()>,
}

impl Keeper {
    /// Keeps the node in place across deletions and session expiry, until stopped.
    async fn keep(mut self) {
        while self.round().await.is_continue() {}
    }

    /// One round: the node re-created if it is missing, then watched until something changes.
    /// `Break` once stopped or the session is gone.
    async fn round(&mut self) -> ControlFlow<()> {
        let status = self.statuses.borrow_and_update().clone();
        if status.is_connected() && (status.generation != self.generation || !self.present) {
            if status.generation != self.generation {
                info!(old = %self.node, "session expired; re-registering in the new session");
            }
            self.node_tx.send_replace(None);
            match create_node(
                &status,
                self.session.node_acl(),
                &self.base,
                &self.name,
                &self.data,
            )
            .await
            {
                Ok(created) => {
                    info!(node = %created, "re-registered");
                    self.node = created;
                    self.generation = status.generation;
                    self.present = true;
                    self.node_tx.send_replace(Some(self.node.clone()));
                }
                Err(e) => {
                    warn!(error = %e, "re-registration failed; retrying");
                    return self.wait(false, true).await;
                }
            }
        }
        if status.state != LinkState::Connected || status.generation != self.generation {
            return self.wait(true, false).await;
        }
        self.watch_node(&status).await
    }

    /// Watches our own node: a deletion by someone else means we must re-create it; another
    /// URL written into it (an operator's `set`) is put back.
    async fn watch_node(&mut self, status: &SessionStatus) -> ControlFlow<()> {
        let node = &self.node;
        match status.client.get_and_watch_data(node).await {
            Err(zk::Error::NoNode) => {
                warn!(node = %node, "our registration node was deleted; re-registering");
                self.present = false;
                ControlFlow::Continue(())
            }
            Ok((_, stat, _)) if stat.ephemeral_owner != status.client.session_id().0 => {
                // Only after a wiped ZooKeeper can our name come back owned by another session.
                warn!(node = %node, owner = stat.ephemeral_owner, "our registration node now belongs to another session; re-registering");
                self.present = false;
                ControlFlow::Continue(())
            }
            Ok((current, _, _)) if crate::weight::reweighted_data(&self.data, &current) => {
                info!(node = %node, url = %String::from_utf8_lossy(&current), "our weight was changed in ZooKeeper; keeping it");
                self.url_tx
                    .send_modify(|url| *url = crate::weight::kept_url(url, &current));
                self.data = current;
                ControlFlow::Continue(())
            }
            Ok((current, stat, _)) if current != self.data => {
                warn!(
                    node = %node,
                    found = %String::from_utf8_lossy(&current[..current.len().min(256)]),
                    url = %String::from_utf8_lossy(&self.data),
                    "our registration node's data was changed by someone else; restoring our URL"
                );
                self.restore(status, stat.version).await
            }
            Ok((_, _, watcher)) => {
                let Keeper {
                    node,
                    present,
                    statuses,
                    stop,
                    ..
                } = self;
                tokio::select! {
                    event = watcher.changed() => {
                        if event.event_type == zk::EventType::NodeDeleted {
                            warn!(node = %node, "our registration node was deleted; re-registering");
                            *present = false;
                        }
                        ControlFlow::Continue(())
                    }
                    changed = statuses.changed() => status_flow(changed),
                    _ = stop => ControlFlow::Break(()),
                }
            }
            Err(e) => {
                debug!(error = %e, "cannot watch our node now; waiting for the session");
                self.wait(true, true).await
            }
        }
    }

    /// Writes our URL back into our node, found at `version` with another.
    async fn restore(&mut self, status: &SessionStatus, version: i32) -> ControlFlow<()> {
        let node = &self.node;
        match status
            .client
            .set_data(node, &self.data, Some(version))
            .await
        {
            // Restored, or changed again meanwhile: read it again either way.
            Ok(_) | Err(zk::Error::BadVersion) => ControlFlow::Continue(()),
            Err(zk::Error::NoNode) => {
                self.present = false;
                ControlFlow::Continue(())
            }
            Err(e) => {
                debug!(error = %e, node = %node, "cannot restore our node now; waiting for the session");
                self.wait(true, true).await
            }
        }
    }

    /// Waits for a change of the session's status (with `status`), [`RETRY_PAUSE`] (with
    /// `pause`), or the stop. `Break` at the stop or when the session is gone.
    async fn wait(&mut self, status: bool, pause: bool) -> ControlFlow<()> {
        let statuses = &mut self.statuses;
        let changed = async {
            match status {
                true => statuses.changed().await,
                false => std::future::pending().await,
            }
        };
        let paused = async {
            match pause {
                true => tokio::time::sleep(RETRY_PAUSE).await,
                false => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = changed => status_flow(changed),
            _ = paused => ControlFlow::Continue(()),
            _ = &mut self.stop => ControlFlow::Break(()),
        }
    }
}

/// Goes on after the session's status changed; stops once the session is gone.
fn status_flow(changed: Result<(), watch::error::RecvError>) -> ControlFlow<()> {
    match changed {
        Ok(()) => ControlFlow::Continue(()),
        Err(_) => ControlFlow::Break(()),
    }
}
