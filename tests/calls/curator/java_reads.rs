//! Curator's `ServiceDiscovery` lists zoorpc providers: address, port, Spring metadata, `sslPort` for TLS.

use super::*;

#[test]
fn curator_lists_zoorpc_providers_with_their_address_port_and_spring_metadata() {
    let connect = zk().connect_string();
    let base = unique_path("curator-base");
    let zoorpc_base = unique_path("curator-both");
    // One only in the Curator layout; one in both layouts with Spring's payload.
    let only = curator_provider(&connect, &base, "greeter", &[]);
    let mut both = curator_provider(
        &connect,
        &base,
        "greeter",
        &[
            "--base-path",
            &zoorpc_base,
            "--curator-payload",
            "spring-cloud",
            "--weight",
            "30",
        ],
    );
    let (only_url, both_url) = (url_of(&only), url_of(&both));
    let both_node = both.seen_lines()[0]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(
        both_node.starts_with(&format!("{zoorpc_base}/provider")),
        "{both_node}"
    );

    let mut found = curator_query(&connect, &base, "greeter");
    found.sort_by_key(|f| f.metadata.is_empty());
    assert_eq!(found.len(), 2, "{found:?}");
    let (spring, plain) = (&found[0], &found[1]);
    for (instance, url) in [(spring, &both_url), (plain, &only_url)] {
        assert_eq!(
            format!("http://{}:{}", instance.address, instance.port),
            *url
        );
        assert_eq!(instance.uri, *url, "Curator's uriSpec builds the URL");
        assert_eq!(instance.ssl_port, "null");
        assert_eq!(instance.id.len(), 36, "a UUID: {instance:?}");
    }
    assert!(plain.metadata.is_empty(), "{plain:?}");
    let port = both_url.rsplit(':').next().unwrap();
    assert_eq!(
        spring.metadata.get("gRPC_port").map(String::as_str),
        Some(port)
    );
    assert_eq!(
        spring.metadata.get("weight").map(String::as_str),
        Some("30")
    );
    assert_eq!(
        spring.metadata.get("instance_status").map(String::as_str),
        Some("UP")
    );

    // The program names both of its nodes, the provider<seq> one first.
    let spring_node = format!("{base}/greeter/{}", spring.id);
    let second = both
        .wait_for_line("registered ", Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        second,
        format!("registered {spring_node} {both_url}?weight=30")
    );

    // An operator deletes an instance node: it is back under the same id, and announced again.
    let rt = common::runtime();
    rt.block_on(async {
        let client = common::raw_client(&connect).await;
        client.delete(&spring_node, None).await.unwrap();
        common::eventually(
            "the deleted instance node re-created",
            Duration::from_secs(20),
            || {
                let client = &client;
                let path = spring_node.clone();
                async move {
                    match client.check_stat(&path).await {
                        Ok(Some(stat)) if stat.ephemeral_owner != 0 => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
    });
    let again = both
        .wait_for_line("registered ", Duration::from_secs(5))
        .unwrap();
    assert_eq!(again, second);

    // SIGTERM: both nodes are deleted before the provider stops; Curator sees one instance left.
    both.signal(libc::SIGTERM).unwrap();
    let line = both
        .wait_for_line("deregistered ", Duration::from_secs(20))
        .unwrap();
    assert_eq!(line, format!("deregistered {both_node}"));
    let line = both
        .wait_for_line("deregistered ", Duration::from_secs(5))
        .unwrap();
    assert_eq!(line, format!("deregistered {spring_node}"));
    let left = curator_query(&connect, &base, "greeter");
    assert_eq!(left, vec![plain.clone()]);
    rt.block_on(async {
        let client = common::raw_client(&connect).await;
        assert_eq!(client.check_stat(&both_node).await.unwrap(), None);
    });
    both.wait_for_line("stopped", Duration::from_secs(20))
        .unwrap();
}

#[test]
fn a_tls_provider_is_an_ssl_port_to_curator_and_called_over_https_from_it() {
    let pki = common::pki::Pki::new();
    let connect = zk().connect_string();
    let base = unique_path("curator-tls");
    let (cert, key, ca) = (
        pki.file("server.pem"),
        pki.file("server.key"),
        pki.file("ca.pem"),
    );
    let provider = curator_provider(
        &connect,
        &base,
        "secure",
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--curator-payload",
            "spring-cloud",
        ],
    );
    let url = url_of(&provider);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let port = url.rsplit(':').next().unwrap();

    // Curator: no plaintext port, the TLS one as sslPort, an https:// uriSpec.
    let found = curator_query(&connect, &base, "secure");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].port.as_str(), found[0].ssl_port.as_str()),
        ("null", port)
    );
    assert_eq!(found[0].uri, url);
    assert_eq!(
        found[0].metadata.get("gRPC_port").map(String::as_str),
        Some(port)
    );

    // zoorpc's consumer calls it over TLS, verified with the CA.
    let (code, lines, err) = zoorpc(&[
        "call",
        "--zk",
        &connect,
        "--curator-name",
        "secure",
        "--curator-base",
        &base,
        "--tls-ca",
        &ca,
        "--count",
        "2",
        "tls",
    ]);
    assert_eq!(code, Some(0), "{lines:?} {err}");
    let expected = format!("ok {url}?weight=100 Hello tls!");
    assert_eq!(
        lines.iter().filter(|l| **l == expected).count(),
        2,
        "{lines:?}"
    );
}
