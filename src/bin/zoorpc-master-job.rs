//! The master-job program as a binary (same code as `cargo run --example master_job`), so tests
//! and scripts can drive it by path.
fn main() {
    zoorpc::apps::master_job::main();
}
