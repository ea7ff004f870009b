//! The console's actions with the credential: a weight the provider keeps, a designation.

use super::*;

/// With `--zk-auth-file` the console acts, after a confirmation: a weight set through it is kept
/// by the provider (written back, after someone else's write into its node, with that weight:
/// before the rule it wrote its old weight back) and registered again after an expiry, its
/// `registered` line naming the URL it registered (before: the URL it started with), and a
/// standby is made master.
#[test]
fn console_with_the_credential_sets_a_weight_the_provider_keeps_and_designates() {
    let connect = zk().connect_string();
    let root = unique_path("console-act");
    let base = format!("{root}/svc");
    let mut provider = spawn_provider(&connect, &base, 0, &["--weight", "100"]);
    let election = format!("{root}/master/Hello:1.0.0");
    let (_first, second) = master_and_standby(&connect, &election);
    let (console, _credential) = ConsoleProcess::start_acting(&connect, &root);
    let events = console.events();
    assert_eq!(console.state()["can_act"], true);

    let body = format!(r#"{{"node": "{}", "weight": 7}}"#, provider.node);
    let json = "Content-Type: application/json";
    let (status, answer) = console.request("POST", "/api/weight", &[json], &body);
    assert_eq!(status, 428, "not confirmed: {answer}");
    let confirmed = [json, "X-Zoorpc-Confirmed: yes"];
    let (status, answer) = console.request("POST", "/api/weight", &confirmed, &body);
    assert_eq!(status, 200, "{answer}");
    let reweighted = provider.url.replace("weight=100", "weight=7");
    next_state(&events, "the new weight", Duration::from_secs(10), |s| {
        urls(s, &base) == [reweighted.clone()]
    });
    // Someone else's write into the node: the provider writes its URL back, with weight 7.
    let rt = common::runtime();
    rt.block_on(async {
        let client = raw_client(&connect).await;
        client
            .set_data(&provider.node, b"http://10.9.9.9:1", None)
            .await
            .unwrap();
    });
    let (state, _) = next_state(
        &events,
        "the provider's URL written back",
        Duration::from_secs(10),
        |s| urls(s, &base).iter().all(|u| !u.contains("10.9.9.9")),
    );
    assert_eq!(
        urls(&state, &base),
        std::slice::from_ref(&reweighted),
        "{state}"
    );
    assert_reregistered_with(&mut provider, &events, &base, &reweighted);

    let body = format!(
        r#"{{"path": "{election}", "address": "{}"}}"#,
        second.address
    );
    let (status, answer) = console.request("POST", "/api/designate", &confirmed, &body);
    assert_eq!(status, 200, "{answer}");
    next_state(
        &events,
        "the designated master",
        Duration::from_secs(15),
        |s| s["masters"][0]["master"] == second.address.as_str(),
    );
    // Not a contender: refused, nothing changed.
    let body = format!(r#"{{"path": "{election}", "address": "127.0.0.1:1"}}"#);
    let (status, answer) = console.request("POST", "/api/designate", &confirmed, &body);
    assert_eq!(status, 409, "{answer}");
}

/// Stops `provider` (SIGSTOP) until ZooKeeper expires its session (its node gone from the
/// console), lets it go on, and checks it registers `url` again and says so.
fn assert_reregistered_with(
    provider: &mut common::ProviderProcess,
    events: &mpsc::Receiver<Value>,
    base: &str,
    url: &str,
) {
    let mut cursor = provider.process.seen_lines().len();
    provider.process.signal(libc::SIGSTOP).unwrap();
    next_state(
        events,
        "the node gone with the session",
        Duration::from_secs(20),
        |s| urls(s, base).is_empty(),
    );
    provider.process.signal(libc::SIGCONT).unwrap();
    let line = common::next_line_after(
        &mut provider.process,
        &mut cursor,
        "registered ",
        Duration::from_secs(30),
    )
    .expect("registered again after the expiry");
    assert!(line.ends_with(&format!(" {url}")), "{line}");
    next_state(
        events,
        "the node registered again",
        Duration::from_secs(10),
        |s| urls(s, base) == [url.to_owned()],
    );
}
