//! Names on one base path (or one election path) share one watch: what a change costs
//! ZooKeeper, counted by ZooKeeper itself (`cons`: the requests each connection sent), is the
//! reads of one watch, however many names map to the path.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use zookeeper_client as zk;

use super::{Ads, assignment_ports};
use crate::common::{runtime, start_xds};
use zoorpc_testkit::{ZkServer, unique_path};

/// Changes counted.
const CHANGES: u16 = 20;
/// The two names on one path.
const NAMES: [&str; 2] = ["one", "other"];

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

/// Reads responses (acknowledging each) until both [`NAMES`] hold the endpoints on `ports`.
async fn until_both(ads: &mut Ads, ports: &[u16]) {
    let mut latest = [None, None];
    while latest.iter().any(|l| l.as_deref() != Some(ports)) {
        let Some(response) = ads.next(Duration::from_secs(10)).await else {
            panic!("no assignments of {NAMES:?} with {ports:?}; latest {latest:?}");
        };
        ads.ask::<ClusterLoadAssignment>(&NAMES, Some(&response), None)
            .await;
        for (name, latest) in NAMES.iter().zip(&mut latest) {
            if let Some(got) = assignment_ports(&response, name) {
                *latest = Some(got);
            }
        }
    }
}

/// What is changed [`CHANGES`] times under the path both names map to.
#[derive(Clone, Copy)]
enum Change {
    /// A provider registers under the base path.
    Register,
    /// An operator's `set` of the master node to another address.
    SetMaster,
}

/// Serves both [`NAMES`] on one path (`flag NAME=PATH`) from a ZooKeeper of its own, makes
/// the changes, each waited for until both names have it; returns the requests `zoorpc xds`
/// sent ZooKeeper per change.
fn requests_per_change(flag: &str, change: Change) -> f64 {
    // The only sessions are zoorpc xds's and this test's.
    let server = ZkServer::start().unwrap();
    let connect = server.connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("xds-shared"));
    let mappings = NAMES.map(|name| format!("{name}={path}"));
    let args = [flag, &mappings[0], flag, &mappings[1]];
    let (_xds, address) = start_xds(&connect, &args, None);
    runtime().block_on(async {
        let raw = zk::Client::connect(&connect).await.unwrap();
        let open = |mode: zk::CreateMode| mode.with_acls(zk::Acls::anyone_all());
        for (end, _) in path.match_indices('/').skip(1) {
            match raw
                .create(&path[..end], b"", &open(zk::CreateMode::Persistent))
                .await
            {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => panic!("create {}: {e}", &path[..end]),
            }
        }
        let first = 20_000;
        let mut ports = Vec::new();
        match change {
            Change::Register => {
                let persistent = open(zk::CreateMode::Persistent);
                raw.create(&path, b"", &persistent).await.unwrap();
            }
            Change::SetMaster => {
                let holder = format!("127.0.0.1:{first}");
                let ephemeral = open(zk::CreateMode::Ephemeral);
                raw.create(&path, holder.as_bytes(), &ephemeral)
                    .await
                    .unwrap();
                ports.push(first);
            }
        }
        let mut ads = Ads::open(&address).await;
        ads.ask::<ClusterLoadAssignment>(&NAMES, None, None).await;
        until_both(&mut ads, &ports).await;
        let ours = raw.session_id().to_string();
        let xds_requests = || {
            let mut others = requests_by_session(&connect);
            others.remove(&ours);
            assert_eq!(others.len(), 1, "one session besides ours: {others:?}");
            others.into_values().sum::<u64>()
        };
        let before = xds_requests();
        for port in first + 1..=first + CHANGES {
            match change {
                Change::Register => {
                    let url = format!("http://127.0.0.1:{port}");
                    let node = format!("{path}/provider");
                    let ephemeral = open(zk::CreateMode::EphemeralSequential);
                    raw.create(&node, url.as_bytes(), &ephemeral).await.unwrap();
                    ports.push(port);
                }
                Change::SetMaster => {
                    let holder = format!("127.0.0.1:{port}");
                    raw.set_data(&path, holder.as_bytes(), None).await.unwrap();
                    ports = vec![port];
                }
            }
            until_both(&mut ads, &ports).await;
        }
        (xds_requests() - before) as f64 / f64::from(CHANGES)
    })
}

/// [`requests_per_change`] is one request (the shared watch reads the change once), not one per
/// name (two: as before they shared it); pings come on top, a few over the whole run.
fn assert_one_request_a_change(flag: &str, change: Change) {
    let per_change = requests_per_change(flag, change);
    eprintln!("zoorpc xds sent ZooKeeper {per_change} requests a change");
    assert!(
        per_change < 1.5,
        "{per_change} requests a change: the names do not share their watch"
    );
}

#[test]
fn names_on_one_base_path_share_one_watch() {
    // The watch is persistent and recursive: a registration costs the new child's read.
    assert_one_request_a_change("--service", Change::Register);
}

#[test]
fn names_on_one_election_path_share_one_watch() {
    // A `set` of the master node costs its read.
    assert_one_request_a_change("--master", Change::SetMaster);
}
