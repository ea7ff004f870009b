//! What the console shows: providers live, bad data as data, masters and the timeline, traffic per provider, and the last state while ZooKeeper is out of reach; read-only without the credential.

use super::*;

/// Three providers appear; the one SIGKILLed goes within its session timeout; a new one appears
/// within 1 s of registering; a node of hostile markup is reported as bad data; the actions are
/// refused without the credential, and the page says it is read-only.
#[test]
fn console_follows_providers_live_and_reports_bad_data_as_data() {
    let connect = zk().connect_string();
    let root = unique_path("console");
    let base = format!("{root}/svc");
    let mut fleet: Vec<_> = (0..3)
        .map(|_| spawn_provider(&connect, &base, 0, &[]))
        .collect();
    write_hostile_node(&connect, &base);
    let console = ConsoleProcess::start(&connect, &root, &[]);
    let events = console.events();
    let (state, _) = next_state(
        &events,
        "3 providers and the bad node",
        Duration::from_secs(10),
        |s| providers(s, &base).len() == 4,
    );
    for p in &fleet {
        assert!(urls(&state, &base).contains(&p.url), "{state}");
    }
    let bad = providers(&state, &base)
        .into_iter()
        .find(|p| p["url"].is_null())
        .expect("the bad node is shown");
    assert_eq!(bad["node"], "provider0000099999");
    assert!(bad["error"].as_str().unwrap().contains(HOSTILE), "{bad}");
    assert_eq!(state["can_act"], false);

    // SIGKILL: the node goes when ZooKeeper expires the session (1.5 s, as the provider asks).
    let victim = fleet.remove(0);
    victim.process.signal(libc::SIGKILL).unwrap();
    let killed = Instant::now();
    let (_, gone) = next_state(
        &events,
        "the killed provider's row goes",
        Duration::from_secs(10),
        |s| !urls(s, &base).contains(&victim.url),
    );
    let took = gone - killed;
    eprintln!("the killed provider's row went after {took:?}");
    assert!(took < Duration::from_millis(1500 + 1500), "took {took:?}");

    // A new provider: on the page within 1 s of its registration.
    let newcomer = spawn_provider(&connect, &base, 0, &[]);
    let registered = Instant::now();
    let (_, seen) = next_state(
        &events,
        "the new provider appears",
        Duration::from_secs(5),
        |s| urls(s, &base).contains(&newcomer.url),
    );
    assert!(
        seen - registered < Duration::from_secs(1),
        "took {:?}",
        seen - registered
    );

    assert_read_only(&console, &fleet[0].node, &base);
}

