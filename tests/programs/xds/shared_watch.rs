//! Names on one base path share one watch: what a change costs ZooKeeper, counted by
//! ZooKeeper itself (`cons`: the requests each connection sent), is the reads of one watch,
//! however many names map to the path.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use zookeeper_client as zk;

use super::{Ads, assignment_ports};
use crate::common::{runtime, start_xds};
use zoorpc_testkit::{ZkServer, unique_path};

/// Changes (a provider registering) counted.
const CHANGES: u16 = 20;

/// The requests ZooKeeper at `connect` received on each session's connection, by session id
/// (`0x...`), from its `cons` command.
fn requests_by_session(connect: &str) -> BTreeMap<String, u64> {
    let mut stream = std::net::TcpStream::connect(connect).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"cons").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let field = |line: &str, key: &str| {
        let start = line.find(key)? + key.len();
        let end = line[start..].find([',', ')'])? + start;
        Some(line[start..end].to_owned())
    };
    text.lines()
        .filter_map(|line| {
            let requests = field(line, "recved=")?.parse().ok()?;
            Some((field(line, "sid=")?, requests))
        })
        .collect()
}

/// Reads responses (acknowledging each) until both `names` hold `ports` endpoints.
async fn until_both(ads: &mut Ads, names: &[&str; 2], ports: usize) {
    let mut latest = [None, None];
    while latest.iter().any(|l| *l != Some(ports)) {
        let Some(response) = ads.next(Duration::from_secs(10)).await else {
            panic!("no assignments of {names:?} with {ports} endpoints; latest {latest:?}");
        };
        ads.ask::<ClusterLoadAssignment>(names, Some(&response), None)
            .await;
        for (name, latest) in names.iter().zip(&mut latest) {
            if let Some(got) = assignment_ports(&response, name) {
                *latest = Some(got.len());
            }
        }
    }
}

#[test]
fn names_on_one_base_path_share_one_watch() {
    // A ZooKeeper of its own: the only sessions are zoorpc xds's and this test's.
    let server = ZkServer::start().unwrap();
    let connect = server.connect_string();
    let base = unique_path("xds-shared");
    let names = ["one", "other"];
    let (_xds, address) = start_xds(
        &connect,
        &[
            "--service",
            &format!("{}={base}", names[0]),
            "--service",
            &format!("{}={base}", names[1]),
        ],
        None,
    );
    runtime().block_on(async {
        let raw = zk::Client::connect(&connect).await.unwrap();
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        for (end, _) in base.match_indices('/').skip(1).chain([(base.len(), "")]) {
            match raw.create(&base[..end], b"", &persistent).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => panic!("create {}: {e}", &base[..end]),
            }
        }
        let mut ads = Ads::open(&address).await;
        ads.ask::<ClusterLoadAssignment>(&names, None, None).await;
        until_both(&mut ads, &names, 0).await;
        let ours = raw.session_id().to_string();
        let xds_requests = || {
            let mut others = requests_by_session(&connect);
            others.remove(&ours);
            assert_eq!(others.len(), 1, "one session besides ours: {others:?}");
            others.into_values().sum::<u64>()
        };
        let before = xds_requests();
        for i in 0..CHANGES {
            let url = format!("http://127.0.0.1:{}", 20_000 + i);
            let node = format!("{base}/provider");
            raw.create(&node, url.as_bytes(), &ephemeral).await.unwrap();
            until_both(&mut ads, &names, usize::from(i) + 1).await;
        }
        let per_change = (xds_requests() - before) as f64 / f64::from(CHANGES);
        eprintln!("zoorpc xds sent ZooKeeper {per_change} requests a change");
        // One watch (persistent, recursive) reads the new child: one request. A watch per name
        // reads it once per name: two (as before they shared it). Pings come on top, a few over
        // the whole run.
        assert!(
            per_change < 1.5,
            "{per_change} requests a change: the names do not share their watch"
        );
    });
}
