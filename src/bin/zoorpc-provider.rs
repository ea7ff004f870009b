//! The provider program as a binary, so tests can run providers in their own processes and kill
//! them. Same code as `cargo run --example provider`.
fn main() {
    zoorpc::apps::provider::main();
}
