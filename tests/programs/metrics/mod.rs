//! `--metrics ADDR`: Prometheus text at `/metrics` on the provider, the proxy and the HA server,
//! read with a plain HTTP/1.1 request, and the counters moving with what happens.

use crate::common;

use std::process::Command;
use std::time::Duration;

use crate::prometheus::{free_addr, scrape, value, wait_value};
use common::{eventually_blocking, raw_client, spawn_provider, wait_node_gone, zk};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::{ChildProcess, unique_path};

mod programs;
mod proxy;

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");

/// Registers `provider<n>` nodes under `base` (created with its parents) holding
/// `http://<address>`, as a provider would, with a raw ZooKeeper client.
async fn register_providers(connect: &str, base: &str, addresses: &[&str]) {
    let client = raw_client(connect).await;
    let open =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    client.mkdir(base, &open).await.unwrap();
    for (n, address) in addresses.iter().enumerate() {
        client
            .create(
                &format!("{base}/provider{:010}", n + 1),
                format!("http://{address}").as_bytes(),
                &open,
            )
            .await
            .unwrap();
    }
}

/// Starts `zoorpc proxy` over `base` with `--metrics metrics`: the process and the address it
/// listens on.
fn proxy_with_metrics(connect: &str, base: &str, metrics: &str) -> (ChildProcess, String) {
    let mut cmd = Command::new(ZOORPC);
    cmd.args(["proxy", "--zk", connect, "--listen", "127.0.0.1:0"])
        .args(["--base-path", base, "--metrics", metrics]);
    let mut proxy = ChildProcess::spawn("proxy", cmd).unwrap();
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let listen = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (proxy, listen)
}

/// A `HelloService` client connected to `listen`.
async fn hello_client(listen: &str) -> HelloServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{listen}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HelloServiceClient::new(channel)
}

/// Starts a `HelloService` on a free loopback port that answers every call with `status`:
/// its address.
async fn answering_with(status: fn() -> tonic::Status) -> String {
    use tonic::transport::server::TcpIncoming;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let service = zoorpc::proto::HelloServiceServer::with_interceptor(
        zoorpc::apps::hello::Greeter::new(address.clone()),
        move |_| Err(status()),
    );
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await;
    });
    address
}
