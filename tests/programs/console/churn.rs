//! The console under churn: what it remembers follows the live tree, however many providers
//! came and went.

use super::*;

/// How many short-lived provider nodes come and go, and in how many rounds.
const CHURNED: usize = 10_000;
const ROUNDS: usize = 4;

/// 10,000 provider nodes created and deleted under the root (each at an endpoint of its own,
/// each seen by the console): afterwards the state is the size it was with the live providers
/// alone (before: every endpoint ever seen stayed in it, ~35 bytes each), and a new provider
/// taking traffic is charted under its service (before: past 10,000 endpoints remembered, a
/// newcomer had no home and was missing from its service's chart).
#[test]
fn console_forgets_churned_providers_and_charts_a_newcomer() {
    let connect = zk().connect_string();
    let root = unique_path("console-churn");
    let base = format!("{root}/svc");
    let churn = format!("{root}/churn");
    let first = spawn_provider(&connect, &base, 0, &[]);
    let metrics = crate::prometheus::free_addr();
    let _caller = spawn_caller(&connect, &base, &metrics);
    let console = ConsoleProcess::start(&connect, &root, &["--scrape", &metrics]);
    let events = console.events();
    next_state(
        &events,
        "traffic to the provider",
        Duration::from_secs(20),
        |s| calls_per_s(s, &first.url) > 0.0,
    );
    let before = console.request("GET", "/api/state", &[], "").1.len();

    let rt = common::runtime();
    let client = rt.block_on(raw_client(&connect));
    let per_round = CHURNED / ROUNDS;
    for round in 0..ROUNDS {
        let ports = round * per_round..(round + 1) * per_round;
        let nodes = rt.block_on(create_providers(&client, &churn, ports));
        next_state(
            &events,
            "the churned providers shown",
            Duration::from_secs(60),
            |s| providers(s, &churn).len() == per_round,
        );
        rt.block_on(delete_all(&client, &nodes));
        next_state(
            &events,
            "the churned providers gone",
            Duration::from_secs(60),
            |s| providers(s, &churn).is_empty(),
        );
    }

    let newcomer = spawn_provider(&connect, &base, 0, &[]);
    let (state, _) = next_state(
        &events,
        "traffic to the newcomer",
        Duration::from_secs(30),
        |s| calls_per_s(s, &newcomer.url) > 0.0,
    );
    let endpoint = newcomer.url.split('?').next().unwrap_or(&newcomer.url);
    assert_eq!(
        state["homes"][endpoint],
        base.as_str(),
        "the newcomer is charted under its service (homes: {} endpoints)",
        state["homes"].as_object().map_or(0, |h| h.len())
    );
    let after = console.request("GET", "/api/state", &[], "").1.len();
    eprintln!("state: {before} bytes with one provider, {after} after the churn and a newcomer");
    assert!(
        after < before + 8 * 1024,
        "the state grew from {before} to {after} bytes with two live providers"
    );
}

/// Creates one persistent provider node under `base` per port in `ports` (one transaction).
async fn create_providers(
    client: &zkc::Client,
    base: &str,
    ports: std::ops::Range<usize>,
) -> Vec<String> {
    let options = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    let _ = client.create(base, b"", &options).await;
    let mut multi = client.new_multi_writer();
    let mut nodes = Vec::new();
    for port in ports {
        let node = format!("{base}/provider{port:010}");
        let url = format!("http://127.0.0.1:{}", 20_000 + port);
        multi
            .add_create(&node, url.as_bytes(), &options)
            .expect("a create in the transaction");
        nodes.push(node);
    }
    multi.commit().await.expect("create the churned providers");
    nodes
}

/// Deletes `nodes` (one transaction).
async fn delete_all(client: &zkc::Client, nodes: &[String]) {
    let mut multi = client.new_multi_writer();
    for node in nodes {
        multi
            .add_delete(node, None)
            .expect("a delete in the transaction");
    }
    multi.commit().await.expect("delete the churned providers");
}
