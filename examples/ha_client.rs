//! A client loop that always calls the current master, retrying across a switch-over.
//!
//! `cargo run --example ha_client -- --zk 127.0.0.1:2181 --calls 20 --interval-ms 200`
//! prints `ok <addr>` or `err <reason>` per call, then `calls=N ok=N failed=N`.
fn main() {
    zoorpc::apps::ha_client::main();
}
