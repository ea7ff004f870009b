//! A job that runs every interval on the master only; start two and kill the one printing runs.
//!
//! `cargo run --example master_job -- --zk 127.0.0.1:2181 --interval-ms 1000`
//! prints `run epoch=<n> seq=<k>` per run; the numbers continue across failovers.
fn main() {
    zoorpc::apps::master_job::main();
}
