//! The page live: providers, hostile data as text, a handover, a provider's death, traffic.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use zoorpc_testkit::unique_path;

use super::{Browser, base64_decode, chromium, has, until};
use crate::common::{self, eventually_blocking, spawn_provider, zk};
use crate::console::{
    ConsoleProcess, HOSTILE, designate_by_command, master_and_standby, spawn_caller,
    write_hostile_node,
};

/// In a real browser: 3 providers appear, the hostile node's markup is shown as text (no element
/// made of it), the page says it is read-only, a handover shows in the timeline, a SIGKILLed
/// provider's row goes and a new one's comes (its weight, the default, said so), live, with a
/// chart of their traffic; the browser's console shows no error.
#[test]
fn console_page_in_a_headless_browser_is_live_and_shows_hostile_data_as_text() {
    let Some(program) = chromium() else { return };
    let connect = zk().connect_string();
    let root = unique_path("console-page");
    let base = format!("{root}/services/hello");
    let mut fleet: Vec<_> = (0..3)
        .map(|_| spawn_provider(&connect, &base, 0, &["--weight", "100"]))
        .collect();
    write_hostile_node(&connect, &base);
    let election = format!("{root}/master/HelloService:1.0.0");
    let (first, second) = master_and_standby(&connect, &election);
    let metrics = crate::prometheus::free_addr();
    let _caller = spawn_caller(&connect, &base, &metrics);
    let console = ConsoleProcess::start(&connect, &root, &["--scrape", &metrics]);

    let mut browser = Browser::start(&program);
    browser.call("Page.navigate", json!({ "url": console.url() }));
    let page = until(
        &mut browser,
        "3 providers, the bad node and the master",
        |p| {
            p["good"].as_array().is_some_and(|g| g.len() == 3)
                && has(&p["bad"], HOSTILE)
                && has(&p["masters"], &first.address)
        },
    );
    assert_shown_as_text(&page, &fleet);

    designate_by_command(&connect, &election, &second.address);
    until(&mut browser, "the handover in the timeline", |p| {
        p["timeline"].as_array().is_some_and(|t| t.len() >= 2)
            && has(&p["timeline"], &second.address)
    });

    let victim = fleet.remove(0);
    victim.process.signal(libc::SIGKILL).unwrap();
    until(&mut browser, "the killed provider's row goes", |p| {
        !has(&p["good"], &victim.url)
    });
    // On the default weight: the row says which (before: a blank cell).
    let newcomer = spawn_provider(&connect, &base, 0, &[]);
    let page = until(
        &mut browser,
        "the new provider's row and the traffic",
        |p| has(&p["good"], &newcomer.url) && p["chart_lines"].as_u64() >= Some(3),
    );
    assert_eq!(page["link"], "live", "{page}");
    let weights = browser.eval(&format!(
        r#"JSON.stringify([...document.querySelectorAll("tr.provider")]
            .filter(r => r.children[1].textContent === {:?})
            .map(r => r.children[2].textContent.trim()))"#,
        newcomer.url
    ));
    assert_eq!(weights, json!(["100 (default)"]), "{page}");

    save_screenshot(&mut browser);

    let errors = browser.errors();
    assert!(
        errors.is_empty(),
        "the browser's console shows errors: {errors:?}"
    );
}

/// The first page: every provider, the hostile node's markup as text (no element made of it),
/// the read-only notice.
fn assert_shown_as_text(page: &Value, fleet: &[common::ProviderProcess]) {
    for p in fleet {
        assert!(has(&page["good"], &p.url), "{page}");
    }
    assert_eq!(
        page["images"], 0,
        "the hostile markup made an element: {page}"
    );
    assert_eq!(
        page["elements_in_bad_cells"],
        json!(["SPAN"]),
        "only the BAD DATA tag: {page}"
    );
    assert!(
        page["mode"].as_str().unwrap().starts_with("Read-only"),
        "{page}"
    );
}

/// Writes what the browser shows to `target/tmp/console.png` (the README's picture).
/// With `ZOORPC_SCREENSHOT_TRAFFIC_S=N` (as `make screenshot` sets it) it first waits until the
/// chart spans N seconds of traffic, so the picture shows it move; `make test` does not wait.
fn save_screenshot(browser: &mut Browser) {
    let seconds: u64 = std::env::var("ZOORPC_SCREENSHOT_TRAFFIC_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if seconds > 0 {
        eventually_blocking(
            "the chart spanning the traffic asked for",
            Duration::from_secs(seconds + 60),
            || {
                let points = browser.eval(
                    "Math.max(0, ...[...document.querySelectorAll('svg.chart polyline')]\
                     .map(l => l.points.numberOfItems))",
                );
                match points.as_u64() {
                    Some(n) if n >= seconds => Ok(()),
                    _ => Err(points),
                }
            },
        );
    }
    let shot = browser.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    std::fs::write(&file, png).expect("write the screenshot");
    eprintln!("screenshot: {}", file.display());
}
