//! Learn the API, 3 of 3: active/standby. Several servers contend for one election path; only the
//! master serves (a standby refuses with a marked UNAVAILABLE); clients follow the master.
//!
//! `cargo run --example learn_active_standby -- 127.0.0.1:2181 server` (twice or more), then
//! `cargo run --example learn_active_standby -- 127.0.0.1:2181 client`; stop the master and
//! watch a standby take over (at once on Ctrl-C, after the session timeout on `kill -9`).

use zoorpc::apps::echo::{EchoClient, EchoRequest, EchoServer, EchoService};
use zoorpc::consumer::{Answered, CallPolicy, MasterClient};
use zoorpc::provider::{HaServer, HaServerConfig};

const PATH: &str = "/soa/master/services/Echo:1.0.0";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: learn_active_standby [HOST:PORT] [server|client]  (default: client)";
    let (zk, role) = zoorpc::apps::learn_args(usage, &["server", "client"]);
    if role.as_deref() == Some("server") {
        // Serves Echo only while master; `server.role()`, `server.election()` for the rest.
        let server = HaServer::serve(
            HaServerConfig::new(zk, PATH, 0),
            EchoServer::new(EchoService::default()),
        )
        .await?;
        println!("{} is {}", server.address(), server.role());
        // Resigns on Ctrl-C, so a standby takes over at once.
        server.run_until_signal().await?;
        return Ok(());
    }
    // Every call goes to the current master, across switch-overs.
    let master = MasterClient::connect(&zk, PATH).await?;
    let mut client = EchoClient::new(master.channel_with(CallPolicy::IDEMPOTENT));
    for i in 0..30 {
        let request = EchoRequest {
            text: format!("call {i}"),
            ..EchoRequest::default()
        };
        match client.say(request).await {
            Ok(r) => println!(
                "answered by {:?}",
                r.extensions().get::<Answered>().map(|a| &a.node)
            ),
            Err(status) => println!("failed: {status}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Ok(())
}
