//! Registration and discovery end to end, providers in process, against a real ZooKeeper.

use crate::common;

use std::time::{Duration, Instant};

use common::{is_provider_node_name, raw_client, zk};
use zookeeper_client as zkc;
use zoorpc::consumer::{Consumer, ConsumerConfig, Error as ConsumerError};
use zoorpc::provider::{Provider, ProviderConfig};
use zoorpc::registry::{Discovery, ProviderUrl, Registration, Session, SessionConfig};
use zoorpc_testkit::{Request, ZkProxy, unique_path};

mod listing;
mod serving;
mod sessions;

async fn provider(base: &str) -> Provider {
    provider_at(&zk().connect_string(), base).await
}

async fn provider_at(connect: &str, base: &str) -> Provider {
    let config = ProviderConfig::new(connect, base, 0).drain_grace(Duration::from_millis(50));
    zoorpc::apps::hello::serve(config)
        .await
        .expect("provider starts")
}

/// Waits for the registration's node path to become something other than `old`.
async fn next_node(
    nodes: &mut tokio::sync::watch::Receiver<Option<String>>,
    old: &str,
    timeout: Duration,
) -> Result<String, tokio::time::error::Elapsed> {
    tokio::time::timeout(timeout, async {
        loop {
            if let Some(n) = nodes.borrow_and_update().clone()
                && n != old
            {
                return n;
            }
            nodes.changed().await.unwrap();
        }
    })
    .await
}
