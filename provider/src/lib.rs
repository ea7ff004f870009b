#![warn(missing_docs)]
//! # zoorpc-provider
//!
//! Serving a gRPC service and keeping it registered in ZooKeeper; serving one while master of an
//! election (active/standby), and the standby-refusal protocol clients retry on.
//!
//! ## Layout
//! - [`provider`]: [`Provider`], the lifecycle: listen, connect, serve, self-check, register; on
//!   shutdown deregister, drain, stop.
//! - [`ha_server`]: [`HaServer`], the active/standby server: any tonic service, answered only
//!   while this process is master of an election path; same lifecycle shape as [`Provider`].
//! - [`master_gate`]: [`MasterGate`], the tower layer that lets requests through only while
//!   master and refuses the others.
//! - [`standby`] (from `zoorpc-proto`, the wire protocol): the refusal: [`standby_status`], [`is_standby_refusal`],
//!   [`STANDBY_METADATA`].
//! - [`startup`]: what a server checks before it says where it is: the listener, the advertised
//!   address, a health call to it ([`check_serving`]).
//! - [`tls`]: [`ProviderTls`], serving TLS (`https://` URLs), optionally requiring client
//!   certificates; checked when built.
//! - [`shutdown`]: [`StopSignals`], SIGTERM and Ctrl-C for programs (the library's stops take a
//!   future: `run_until`).
//! - [`greeter`]: [`Greeter`], the `hello.v1.HelloService` implementation.
//! - [`error`]: [`Error`], what can go wrong, in words that say what to do.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zoorpc_provider::Error> {
//! use zoorpc_provider::{Provider, ProviderConfig};
//! let provider = Provider::start(ProviderConfig::new("127.0.0.1:2181", "/registry", 0)).await?;
//! println!("registered {} {}", provider.node_path().unwrap_or_default(), provider.url());
//! provider.run_until_signal().await?;
//! # Ok(()) }
//! ```

pub mod error;
pub mod greeter;
pub mod ha_server;
pub mod master_gate;
pub mod provider;
pub mod reflection;
pub mod served_metrics;
pub mod shutdown;
pub mod startup;
pub mod tls;

pub use error::{Error, Result};
pub use greeter::Greeter;
pub use ha_server::{HaServer, HaServerConfig};
pub use master_gate::{MasterGate, MasterGated};
pub use provider::{HELLO_SERVICE_NAME, Provider, ProviderConfig};
pub use reflection::{REFLECTION_V1, REFLECTION_V1ALPHA, with_reflection};
pub use served_metrics::ServedMetrics;
pub use shutdown::StopSignals;
pub use startup::{GrpcService, advertised_host, check_serving, check_serving_tls, parse_ip};
pub use tls::ProviderTls;
pub use zoorpc_proto::standby::{self, STANDBY_METADATA, is_standby_refusal, standby_status};
pub use zoorpc_proto::{Pem, TlsError};
