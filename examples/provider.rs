//! A provider: serves `hello.v1.HelloService` and registers under the base path.
//!
//! `cargo run --example provider -- --zk 127.0.0.1:2181 --port 0`
//! prints `registered /registry/provider0000000000 http://127.0.0.1:PORT`; stop it with Ctrl-C.
fn main() {
    zoorpc::apps::provider::main();
}
