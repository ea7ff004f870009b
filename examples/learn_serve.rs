//! Learn the API, 1 of 3: serve your own gRPC service and keep it registered.
//!
//! `cargo run --example learn_serve -- 127.0.0.1:2181` (start a ZooKeeper first: `make zookeeper`).
//! Run it two or three times, then `learn_call` in another terminal; Ctrl-C stops a provider
//! gracefully (its node is deleted first, then in-flight calls drain).
//!
//! The service here is the tests' `echo.v1.Echo` (`tests/proto/echo.proto`); yours is whatever
//! `tonic-build` generated for your proto: `YourServer::new(YourImpl)`.

use std::time::Duration;

use zoorpc::apps::echo::{EchoServer, EchoService};
use zoorpc::provider::{Provider, ProviderConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: learn_serve [HOST:PORT]  (the ZooKeeper; default 127.0.0.1:2181)";
    let (zk, _) = zoorpc::apps::learn_args(usage, &[]);
    // Port 0: a free port. The node `/services/echo/provider<seq>` will hold its URL.
    let config = ProviderConfig::new(zk, "/services/echo", 0)
        // `?weight=N` in the URL: picked in proportion to it (default 100; 0 = a backup).
        .metadata("weight", "100")
        // How long consumers get to see the node gone before the listener closes.
        .drain_grace(Duration::from_millis(500));

    // Serves, checks through gRPC health that the service answers at the advertised URL, and
    // only then registers.
    let provider = Provider::serve(config, EchoServer::new(EchoService::default())).await?;
    println!("serving {} at {:?}", provider.url(), provider.node_path());

    // Until SIGTERM or Ctrl-C; `provider.run_until(future)` takes any stop signal you like.
    provider.run_until_signal().await?;
    println!("stopped");
    Ok(())
}
