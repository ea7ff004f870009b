//! Which names `zoorpc xds` serves: names nobody subscribes to are released after their
//! linger, a name past the cap or not a service name is answered at once with a Listener routing
//! nowhere, and a name given twice on the command line is a usage error.

use std::process::Command;
use std::time::Duration;

use envoy_types::pb::envoy::config::listener::v3::Listener;
use prost::Message;

use super::{Ads, decoded};
use crate::common::{runtime, start_xds, zk};
use zoorpc_testkit::{ChildProcess, unique_path};

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");

/// Whether `listener` routes by RDS (a served name), not by an inline route configuration
/// without virtual hosts (a name refused: the client's calls fail at once).
fn routes_by_rds(listener: &Listener) -> bool {
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, http_connection_manager::RouteSpecifier,
    };
    let any = listener
        .api_listener
        .as_ref()
        .unwrap()
        .api_listener
        .as_ref();
    let manager = HttpConnectionManager::decode(any.unwrap().value.as_slice()).unwrap();
    match manager.route_specifier.unwrap() {
        RouteSpecifier::Rds(rds) => rds.route_config_name == listener.name,
        RouteSpecifier::RouteConfig(routes) => {
            assert!(routes.virtual_hosts.is_empty(), "{routes:?}");
            false
        }
        other => panic!("{other:?}"),
    }
}

/// A client holding the most names there can be (1,000 channels `xds:///junkN`) makes a new
/// name wait, answered at once with a listener that routes nowhere (calls fail at once, not
/// after the client's 15 s resource timer); once that client goes and its names have lingered,
/// they are released and the new name is pushed to the client waiting for it (the names were
/// held for the life of the server, locking a service registered later out until a restart).
#[test]
fn names_nobody_subscribes_to_are_released_and_a_name_past_the_cap_fails_fast() {
    let connect = zk().connect_string();
    let root = unique_path("xds-names");
    let (_xds, address) = start_xds(&connect, &["--root", &root, "--linger-ms", "500"], None);
    runtime().block_on(async {
        let junk: Vec<String> = (0..1000).map(|i| format!("junk{i}")).collect();
        let junk: Vec<&str> = junk.iter().map(String::as_str).collect();
        let mut hoarder = Ads::open(&address).await;
        hoarder.ask::<Listener>(&junk, None, None).await;
        let held = hoarder.next(Duration::from_secs(20)).await.unwrap();
        let listeners = decoded::<Listener>(&held);
        assert_eq!(listeners.len(), 1000);
        assert!(listeners.iter().all(routes_by_rds));

        let mut late = Ads::open(&address).await;
        for bad in ["newsvc", "..", "a/b", "x%2Fy"] {
            late.ask::<Listener>(&[bad], None, None).await;
            let refused = late.next(Duration::from_secs(5)).await.unwrap();
            let listeners = decoded::<Listener>(&refused);
            assert_eq!(listeners.len(), 1, "{bad}: {listeners:?}");
            assert!(!routes_by_rds(&listeners[0]), "{bad} served past the cap");
            late.ask::<Listener>(&[bad], Some(&refused), None).await;
        }
        late.ask::<Listener>(&["newsvc"], None, None).await;
        let refused = late.next(Duration::from_secs(5)).await.unwrap();
        late.ask::<Listener>(&["newsvc"], Some(&refused), None)
            .await;

        drop(hoarder);
        let served = late.next(Duration::from_secs(20)).await;
        let served = served.expect("newsvc not served after the hoarding client went");
        let listeners = decoded::<Listener>(&served);
        assert_eq!(listeners.len(), 1, "{listeners:?}");
        assert!(routes_by_rds(&listeners[0]), "{listeners:?}");
    });
}

/// A name given twice (`--service b=... --service b=...`, or as a `--service` and a `--master`)
/// is a usage error: one line naming both, status 2, nothing served (the last one given was
/// served, silently).
#[test]
fn a_name_given_twice_is_a_usage_error() {
    let connect = zk().connect_string();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("xds.err");
    for names in [
        ["--service=b=/svc/hello", "--service=b=/svc/empty"],
        ["--service=a=/svc/hello", "--master=a=/soa/master/a"],
    ] {
        let mut cmd = Command::new(ZOORPC);
        cmd.args(["xds", "--zk", &connect, "--listen", "127.0.0.1:0"])
            .args(names)
            .stderr(std::fs::File::create(&log).unwrap());
        // Killed on drop, should it serve.
        let mut xds = ChildProcess::spawn("zoorpc xds", cmd).unwrap();
        let status = xds.wait_exit(Duration::from_secs(20));
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            status.ok().and_then(|s| s.code()),
            Some(2),
            "{names:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{names:?}: {stderr}");
        assert!(
            stderr.starts_with("error: the name ") && stderr.contains("given twice"),
            "{names:?}: {stderr}"
        );
        assert!(xds.drain_lines().is_empty(), "{names:?}: served");
    }
}
