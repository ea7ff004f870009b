#![warn(missing_docs)]
//! # zoorpc-consumer
//!
//! The client side: a live list of providers from ZooKeeper, a balanced channel any tonic client
//! runs on, picking strategies, ejection, failover.
//!
//! ## Layout
//! - [`consumer`]: [`Consumer`]: `connect`, `channel()` for any tonic client, `lookup()`,
//!   `say_hello()`, `call()`.
//! - [`balance`]: the balancer: the live list ([`EndpointSet`]), picking strategies
//!   ([`Strategy`], [`Pick`]), ejection ([`EjectionPolicy`]), the retry decision and budget,
//!   request buffering, and [`BalancedChannel`], the tower `Service` that ties them together.
//! - [`master_client`]: [`MasterClient`], the active/standby mode: every call goes to the
//!   current master of an election path, retried across a switch-over.
//! - [`snapshot`]: the last known list on disk (`ConsumerConfig::snapshot_path`), served at
//!   start while ZooKeeper is out of reach.
//! - [`tls`]: [`ConsumerTls`], calling `https://` providers: trusted CAs, an optional client
//!   certificate; never plaintext to an `https://` provider.
//! - `live_list`: the task that follows discovery into the endpoint set and the snapshot.
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

pub mod balance;
pub mod consumer;
pub mod error;
mod live_list;
pub mod master_client;
pub mod snapshot;
pub mod tls;

pub use balance::{
    Answered, Backoff, BalancedChannel, CallError, DialError, EjectionPolicy, Endpoint,
    EndpointSet, Failure, Pick, RetryBudget, RetryableCodes, Strategy, classify, dialer,
    endpoint_set, failure,
};
pub use consumer::{Answer, CallPolicy, Consumer, ConsumerConfig};
pub use error::{Error, Result};
pub use master_client::{MasterAnswer, MasterClient, MasterClientConfig};
pub use tls::ConsumerTls;
pub use zoorpc_proto::{Pem, TlsError};
