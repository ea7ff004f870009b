//! # zoorpc-provider
//!
//! Serving a gRPC service and keeping it registered in ZooKeeper.
//!
//! ## Layout
//! - [`provider`]: [`Provider`], the lifecycle: listen, connect, serve, self-check, register; on
//!   shutdown deregister, drain, stop.
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
pub mod provider;

pub use error::{Error, Result};
pub use greeter::Greeter;
pub use provider::{
    HELLO_SERVICE_NAME, Provider, ProviderConfig, StopSignals, advertised_host, check_serving,
    parse_ip, wait_for_signal,
};
