//! The bodies of zoorpc's programs, shared by the `zoorpc-provider` binary and the examples.

pub mod client;
pub mod ha_client;
pub mod ha_server;
pub mod master_job;
pub mod provider;
pub mod zookeeper;
