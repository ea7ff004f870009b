//! A provider's stop lines say what happened when it happened: `stopping <node>` when the stop
//! begins, `deregistered <node>` as soon as the node is deleted (before the drain grace and the
//! drain), `stopped` at the end.

use std::time::Duration;

use crate::common::{raw_client, runtime, spawn_provider, zk};
use zoorpc_testkit::unique_path;

#[test]
fn deregistered_is_printed_when_the_node_is_deleted_not_after_the_drain() {
    let connect = zk().connect_string();
    let base = unique_path("stop-lines");
    // A drain grace of a minute: `deregistered` must not wait for it.
    let mut p = spawn_provider(&connect, &base, 0, &["--drain-grace-ms", "60000"]);
    p.process.signal(libc::SIGTERM).unwrap();
    let line = p
        .process
        .wait_for_line("deregistered ", Duration::from_secs(15))
        .expect("deregistered before the drain grace ends");
    assert_eq!(line, format!("deregistered {}", p.node));
    let runtime = runtime();
    let raw = runtime.block_on(raw_client(&connect));
    let node = runtime.block_on(raw.check_stat(&p.node)).unwrap();
    assert!(
        node.is_none(),
        "{} still there after `deregistered`",
        p.node
    );
    assert!(!p.process.has_exited(), "exited before its drain grace");
    let lines = p.process.drain_lines().to_vec();
    assert_eq!(
        lines[1..],
        [
            format!("stopping {}", p.node),
            format!("deregistered {}", p.node)
        ]
    );
}
