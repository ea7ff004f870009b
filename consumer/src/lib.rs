//! # zoorpc-consumer
//!
//! The client side: a live list of providers from ZooKeeper, random picking, failover.
//!
//! ## Layout
//! - [`consumer`]: [`Consumer`]: `connect`, `lookup()`, `call()` with retry, `say_hello()`.
//! - [`endpoint_set`]: [`EndpointSet`], the lock-free live list (one reusable channel per
//!   provider, ejection with backoff, random picking).
//! - [`dialer`]: opening a provider connection, bounded until the server has spoken HTTP/2.
//! - [`failure`]: classifying a failed call as never sent / maybe processed / application error.
//! - [`tracked_channel`]: [`TrackedChannel`], a channel that reports connection failures to its
//!   endpoint; a tower `Service` any tonic client can use.
//! - [`master_client`]: [`MasterClient`], the active/standby mode: every call goes to the
//!   current master of an election path, retried across a switch-over.
//! - [`error`]: [`Error`], including [`Error::NoProviders`].
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

pub mod consumer;
pub mod dialer;
pub mod endpoint_set;
pub mod error;
pub mod failure;
pub mod master_client;
pub mod tracked_channel;

pub use consumer::{Answer, CallPolicy, Consumer, ConsumerConfig};
pub use dialer::DialError;
pub use endpoint_set::{Endpoint, EndpointSet};
pub use error::{Error, Result};
pub use failure::{Failure, classify};
pub use master_client::{MasterAnswer, MasterClient, MasterClientConfig};
pub use tracked_channel::TrackedChannel;
