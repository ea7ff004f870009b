//! The ZooKeeper program as a binary (same code as `cargo run --example zookeeper`), so tests
//! and scripts can drive it by path.
fn main() {
    zoorpc::apps::zookeeper::main();
}
