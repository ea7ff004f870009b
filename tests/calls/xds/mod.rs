//! A stock gRPC client balancing on its own side through `zoorpc xds`: Python grpcio's own xDS
//! resolver (`xds:///NAME`, bootstrap printed by `zoorpc xds bootstrap`), no zoorpc code in the
//! client, calling real provider processes: calls spread over the providers, a new provider gets
//! calls within 1 s of registering, a SIGKILL and a SIGTERM each cost no failed call, an empty
//! service fails at once with the client's own UNAVAILABLE, and the client keeps calling after
//! `zoorpc xds` itself stopped; weights share the calls, a backup (weight 0) is called only once
//! the weighted providers are gone. Server reflection on `zoorpc xds` lists the ADS service,
//! health and reflection, and a message of ADS resolves with every file it needs (tonic's
//! reflection client, and Python's descriptor pool on grpcio-reflection).
//!
//! Skipped with a message where the venv of `interop.rs` cannot be made (no PyPI).

mod reflection;

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{spawn_provider, zk};
use zoorpc::apps::now_ms;
use zoorpc_testkit::{ChildProcess, unique_path};

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");
const CLIENT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/xds_client.py");

/// One call's line from `xds_client.py calls`: the provider that answered and when (Unix ms),
/// or the failure as printed.
fn call_result(line: &str) -> Result<(String, i64), String> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("ok"), Some(provider), Some(at)) => at
            .parse()
            .map(|at| (provider.to_owned(), at))
            .map_err(|_| line.to_owned()),
        _ => Err(line.to_owned()),
    }
}

