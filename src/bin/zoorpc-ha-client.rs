//! The HA client program as a binary, so tests can check its output lines. Same code as
//! `cargo run --example ha_client`.
fn main() {
    zoorpc::apps::ha_client::main();
}
