//! Active/standby end to end: master election, HA servers in process and as processes killed,
//! paused and stopped, rounds of killing the master, the fast takeover, the seed's own contender,
//! master-only jobs.
//!
//! One test binary of several files (one link, one shared ZooKeeper): `cargo test --test ha`;
//! one file's tests: `cargo test --test ha ha_safety::`.

#[path = "../common/mod.rs"]
mod common;

mod drain;
mod election;
mod fast_takeover;
mod ha_participants;
mod ha_process;
mod ha_rounds;
mod ha_safety;
mod ha_server;
mod master_job;
mod master_job_floor;
mod master_job_stamps;
mod master_job_unrun;
mod node_data_lines;
mod paused_master_calls;
mod paused_master_spent;
mod seed_contender;
