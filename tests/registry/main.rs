//! The registry end to end against a real ZooKeeper: registration and discovery (zoorpc's layout
//! and Curator's), ACLs, a chroot, the snapshot on disk, tampering, ZooKeeper outages and
//! ensembles, forced session expiries, real network partitions and slow links.
//!
//! One test binary of several files (one link, one shared ZooKeeper): `cargo test --test registry`;
//! one file's tests: `cargo test --test registry discovery::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/hosts.rs"]
mod hosts;

mod access_control;
mod bad_input;
mod chroot;
mod curator;
mod discovery;
mod ensemble;
mod expiry_rounds;
mod partitions;
mod slow_network;
mod snapshot;
mod tampering;
mod zookeeper_outage;