/// Without the credential every action is refused (403) and changes nothing; a request by a
/// name another site controls (DNS rebinding) is refused too (421).
fn assert_read_only(console: &ConsoleProcess, node: &str, base: &str) {
    let designate = r#"{"path": "/x", "address": "127.0.0.1:1"}"#;
    let (status, body) = console.request(
        "POST",
        "/api/designate",
        &["Content-Type: application/json", "X-Zoorpc-Confirmed: yes"],
        designate,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--zk-auth-file"), "{body}");
    let weight = format!(r#"{{"node": "{}", "weight": 1}}"#, node);
    let confirmed = ["Content-Type: application/json", "X-Zoorpc-Confirmed: yes"];
    let (status, body) = console.request("POST", "/api/weight", &confirmed, &weight);
    assert_eq!(status, 403, "{body}");
    assert_eq!(urls(&console.state(), base).len(), 3, "nothing changed");
    // A request by a name another site controls (DNS rebinding) is refused too.
    let mut stream = TcpStream::connect(&console.addr).unwrap();
    write!(
        stream,
        "GET /api/state HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
}

/// The masters of every election under the root, and a timeline that shows a handover.
#[test]
fn console_shows_each_master_and_a_handover_in_the_timeline() {
    let connect = zk().connect_string();
    let root = unique_path("console-masters");
    let path = format!("{root}/master/Hello:1.0.0");
    let (first, second) = master_and_standby(&connect, &path);
    let console = ConsoleProcess::start(&connect, &root, &[]);
    let events = console.events();
    let (state, _) = next_state(
        &events,
        "the master and its standby",
        Duration::from_secs(10),
        |s| s["masters"][0]["standbys"][0] == second.address.as_str(),
    );
    assert_eq!(state["masters"][0]["path"], path.as_str());
    assert_eq!(state["masters"][0]["master"], first.address.as_str());
    assert!(state["masters"][0]["epoch"].is_i64(), "{state}");

    designate_by_command(&connect, &path, &second.address);
    let (state, _) = next_state(
        &events,
        "the handover in the timeline",
        Duration::from_secs(15),
        |s| {
            s["timeline"].as_array().is_some_and(|t| {
                t.last()
                    .is_some_and(|e| e["master"] == second.address.as_str())
            })
        },
    );
    let timeline = state["timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["master"], first.address.as_str(), "{state}");
    assert_eq!(
        state["masters"][0]["master"],
        second.address.as_str(),
        "{state}"
    );
    let epochs: Vec<i64> = timeline
        .iter()
        .filter_map(|e| e["epoch"].as_i64())
        .collect();
    assert!(
        epochs.windows(2).all(|w| w[0] < w[1]),
        "epochs only grow: {epochs:?}"
    );
}

/// `--scrape`: a consumer's traffic per provider, and a SIGKILLed provider's traffic moving to
/// the other one.
#[test]
fn console_shows_traffic_per_provider_and_it_moves_when_one_dies() {
    let connect = zk().connect_string();
    let root = unique_path("console-traffic");
    let base = format!("{root}/svc");
    let mut fleet: Vec<_> = (0..2)
        .map(|_| spawn_provider(&connect, &base, 0, &[]))
        .collect();
    let metrics = crate::prometheus::free_addr();
    let _caller = spawn_caller(&connect, &base, &metrics);
    let console = ConsoleProcess::start(&connect, &root, &["--scrape", &metrics]);
    let events = console.events();
    let (state, _) = next_state(
        &events,
        "traffic to both providers",
        Duration::from_secs(20),
        |s| fleet.iter().all(|p| calls_per_s(s, &p.url) > 0.0),
    );
    assert_eq!(state["traffic"]["targets"][0]["ok"], true, "{state}");
    assert_eq!(
        state["homes"][fleet[0].url.as_str()],
        base.as_str(),
        "{state}"
    );

    let victim = fleet.remove(0);
    victim.process.signal(libc::SIGKILL).unwrap();
    let survivor = &fleet[0];
    next_state(
        &events,
        "the traffic moves to the survivor",
        Duration::from_secs(20),
        |s| calls_per_s(s, &victim.url) == 0.0 && calls_per_s(s, &survivor.url) > 20.0,
    );
}

/// ZooKeeper out of reach: the page keeps the last state and says so; back, it reads again.
#[test]
fn console_keeps_the_last_state_while_zookeeper_is_out_of_reach_and_says_so() {
    let mut server = zoorpc_testkit::ZkServer::start().expect("a ZooKeeper of this test's own");
    let connect = server.connect_string();
    let root = unique_path("console-unreachable");
    let base = format!("{root}/svc");
    let provider = spawn_provider(&connect, &base, 0, &[]);
    let console = ConsoleProcess::start(&connect, &root, &[]);
    let events = console.events();
    next_state(&events, "the provider", Duration::from_secs(10), |s| {
        urls(s, &base) == [provider.url.clone()] && s["zookeeper"]["ok"] == true
    });
    server.kill();
    let (state, _) = next_state(
        &events,
        "ZooKeeper out of reach, said",
        Duration::from_secs(20),
        |s| s["zookeeper"]["ok"] == false,
    );
    assert!(
        state["zookeeper"]["problem"]
            .as_str()
            .unwrap()
            .contains("out of reach"),
        "{state}"
    );
    assert_eq!(
        urls(&state, &base),
        std::slice::from_ref(&provider.url),
        "the last state stays"
    );
    server.restart().expect("ZooKeeper back");
    next_state(
        &events,
        "ZooKeeper back, read again",
        Duration::from_secs(30),
        |s| s["zookeeper"]["ok"] == true,
    );
}
