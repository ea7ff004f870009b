//! The client program as a binary (same code as `cargo run --example client`), so tests and
//! scripts can drive it by path.
fn main() {
    zoorpc::apps::client::main();
}
