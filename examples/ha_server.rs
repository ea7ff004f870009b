//! An HA server: serves `hello.v1.HelloService` and contends for mastership; only the master
//! answers. Start two or three, then kill the master and watch a standby take over.
//!
//! `cargo run --example ha_server -- --zk 127.0.0.1:2181 --port 0`
//! prints `listening 127.0.0.1:PORT`, then `role master epoch=<n>` or
//! `role standby master=<addr>` on each change; Ctrl-C resigns and exits.
fn main() {
    zoorpc::apps::ha_server::main();
}
