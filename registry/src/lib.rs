#![warn(missing_docs)]
//! # zoorpc-registry
//!
//! Everything zoorpc says to ZooKeeper. Only this crate imports `zookeeper_client`; the rest of
//! zoorpc sees typed events: sessions, provider snapshots, roles.
//!
//! ## Layout
//! - [`session`]: [`Session`], one logical ZooKeeper session that survives expiry by opening a
//!   new one and publishing it as a new generation; recipes follow it.
//! - [`registration`]: [`Registration`], a provider's `EPHEMERAL_SEQUENTIAL` node
//!   `<base>/provider<seq>` holding its URL, kept in place across expiry and deletion.
//! - [`discovery`]: [`Discovery`], the live snapshot of providers under a base path, fetched
//!   incrementally, surviving disconnects and garbage nodes.
//! - [`curator`]: the layout of Apache Curator's service discovery (and Spring Cloud
//!   Zookeeper): [`CuratorService`], `<base>/<name>/<id>` holding Curator's JSON; registered by
//!   [`Registration::register_curator`], discovered by [`Discovery::watch_curator`].
//! - [`election`]: [`MasterElection`], active/standby election on one `EPHEMERAL` node, with
//!   roles, handover by designation and the [`Fence`] that makes a deposed master's writes fail.
//! - [`master_watch`]: [`MasterWatch`], the current master's address for clients (a watch of
//!   the master node; not a ZooKeeper follower).
//! - [`master_job`]: [`MasterJob`], a job run every interval on the master only, each run
//!   claimed with a fenced write so a failover neither repeats nor skips more than one.
//! - [`auth`]: [`ZkCredential`] (digest `user:password`) and [`NodeAcl`]: with a credential,
//!   every node zoorpc creates is readable by anyone and changeable only by that identity.
//! - [`weight`]: a provider's weight changed at run time (the rule its registration keeps).
//! - [`tree_watch`]: [`TreeWatch`], one watch that hears of every change under a root (for
//!   views of a whole subtree).
//! - [`inspect`]: read-only views for operators (the services under a root with session ids and
//!   ages; the master with its epoch and tenure).
//! - [`provider_url`]: [`ProviderUrl`], the strict parser of a provider node's data.
//! - [`connect_string`], [`path`]: input validation with errors that say what to fix.
//!
//! ## ZooKeeper layout
//! Providers: `/registry/provider0000000042` = `http://127.0.0.1:11214` (UTF-8, metadata as
//! query parameters). Master election: `EPHEMERAL` `/soa/master/services/HelloService:1.0.0` =
//! `127.0.0.1:9090` (the holder's address), next to the persistent `<path>.epoch` (its `mzxid`
//! is the master's epoch), `<path>.participants/<session>` (one `EPHEMERAL` node per contender,
//! see [`election`]), `<path>.jobs/<name>` (the last claimed run of a master-only job) and
//! `<path>.floor/<name>` (the same claim, written first).
//! In the Curator layout: `EPHEMERAL` `/services/<name>/<uuid>` = Curator's `ServiceInstance`
//! JSON. Readable with `zkCli.sh`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_registry::Error> {
//! use zoorpc_registry::{Discovery, ProviderUrl, Registration, Session, SessionConfig};
//! let session = Session::connect(SessionConfig::new("127.0.0.1:2181")).await?;
//! let url = ProviderUrl::http("127.0.0.1", 11214)?;
//! let registration = Registration::register(&session, "/registry", &url).await?;
//! let discovery = Discovery::watch(&session, "/registry").await?;
//! assert!(discovery.providers().iter().any(|p| p.url == url));
//! registration.deregister().await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod connect_string;
pub mod curator;
pub mod discovery;
pub mod election;
pub mod error;
pub mod inspect;
pub mod master_job;
pub mod master_watch;
pub mod plumbing;
pub mod provider_url;
pub mod registration;
pub mod session;
pub mod tree_watch;
mod watched;
pub mod weight;

pub use auth::{AUTH_FILE_ENV, NodeAcl, ZkCredential};
pub use connect_string::ConnectString;
pub use curator::{CuratorPayload, CuratorService};
pub use discovery::{Discovery, NodeFormat, ProviderNode, Providers};
pub use election::{
    ElectionOptions, Fence, MasterElection, Role, RoleChange, RoleChanges, companion_path,
    default_master_path, designate,
};
pub use error::{Error, Result, error_chain, excerpt};
pub use master_job::{JobRecord, JobRun, MasterJob};
pub use master_watch::MasterWatch;
pub use plumbing::path::{self, validate_path};
pub use provider_url::ProviderUrl;
pub use registration::{PROVIDER_PREFIX, Registration};
pub use session::{LinkState, Session, SessionConfig, SessionStatus};
pub use tree_watch::TreeWatch;
