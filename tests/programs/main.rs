//! The programs as operators and other tools drive them: `zoorpc` and the `zoorpc-*` programs'
//! lines, exit codes and flags (every flag given garbage), the gRPC proxy, TLS through the
//! programs, operator views and `--metrics`.
//!
//! One test binary of several files (one link, one shared ZooKeeper): `cargo test --test programs`;
//! one file's tests: `cargo test --test programs cli::`.

#[path = "../common/mod.rs"]
mod common;

mod cli;
pub mod console;
mod console_browser;
mod contender_addresses;
mod election_paths;
mod examples;
mod folders;
mod garbage_flags;
mod metrics;
mod negative_values;
mod operator_views;
mod program_agreement;
mod programs;
mod prometheus;
mod provider_stop;
mod proxy;
mod tls_programs;
mod wording;
mod xds;
