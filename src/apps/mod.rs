//! The bodies of zoorpc's programs, shared by the `zoorpc-provider` binary and the examples.

pub mod client;
pub mod provider;
