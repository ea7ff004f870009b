//! Elections the page names as they are: a handover under way, bad data with the reason.

use std::time::Duration;

use serde_json::{Value, json};
use zookeeper_client as zkc;
use zoorpc_testkit::unique_path;

use super::{Browser, chromium, has, until};
use crate::common::{self, ha_servers::HaServer, raw_client, zk};
use crate::console::{ConsoleProcess, HOSTILE, create_parents, designate_by_command};

/// A participant node's data that is no address (two words, one a script tag).
const BAD_PARTICIPANT: &str = "<script>alert(8)</script> twice";

/// In a real browser: a handover stalled (the designee SIGSTOPped, then `zoorpc designate`)
/// reads "handing over to" the designee in the timeline (before: "no master"); an election
/// whose node holds markup shows BAD DATA with the reason in the table and the timeline
/// (before: "no master" beside an epoch), as text; a participant node whose data is not an
/// address shows among the standbys as BAD DATA (before: left out without a word).
#[test]
fn console_page_names_a_stalled_handover_and_bad_election_data() {
    let Some(program) = chromium() else { return };
    let connect = zk().connect_string();
    let root = unique_path("console-elections");
    let stalled = format!("{root}/master/Stalled:1.0.0");
    let mut first = HaServer::spawn(&connect, &stalled, &[]);
    first
        .next_line("role master", Duration::from_secs(20))
        .expect("the first is master");
    // A session that outlives the stop: the designee stays a contender while it cannot act.
    let mut second = HaServer::spawn_with_timeout(&connect, &stalled, 30_000, &[]);
    second
        .next_line("role standby", Duration::from_secs(20))
        .expect("the second stands by");

    let bad = format!("{root}/master/Bad:1.0.0");
    let rt = common::runtime();
    let _writer = rt.block_on(write_bad_election(&connect, &bad));
    let console = ConsoleProcess::start(&connect, &root, &[]);
    let mut browser = Browser::start(&program);
    browser.call("Page.navigate", json!({ "url": console.url() }));
    until(&mut browser, "both elections", |p| {
        has(&p["masters"], &first.address) && has(&p["masters"], &bad)
    });

    second.process.signal(libc::SIGSTOP).unwrap();
    designate_by_command(&connect, &stalled, &second.address);
    let handing_over = format!("handing over to {}", second.address);
    let page = until(&mut browser, "the stalled handover in the timeline", |p| {
        has(&p["timeline"], &handing_over)
    });
    second.process.signal(libc::SIGCONT).unwrap();

    // The newest row naming `path` (the timeline shows the newest first).
    let row = |rows: &Value, path: &str| -> String {
        rows.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|r| r.contains(path))
            .unwrap_or_default()
            .to_owned()
    };
    let bad_master = row(&page["masters"], &bad);
    assert!(
        bad_master.contains(&format!("BAD DATA not an address: {HOSTILE:?}")),
        "{bad_master}"
    );
    assert!(
        bad_master.contains(&format!("BAD DATA not an address: {BAD_PARTICIPANT}")),
        "the bad participant among the standbys: {bad_master}"
    );
    let bad_entry = row(&page["timeline"], &bad);
    assert!(
        bad_entry.contains("BAD DATA") && !bad_entry.contains("no master"),
        "{bad_entry}"
    );
    assert_eq!(page["images"], 0, "the hostile markup made an element");
    let scripts = browser.eval("document.scripts.length");
    assert_eq!(scripts, 1, "only the page's own script");
    let errors = browser.errors();
    assert!(
        errors.is_empty(),
        "the browser's console shows errors: {errors:?}"
    );
}

/// An election at `path` as a writer of bad data leaves it: its companion, the node held by
/// this client's session holding [`HOSTILE`], and a participant node (named as a session) holding
/// [`BAD_PARTICIPANT`]. Keep the client while the node is to stay.
async fn write_bad_election(connect: &str, path: &str) -> zkc::Client {
    let client = raw_client(connect).await;
    let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    let ephemeral = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::anyone_all());
    create_parents(&client, path).await;
    let participants = format!("{path}.participants");
    client
        .create(&format!("{path}.epoch"), b"", &persistent)
        .await
        .expect("the companion");
    client
        .create(&participants, b"", &persistent)
        .await
        .expect("the participants' parent");
    client
        .create(
            &format!("{participants}/00000000000000ab"),
            BAD_PARTICIPANT.as_bytes(),
            &persistent,
        )
        .await
        .expect("a participant holding bad data");
    client
        .create(path, HOSTILE.as_bytes(), &ephemeral)
        .await
        .expect("the master node holding bad data");
    client
}
