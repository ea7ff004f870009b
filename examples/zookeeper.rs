//! A standalone ZooKeeper on 127.0.0.1:2181 for trying the other programs by hand.
//!
//! `cargo run --example zookeeper -- [--port 2181]`; Ctrl-C stops it and removes its data.
fn main() {
    zoorpc::apps::zookeeper::main();
}