/// Reads `count` more call lines from `client`, every one a success; returns who answered.
fn calls_ok(client: &mut ChildProcess, count: usize, during: &str) -> Vec<String> {
    (0..count)
        .map(|i| {
            let line = client
                .wait_for_line("", Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{during}: call {i}: {e}"));
            match call_result(&line) {
                Ok((provider, _)) => provider,
                Err(line) => panic!("{during}: call {i} failed: {line}"),
            }
        })
        .collect()
}

/// Starts `zoorpc xds` serving `services` (`NAME=BASE_PATH`); returns it and its address.
fn xds_serving(connect: &str, services: &[&str]) -> (ChildProcess, String) {
    let args: Vec<&str> = services.iter().flat_map(|s| ["--service", s]).collect();
    common::start_xds(connect, &args, None)
}

/// [`xds_serving`], and the bootstrap `zoorpc xds bootstrap` prints for it written to a file;
/// returns the server, the bootstrap file and its dir.
fn xds_with_bootstrap(
    connect: &str,
    services: &[&str],
) -> (ChildProcess, PathBuf, tempfile::TempDir) {
    let (xds, address) = xds_serving(connect, services);
    let out = Command::new(ZOORPC)
        .args(["xds", "bootstrap", "--listen", &address])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap.json");
    std::fs::write(&bootstrap, &out.stdout).unwrap();
    (xds, bootstrap, dir)
}

/// `xds_client.py args` with the bootstrap.
fn python_client(python: &Path, bootstrap: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg("-u").arg(CLIENT_PY).args(args);
    cmd.env("GRPC_XDS_BOOTSTRAP", bootstrap);
    cmd
}

/// Reads calls until every one of `urls` answered (at most 300); returns who answered.
fn answered_by_all(client: &mut ChildProcess, urls: &BTreeSet<String>) -> BTreeSet<String> {
    let mut answered = BTreeSet::new();
    for _ in 0..300 {
        answered.extend(calls_ok(client, 1, "every provider called"));
        if answered == *urls {
            break;
        }
    }
    answered
}

/// Reads calls until one answered by `url`: how long after `since` (Unix ms) it ended.
fn first_call_after(client: &mut ChildProcess, url: &str, since: i64) -> i64 {
    loop {
        let line = client.wait_for_line("", Duration::from_secs(10)).unwrap();
        match call_result(&line) {
            Ok((provider, at)) if provider == url => return at - since,
            Ok(_) => {}
            Err(line) => panic!("a call failed while a provider joined: {line}"),
        }
    }
}

#[test]
fn python_grpcio_over_xds_spreads_follows_and_loses_no_call_to_a_kill_or_a_stop() {
    let Some(python) = crate::interop::python_or_skip() else {
        return;
    };
    let connect = zk().connect_string();
    let base = unique_path("xds");
    // Slow providers (50 ms a call, a call started every 5 ms): each has calls in flight when
    // it is killed or stopped, which only the route's retry policy saves.
    let slow = ["--delay-ms", "50"];
    let mut providers: Vec<_> = (0..3)
        .map(|_| spawn_provider(&connect, &base, 0, &slow))
        .collect();
    let (mut xds, bootstrap, _dir) = xds_with_bootstrap(
        &connect,
        &[
            &format!("hello={base}"),
            &format!("empty={}", unique_path("xds-empty")),
        ],
    );

    // An empty service: the client's own UNAVAILABLE, at once (its deadline is 10 s).
    let once = python_client(python, &bootstrap, &["once", "xds:///empty"]);
    let line = ChildProcess::spawn("python once", once)
        .unwrap()
        .wait_for_line("", Duration::from_secs(30))
        .unwrap();
    let seconds = line.strip_prefix("err UNAVAILABLE ").map(str::parse::<f64>);
    assert!(matches!(seconds, Some(Ok(s)) if s < 5.0), "{line}");

    let calls = python_client(
        python,
        &bootstrap,
        &["calls", "xds:///hello", "100000", "5"],
    );
    let mut client = ChildProcess::spawn("python calls", calls).unwrap();
    let urls: BTreeSet<String> = providers.iter().map(|p| p.url.clone()).collect();
    assert_eq!(
        answered_by_all(&mut client, &urls),
        urls,
        "calls did not reach every provider"
    );

    // A new provider gets calls within 1 s of registering.
    let fourth = spawn_provider(&connect, &base, 0, &slow);
    let after = first_call_after(&mut client, &fourth.url, now_ms());
    eprintln!("first call to the new provider {after} ms after it registered");
    assert!(
        after < 1000,
        "first call to the new provider {after} ms after it registered"
    );
    providers.push(fourth);

    // SIGKILL (its node stays until its session times out), then SIGTERM: no failed call.
    providers[0].process.signal(libc::SIGKILL).unwrap();
    calls_ok(&mut client, 300, "after a SIGKILL");
    providers[1].process.signal(libc::SIGTERM).unwrap();
    let after = calls_ok(&mut client, 300, "after a SIGTERM");
    assert!(!after[after.len() - 50..].contains(&providers[1].url));
    providers[1]
        .process
        .wait_exit(Duration::from_secs(20))
        .unwrap();

    // `zoorpc xds` stops cleanly with a client connected, and the client keeps its endpoints.
    xds.signal(libc::SIGTERM).unwrap();
    xds.wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();
    calls_ok(&mut client, 100, "after zoorpc xds stopped");
}

#[test]
fn python_grpcio_over_xds_honours_weights_and_calls_a_backup_only_when_the_weighted_are_gone() {
    let Some(python) = crate::interop::python_or_skip() else {
        return;
    };
    let connect = zk().connect_string();
    let base = unique_path("xds-weights");
    let mut providers: Vec<_> = ["300", "100", "0"]
        .iter()
        .map(|w| spawn_provider(&connect, &base, 0, &["--weight", w]))
        .collect();
    let (_xds, bootstrap, _dir) = xds_with_bootstrap(&connect, &[&format!("weighted={base}")]);
    let calls = python_client(
        python,
        &bootstrap,
        &["calls", "xds:///weighted", "100000", "2"],
    );
    let mut client = ChildProcess::spawn("python calls", calls).unwrap();
    let answered = calls_ok(&mut client, 400, "weights 300, 100 and a backup");
    let share = |url: &str| answered.iter().filter(|a| *a == url).count() as f64 / 400.0;
    let heavy = share(&providers[0].url);
    assert!(
        (0.6..=0.9).contains(&heavy),
        "weight 300 of 400 got {heavy}"
    );
    assert_eq!(share(&providers[2].url), 0.0, "the backup was called");

    // Both weighted providers SIGKILLed (their nodes stay until their sessions expire): the
    // backup takes every call, none fails.
    for weighted in &mut providers[..2] {
        weighted.process.signal(libc::SIGKILL).unwrap();
    }
    let after = calls_ok(&mut client, 600, "weighted providers killed");
    assert!(
        after[after.len() - 100..]
            .iter()
            .all(|a| *a == providers[2].url),
        "{:?}",
        &after[after.len() - 100..]
    );
}

/// What `xds_client.py once xds:///NAME` printed: `ok`, or `err <CODE> <seconds>`.
fn once(python: &Path, bootstrap: &Path, name: &str) -> String {
    let target = format!("xds:///{name}");
    let once = python_client(python, bootstrap, &["once", &target]);
    ChildProcess::spawn("python once", once)
        .unwrap()
        .wait_for_line("", Duration::from_secs(30))
        .unwrap()
}

/// Two nodes naming one address (an operator's node repeating a provider's URL; a provider
/// restarted on its port while its old session lives): the client gets an assignment it
/// accepts, and a new client's call is answered (gRPC rejects a whole assignment naming an
/// address twice, which failed every new client's calls `UNAVAILABLE`).
#[test]
fn python_grpcio_calls_a_service_whose_nodes_repeat_an_address() {
    let Some(python) = crate::interop::python_or_skip() else {
        return;
    };
    let connect = zk().connect_string();
    let base = unique_path("xds-repeated");
    let provider = spawn_provider(&connect, &base, 0, &[]);
    let rt = common::runtime();
    rt.block_on(async {
        let raw = common::raw_client(&connect).await;
        let persistent = zookeeper_client::CreateMode::Persistent
            .with_acls(zookeeper_client::Acls::anyone_all());
        let url = format!("{}?weight=7", provider.url);
        raw.create(&format!("{base}/operator"), url.as_bytes(), &persistent)
            .await
            .unwrap();
    });
    let (_xds, bootstrap, _dir) = xds_with_bootstrap(&connect, &[&format!("repeated={base}")]);
    assert_eq!(once(python, &bootstrap, "repeated"), "ok");
}

/// Locality weights summing past `u32::MAX` (one provider registered with the greatest weight
/// a URL can hold, beside another): scaled to fit, so the client accepts the assignment and
/// calls are answered (gRPC rejected it: `sum of locality weights ... exceeds uint32 max`).
#[test]
fn python_grpcio_calls_a_service_with_a_huge_weight() {
    let Some(python) = crate::interop::python_or_skip() else {
        return;
    };
    let connect = zk().connect_string();
    let base = unique_path("xds-huge-weight");
    let _providers: Vec<_> = [u32::MAX, 100]
        .iter()
        .map(|w| spawn_provider(&connect, &base, 0, &["--weight", &w.to_string()]))
        .collect();
    let (_xds, bootstrap, _dir) = xds_with_bootstrap(&connect, &[&format!("huge={base}")]);
    assert_eq!(once(python, &bootstrap, "huge"), "ok");
}

/// Names `zoorpc xds` does not serve (not letters, digits and `-._`) fail the client's calls at
/// once, as a name without providers does, instead of after gRPC's 15 s resource timer.
#[test]
fn python_grpcio_fails_at_once_on_a_name_that_is_not_served() {
    let Some(python) = crate::interop::python_or_skip() else {
        return;
    };
    let connect = zk().connect_string();
    let (_xds, bootstrap, _dir) = xds_with_bootstrap(&connect, &[]);
    for name in ["..", "a/b", "x%2Fy"] {
        let line = once(python, &bootstrap, name);
        let seconds = line.strip_prefix("err UNAVAILABLE ").map(str::parse::<f64>);
        assert!(matches!(seconds, Some(Ok(s)) if s < 5.0), "{name}: {line}");
    }
}

/// A provider paused (SIGSTOP) under a loop of calls with a 5 s deadline, its session long
/// enough that its node stays: the calls sent to it fail at their deadline (nothing tells a
/// stock client sooner: gRPC does not hedge), then outlier detection ejects it and keeps it out,
/// so no call sent later than 8 s after the pause fails. (With a 1 s base ejection time it was
/// let back after 1 s and every call sent to it in the next 5 s failed again, in bursts.)
#[test]
fn python_grpcio_over_xds_keeps_a_paused_provider_out_once_its_failures_show() {
    let Some(python) = crate::interop::python_or_skip() else {
        return;
    };
    let connect = zk().connect_string();
    let base = unique_path("xds-paused");
    let session = ["--session-timeout-ms", "40000"];
    let providers: Vec<_> = (0..4)
        .map(|_| spawn_provider(&connect, &base, 0, &session))
        .collect();
    let (_xds, bootstrap, _dir) = xds_with_bootstrap(&connect, &[&format!("paused={base}")]);
    let calls = python_client(
        python,
        &bootstrap,
        &["calls", "xds:///paused", "1600", "10"],
    );
    let mut client = ChildProcess::spawn("python calls", calls).unwrap();
    let urls: BTreeSet<String> = providers.iter().map(|p| p.url.clone()).collect();
    assert_eq!(answered_by_all(&mut client, &urls), urls);
    providers[0].process.pause().unwrap();
    let paused_at = now_ms();
    let mut failed_late = Vec::new();
    let mut failed = 0;
    loop {
        let line = client.wait_for_line("", Duration::from_secs(30)).unwrap();
        if line.starts_with("calls=") {
            break;
        }
        if let Err(line) = call_result(&line) {
            failed += 1;
            let ended: i64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
            // A call failing at its 5 s deadline was sent 5 s before it ended.
            if ended - 5_000 - paused_at > 8_000 {
                failed_late.push(line);
            }
        }
    }
    eprintln!("{failed} calls failed after the pause");
    assert!(
        failed_late.is_empty(),
        "{} calls sent more than 8 s after the pause failed, e.g. {:?}",
        failed_late.len(),
        &failed_late[..failed_late.len().min(3)]
    );
}
