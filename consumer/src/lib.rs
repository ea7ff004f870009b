#![warn(missing_docs)]
//! # zoorpc-consumer
//!
//! The client side: a live list of providers from ZooKeeper, a balanced channel any tonic client
//! runs on, picking strategies, ejection, failover.
//!
//! ## Layout
//! - `consumer`: [`Consumer`]: `connect`, `channel()` for any tonic client, `call()` naming the
//!   provider that answered, `lookup()`, `say_hello()`; its [`ConsumerConfig`].
//! - [`balance`]: the balancer: picking strategies ([`Strategy`], [`Pick`]), ejection
//!   ([`EjectionPolicy`]), the retry policy and budget ([`CallPolicy`], [`RetryBudget`]), and
//!   [`BalancedChannel`], the tower `Service` that ties them together over the live list.
//! - `discover`: [`ProviderChanges`] ([`Consumer::discover`]), the live list as tower's
//!   `Discover`, for tower's own balancers.
//! - [`master_client`]: [`MasterClient`], the active/standby mode: every call goes to the
//!   current master of an election path, retried across a switch-over.
//! - `snapshot`: the last known list on disk ([`ConsumerConfig::snapshot_path`]), served at
//!   start while ZooKeeper is out of reach.
//! - `tls`: [`ConsumerTls`], calling `https://` providers: trusted CAs, an optional client
//!   certificate; never plaintext to an `https://` provider.
//! - `live_list`: the task that follows discovery into the endpoint set and the snapshot.
//! - [`error`]: [`Error`], including [`Error::NoProviders`]; [`error::settings`], the names
//!   the messages give the settings a user can change.
//!
//! ## Public surface
//! What a program needs is public and re-exported here (and by the `zoorpc` facade as
//! `zoorpc::consumer`); how the channel does its work (the live list, failure classification,
//! the retry decision, the dialer, the snapshot file) is not. Configs and policies have builder
//! methods and are `#[non_exhaustive]`: their fields can be read and set, and a field added
//! later breaks no one. Configs are built as tonic's `Endpoint` is (`ConsumerConfig::new(..)
//! .strategy(..)`), policies from their constants (`CallPolicy::IDEMPOTENT.with_..(..)`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_consumer::Error> {
//! use zoorpc_consumer::Consumer;
//! let consumer = Consumer::connect("127.0.0.1:2181", "/registry").await?;
//! let answer = consumer.say_hello("zoo").await?;
//! println!("{} from {}", answer.value.message, answer.url);
//! let mut client = consumer.lookup()?;
//! let reply = client.say_hello(zoorpc_proto::HelloRequest { name: "zoo".into() }).await;
//! # let _ = reply; Ok(()) }
//! ```

pub mod balance;
mod consumer;
mod discover;
pub mod error;
mod live_list;
pub mod master_client;
mod snapshot;
mod tls;

pub use balance::{
    Answered, Backoff, BalancedChannel, CallError, CallPolicy, Candidates, DialError,
    EjectionPolicy, Endpoint, Load, Pick, RetryBudget, RetryableCodes, Strategy,
};
pub use consumer::{Answer, Consumer, ConsumerConfig};
pub use discover::ProviderChanges;
pub use error::{Error, Result};
pub use master_client::{MasterAnswer, MasterClient, MasterClientConfig};
pub use tls::ConsumerTls;
pub use zoorpc_proto::{Pem, TlsError};

/// The live list filled by hand, for the workspace's picking benchmark (feature `testing`;
/// not part of the API).
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing {
    pub use crate::balance::endpoint_set::EndpointSet;
}
