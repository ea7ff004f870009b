//! A client loop: calls a random live provider N times.
//!
//! `cargo run --example client -- --zk 127.0.0.1:2181 --calls 20 --interval-ms 200`
fn main() {
    zoorpc::apps::client::main();
}
