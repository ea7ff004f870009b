//! zoorpc's consumer calls and balances over a fleet Curator registered, and follows its session.

use super::*;

#[test]
fn zoorpc_calls_and_balances_over_a_fleet_curator_registered_and_follows_its_session() {
    let connect = zk().connect_string();
    let base = unique_path("curator-fleet");
    let curator = ["--curator-name", "greeter", "--curator-base", base.as_str()];
    let (_python, python_port) =
        crate::interop::python_hello_server(&[], "the server Curator registers");
    let python_url = format!("http://127.0.0.1:{python_port}");
    // As the consumer names it: the weight of its Spring metadata in the URL.
    let python_named = format!("{python_url}?weight=100");
    // Curator registers the Python server as a Spring application with a gRPC server does: the
    // instance's port its web port (here one nothing listens on), the gRPC port in the Spring
    // payload's `gRPC_port` (weight 100); it keeps its session (1.5 s) until it is killed.
    let mut registrant = ChildProcess::spawn(
        "CuratorPeer register",
        java(&[
            "register",
            &connect,
            &base,
            "greeter",
            "127.0.0.1",
            "1",
            &python_port.to_string(),
            "100",
            "1500",
        ]),
    )
    .unwrap();
    let line = registrant
        .wait_for_line("registered ", Duration::from_secs(60))
        .unwrap();
    let java_id = line["registered ".len()..].to_owned();
    // Two Rust providers in the same service.
    let rust: Vec<ChildProcess> = (0..2)
        .map(|_| curator_provider(&connect, &base, "greeter", &[]))
        .collect();
    let mut urls: Vec<String> = rust.iter().map(url_of).collect();
    urls.push(python_named.clone());
    urls.sort();
    // A node holding no Curator instance: skipped, never a failed listing; `ls` shows it.
    let rt = common::runtime();
    let raw = rt.block_on(common::raw_client(&connect));
    rt.block_on(raw.create(
        &format!("{base}/greeter/not-an-instance"),
        b"http://127.0.0.1:1 is a URL, not Curator's JSON",
        &zookeeper_client::CreateMode::Ephemeral.with_acls(zookeeper_client::Acls::anyone_all()),
    ))
    .unwrap();

    // The consumer calls all three, round-robin: the Java-registered Python server included.
    let (code, lines, err) = zoorpc(
        &[
            &[
                "call",
                "--zk",
                &connect,
                "--count",
                "30",
                "--strategy",
                "round-robin",
            ][..],
            &curator[..],
            &["world"],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{lines:?} {err}");
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.starts_with("ok ")) {
        let url = line.split_whitespace().nth(1).unwrap();
        *answered.entry(url.to_owned()).or_default() += 1;
    }
    assert_eq!(
        answered.keys().cloned().collect::<Vec<_>>(),
        urls,
        "{lines:?}"
    );
    assert!(answered.values().all(|n| *n == 10), "{answered:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("ok {python_named} Hello world from python")),
        "{lines:?}"
    );

    // `ls` shows the three instances and the bad node as bad data, and so does its walk of
    // the tree (Curator's JSON read as Curator's consumers read it).
    let (code, ls, err) = zoorpc(&[&["ls", "--zk", &connect][..], &curator[..]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        ls[0],
        format!("{base}/greeter (3 providers, 1 with bad data)"),
        "{ls:?}"
    );
    let (code, walked, err) = zoorpc(&["ls", "--zk", &connect, &base]);
    assert_eq!(code, Some(0), "{err}");
    // The same nodes and URLs (ages, and the reason a bad node is no provider, differ).
    let nodes = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.split(" session=").next().unwrap_or(l))
            .map(|l| l.split(" BAD DATA").next().unwrap_or(l).to_owned())
            .collect()
    };
    assert_eq!(nodes(&walked), nodes(&ls), "{walked:?} {ls:?}");
    assert!(
        ls.iter()
            .any(|l| l.starts_with(&format!("  {java_id} {python_url} meta=weight=100 "))),
        "{ls:?}"
    );
    assert!(
        ls.iter().any(|l| l
            .starts_with("  not-an-instance BAD DATA: not a callable Curator service instance")),
        "{ls:?}"
    );

    // `zoorpc proxy` forwards any gRPC client's calls over the same fleet.
    let mut proxy = ChildProcess::spawn("zoorpc proxy", {
        let mut cmd = Command::new(ZOORPC);
        cmd.args(["proxy", "--zk", &connect, "--listen", "127.0.0.1:0"])
            .args(["--strategy", "round-robin"])
            .args(curator);
        cmd
    })
    .unwrap();
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let proxy_addr = line.split_whitespace().nth(1).unwrap().to_owned();
    let messages = rt.block_on(async {
        let mut client = HelloServiceClient::connect(format!("http://{proxy_addr}"))
            .await
            .unwrap();
        let mut messages = Vec::new();
        for _ in 0..6 {
            let request = HelloRequest {
                name: "proxy".into(),
            };
            let reply = client.say_hello(request).await.unwrap().into_inner();
            messages.push(reply.message);
        }
        messages
    });
    let from_python = messages
        .iter()
        .filter(|m| *m == "Hello proxy from python")
        .count();
    assert_eq!(from_python, 2, "{messages:?}");
    proxy.signal(libc::SIGTERM).unwrap();
    proxy
        .wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();

    // `watch` follows the Java registrant's session: SIGKILL, and its instance goes.
    let mut watch = ChildProcess::spawn("zoorpc watch", {
        let mut cmd = Command::new(ZOORPC);
        cmd.args(["watch", "--zk", &connect]).args(curator);
        cmd
    })
    .unwrap();
    let first = watch
        .wait_for_line("live=", Duration::from_secs(20))
        .unwrap();
    assert!(first.starts_with("live=3 "), "{first}");
    assert!(
        first.contains(&format!("+{java_id} {python_named}")),
        "{first}"
    );
    registrant.kill();
    let gone = watch
        .wait_for_line("live=2", Duration::from_secs(20))
        .unwrap();
    assert_eq!(gone, format!("live=2 -{java_id} {python_named}"));
    // And the consumer balances over the two left.
    let (code, lines, err) = zoorpc(
        &[
            &["call", "--zk", &connect, "--count", "4"][..],
            &curator[..],
            &["again"],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{lines:?} {err}");
    assert!(
        lines.iter().filter(|l| l.starts_with("ok ")).count() == 4
            && !lines.iter().any(|l| l.contains(&python_url)),
        "{lines:?}"
    );
}
