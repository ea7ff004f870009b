#![warn(missing_docs)]
//! # zoorpc-provider
//!
//! Serving a gRPC service and keeping it registered in ZooKeeper; serving one while master of an
//! election (active/standby), and the standby-refusal protocol clients retry on.
//!
//! Both servers run one lifecycle: listen, serve, check that the advertised address reaches the
//! server, then announce it (register a URL, or contend for mastership); on a stop withdraw,
//! wait the drain grace, drain, stop. Both take any tonic service and the same settings, and
//! have the same entry points: `serve(config, service)`, `serve_with(config, |advertised|
//! services)`, `run_until_signal()`, `run_until(future)`, `shutdown()`.
//!
//! ## Layout
//! - `provider`: [`Provider`] and [`ProviderConfig`]: a server kept registered in ZooKeeper
//!   (`<base>/provider<seq>` holding its URL) for as long as it serves.
//! - `ha_server`: [`HaServer`] and [`HaServerConfig`]: the active/standby server, answering its
//!   services only while this process is master of an election path.
//! - `server`: the lifecycle both run, the settings they share, and [`Services`] (several tonic
//!   services and their names, for health) with [`GrpcService`] (what a service must be).
//! - `master_gate`: [`MasterGate`], the tower layer that lets requests through only while
//!   master and refuses the others; usable on a tonic server of one's own.
//! - [`standby`] (from `zoorpc-proto`, the wire protocol): the refusal: [`standby_status`],
//!   [`is_standby_refusal`], [`STANDBY_METADATA`].
//! - `startup`: what a server checks before it says where it is: the listener, the advertised
//!   address, a health call to it.
//! - `tls`: [`ProviderTls`], serving TLS (`https://` URLs), optionally requiring client
//!   certificates; checked when built.
//! - `shutdown`: [`StopSignals`], SIGTERM and Ctrl-C for programs (the servers' own stops take
//!   a future: `run_until`).
//! - `reflection`, `served_metrics`: what every server adds: gRPC server reflection (v1 and
//!   v1alpha; [`with_reflection`] for a server of one's own) and the
//!   `zoorpc_served_total{method, code}` counter (through the `metrics` facade: a no-op until a
//!   program installs a recorder).
//! - [`error`]: [`Error`], what can go wrong, in words that say what to do, naming settings
//!   ([`error::settings`]) a program may replace with its flags.
//!
//! ```no_run
//! # async fn demo<S: zoorpc_provider::GrpcService>(my_service: S) -> Result<(), zoorpc_provider::Error> {
//! use zoorpc_provider::{Provider, ProviderConfig};
//! let config = ProviderConfig::new("127.0.0.1:2181", "/registry", 0).metadata("weight", "50");
//! let provider = Provider::serve(config, my_service).await?;
//! println!("registered {} {}", provider.node_path().unwrap_or_default(), provider.url());
//! provider.run_until_signal().await?;
//! # Ok(()) }
//! ```

pub mod error;
mod ha_server;
mod master_gate;
mod provider;
mod reflection;
mod served_metrics;
mod server;
mod shutdown;
mod startup;
mod tls;

pub use error::{Error, Result};
pub use ha_server::{HaServer, HaServerConfig};
pub use master_gate::{GateFuture, MasterGate, MasterGated};
pub use provider::{Provider, ProviderConfig};
pub use reflection::with_reflection;
pub use server::services::{GrpcService, Services};
pub use shutdown::StopSignals;
pub use tls::ProviderTls;
pub use zoorpc_proto::standby::{self, STANDBY_METADATA, is_standby_refusal, standby_status};
pub use zoorpc_proto::{Pem, TlsError};
