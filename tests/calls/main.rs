//! Calls through the balanced channel against real providers: failover, deadlines, retries,
//! picking, hung providers, rolling restarts, TLS, reflection, interop with stock gRPC tools
//! and with Apache Curator's service discovery (the Java fleets),
//! what error lines say, how both kinds of server stop (answering through their drain grace),
//! a stock client balancing through `zoorpc xds`,
//! and tower's own balancer on the consumer's discovery.
//!
//! One test binary of several files (one link, one shared ZooKeeper): `cargo test --test calls`;
//! one file's tests: `cargo test --test calls channel::`.

#[path = "../common/mod.rs"]
mod common;

mod channel;
mod curator;
mod deadlines;
mod failover;
mod hung_providers;
mod interop;
mod messages;
mod picking;
mod reflection;
mod retries;
mod rolling_restart;
mod servers;
mod tls;
mod tower_discover;
mod xds;
