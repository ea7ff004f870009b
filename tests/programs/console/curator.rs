//! The console on a root holding the Curator / Spring Cloud Zookeeper layout: instances shown
//! as the providers a consumer calls (a zoorpc provider's and one a Java registrant wrote), JSON
//! that is not Curator's as bad data, and the weight action: kept by a zoorpc provider when the
//! instance has Spring's metadata, refused (409, saying why) when it has nowhere to go.

use std::time::Duration;

use serde_json::Value;
use zookeeper_client as zkc;
use zoorpc_testkit::unique_path;

use super::{ConsoleProcess, next_state, providers};
use crate::common::{self, curator_provider, raw_client, registered, zk};

/// A `null` payload and only an `sslPort`, as a Java registrant without Spring writes it.
const JAVA_INSTANCE: &str = r#"{"name":"greeter","id":"java-1","address":"127.0.0.1","port":null,
"sslPort":8443,"payload":null,"registrationTimeUTC":1589208767337,"serviceType":"STATIC",
"uriSpec":{"parts":[{"value":"scheme","variable":true}]},"enabled":true}"#;

/// The shown provider whose node is `node` (`null` if it is not shown).
fn row(state: &Value, service: &str, node: &str) -> Value {
    providers(state, service)
        .into_iter()
        .find(|p| p["path"] == node)
        .unwrap_or_default()
}

#[test]
fn console_shows_curator_instances_as_providers_and_weighs_the_spring_ones() {
    let connect = zk().connect_string();
    let root = unique_path("console-curator");
    let base = format!("{root}/services");
    let service = format!("{base}/greeter");
    let spring = ["--weight", "100", "--curator-payload", "spring-cloud"];
    let provider = curator_provider(&connect, &base, "greeter", &spring);
    let (node, _) = registered(&provider);
    let java = format!("{service}/java-1");
    let not_curator = format!("{service}/not-curator");
    let rt = common::runtime();
    // Kept open for the test: the session holding the ephemeral node of foreign JSON.
    let writer = rt.block_on(async {
        let client = raw_client(&connect).await;
        let persistent = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        client
            .create(&java, JAVA_INSTANCE.as_bytes(), &persistent)
            .await
            .expect("create the Java instance");
        let ephemeral = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::anyone_all());
        client
            .create(&not_curator, br#"{"broker":1,"host":"h"}"#, &ephemeral)
            .await
            .expect("create the foreign JSON");
        client
    });
    let (console, _credential) = ConsoleProcess::start_acting(&connect, &root);
    let events = console.events();
    let (state, _) = next_state(&events, "3 instances", Duration::from_secs(10), |s| {
        providers(s, &service).len() == 3
    });

    let ours = row(&state, &service, &node);
    let url = ours["url"].as_str().expect("our instance is a provider");
    assert!(url.starts_with("http://127.0.0.1:"), "{ours}");
    assert_eq!(ours["metadata"]["weight"], "100", "{ours}");
    let java_row = row(&state, &service, &java);
    assert_eq!(java_row["url"], "https://127.0.0.1:8443", "{java_row}");
    assert_eq!(java_row["node"], "java-1");
    let bad = row(&state, &service, &not_curator);
    assert!(bad["url"].is_null(), "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("Curator"), "{bad}");

    // Spring's metadata holds a weight: set, and kept by the provider.
    let confirmed = ["Content-Type: application/json", "X-Zoorpc-Confirmed: yes"];
    let body = format!(r#"{{"node": "{node}", "weight": 7}}"#);
    let (status, answer) = console.request("POST", "/api/weight", &confirmed, &body);
    assert_eq!(status, 200, "{answer}");
    next_state(&events, "the new weight", Duration::from_secs(10), |s| {
        row(s, &service, &node)["metadata"]["weight"] == "7"
    });
    // Someone else's write into the node: the provider writes its JSON back, with weight 7.
    let restored = rt.block_on(async {
        let (data, _) = writer.get_data(&node).await.unwrap();
        let moved = String::from_utf8(data)
            .unwrap()
            .replace("127.0.0.1", "10.9.9.9");
        writer
            .set_data(&node, moved.as_bytes(), None)
            .await
            .unwrap();
        let written_back = async {
            loop {
                let (data, _, watcher) = writer.get_and_watch_data(&node).await.unwrap();
                if !String::from_utf8_lossy(&data).contains("10.9.9.9") {
                    return data;
                }
                watcher.changed().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), written_back)
            .await
            .expect("the provider writes its instance back")
    });
    let restored: Value = serde_json::from_slice(&restored).unwrap();
    assert_eq!(restored["payload"]["metadata"]["weight"], "7", "{restored}");
    next_state(&events, "the instance back", Duration::from_secs(10), |s| {
        let ours = row(s, &service, &node);
        ours["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:"))
            && ours["metadata"]["weight"] == "7"
    });

    // A null payload has nowhere to hold a weight: refused, saying why, nothing changed.
    let body = format!(r#"{{"node": "{java}", "weight": 7}}"#);
    let (status, answer) = console.request("POST", "/api/weight", &confirmed, &body);
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer.contains("--curator-payload spring-cloud"),
        "{answer}"
    );
    let (data, _) = rt.block_on(writer.get_data(&java)).unwrap();
    assert_eq!(data, JAVA_INSTANCE.as_bytes());
}
