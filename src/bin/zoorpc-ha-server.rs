//! The HA server program as a binary, so tests can run contenders in their own processes and
//! kill or pause them. Same code as `cargo run --example ha_server`.
fn main() {
    zoorpc::apps::ha_server::main();
}
