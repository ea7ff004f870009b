//! The balanced channel with a service that is not HelloService (`tests/proto/echo.proto`):
//! one client made once and kept, failing over kills, stops and newcomers; streaming both ways;
//! buffering; empty and dead lists; each picking strategy.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::echo_load::{
    Load, assert_no_failures, consumer, echo_provider, say, server_of, spawn_echo,
};
use common::{eventually, raw_client, wait_node_gone, zk};
use zookeeper_client as zkc;
use zoorpc::apps::echo::{EchoClient, EchoRequest, EchoServer, EchoService};
use zoorpc::consumer::{Answered, BalancedChannel, CallPolicy, Consumer, Strategy};
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc_testkit::unique_path;

mod following;
mod picking;
mod ping_policy;
mod requests;

/// Registers `n` providers under `base` at loopback ports nothing listens on (connections are
/// refused), from a raw session of their own: returned, since dropping it removes the nodes.
async fn register_dead(base: &str, n: usize) -> zkc::Client {
    let raw = raw_client(&zk().connect_string()).await;
    match raw
        .mkdir(
            base,
            &zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all()),
        )
        .await
    {
        Ok(()) | Err(zkc::Error::NodeExists) => {}
        Err(e) => panic!("creating {base}: {e}"),
    }
    for _ in 0..n {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        raw.create(
            &format!("{base}/provider"),
            format!("http://127.0.0.1:{port}").as_bytes(),
            &zkc::CreateMode::EphemeralSequential.with_acls(zkc::Acls::anyone_all()),
        )
        .await
        .unwrap();
    }
    raw
}
