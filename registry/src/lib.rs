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
//! - [`provider_url`]: [`ProviderUrl`], the strict parser of a provider node's data.
//! - [`connect_string`], [`path`]: input validation with errors that say what to fix.
//! - `testing` (feature `testing`): a real-ZooKeeper harness.
//!
//! ## ZooKeeper layout
//! Providers: `/registry/provider0000000042` = `http://127.0.0.1:11214` (UTF-8, metadata as
//! query parameters). Readable with `zkCli.sh`.
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

pub mod connect_string;
pub mod discovery;
pub mod error;
pub mod path;
pub mod provider_url;
pub mod registration;
pub mod session;

#[cfg(feature = "testing")]
pub mod testing;

pub use connect_string::ConnectString;
pub use discovery::{Discovery, ProviderNode, Providers};
pub use error::{Error, Result};
pub use path::validate_path;
pub use provider_url::ProviderUrl;
pub use registration::{PROVIDER_PREFIX, Registration};
pub use session::{LinkState, Session, SessionConfig, SessionStatus};
