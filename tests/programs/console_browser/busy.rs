//! The page of a registry that changes all the time.

use std::time::{Duration, Instant};

use serde_json::json;
use zookeeper_client as zkc;
use zoorpc_testkit::unique_path;

use super::{Browser, chromium, has, until};
use crate::common::{self, raw_client, zk};
use crate::console::{ConsoleProcess, create_parents};

/// The least time between two renders of the page (its `RENDER_GAP`).
const RENDER_GAP: Duration = Duration::from_millis(300);

/// A provider's node written 10 times a second for 6 s: the page draws a few times a second,
/// not once per change (before: once per state the console sent, up to 10 a second, each a
/// full render: with 3,000 providers the page's timers lagged by seconds), and ends on the
/// newest state.
#[test]
fn console_page_of_a_busy_registry_coalesces_its_renders() {
    let Some(program) = chromium() else { return };
    let connect = zk().connect_string();
    let root = unique_path("console-busy");
    let node = format!("{root}/svc/provider0000000001");
    let url = |weight: usize| format!("http://127.0.0.1:1?weight={weight}");
    let rt = common::runtime();
    let client = rt.block_on(raw_client(&connect));
    let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    rt.block_on(async {
        create_parents(&client, &node).await;
        client
            .create(&node, url(0).as_bytes(), &persistent)
            .await
            .expect("the provider's node");
    });
    let console = ConsoleProcess::start(&connect, &root, &[]);
    let mut browser = Browser::start(&program);
    browser.call("Page.navigate", json!({ "url": console.url() }));
    until(&mut browser, "the provider", |p| has(&p["good"], &url(0)));
    browser.eval(
        "window.renders = 0; new MutationObserver(() => window.renders++)\
         .observe(document.getElementById('services'), { childList: true }); 0",
    );

    let changes = 60;
    let started = Instant::now();
    for weight in 1..=changes {
        rt.block_on(client.set_data(&node, url(weight).as_bytes(), None))
            .expect("change the node");
        // Paces the load (10 changes a second); nothing waits on a state here.
        std::thread::sleep(Duration::from_millis(100));
    }
    until(&mut browser, "the newest state drawn", |p| {
        has(&p["good"], &url(changes))
    });
    let took = started.elapsed();
    let renders = browser.eval("window.renders").as_u64().unwrap_or(u64::MAX);
    let most = took.as_millis() / RENDER_GAP.as_millis() + 3;
    eprintln!("{changes} changes in {took:?}: {renders} renders (at most {most})");
    assert!(
        u128::from(renders) <= most,
        "{renders} renders for {changes} changes in {took:?}"
    );
    let errors = browser.errors();
    assert!(
        errors.is_empty(),
        "the browser's console shows errors: {errors:?}"
    );
}
