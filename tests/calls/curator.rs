//! Interop with the Java fleets on ZooKeeper: Apache Curator's own service discovery
//! (Debian's `libcurator-discovery-java`, with Spring Cloud Zookeeper's payload class) finds
//! zoorpc providers, and zoorpc's consumer calls and balances over instances Curator registered
//! for a server zoorpc knows nothing of (Python grpcio), through `zoorpc call`, `ls`, `watch`
//! and `proxy`, with real processes and SIGKILL.
//!
//! The Java side is `tests/interop/curator/` compiled once per run with `javac` into
//! `target/tmp/curator-java` (`scripts/install-curator` installs Curator and a JDK when they are
//! missing). A machine where they cannot be installed fails these tests with the reason: they
//! never pass without having run. The Python server comes from the venv `interop.rs` makes.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{run_command, zk};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::{ChildProcess, unique_path};

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The jars the Java side runs with (Debian's, under /usr/share/java).
const JARS: [&str; 11] = [
    "curator-x-discovery",
    "curator-framework",
    "curator-client",
    "zookeeper",
    "zookeeper-jute",
    "guava",
    "jackson-databind",
    "jackson-core",
    "jackson-annotations",
    "slf4j-api",
    "slf4j-nop",
];

/// The classpath of the compiled Java side: installed and compiled once per run, or the test
/// fails with the reason.
fn java_classpath() -> &'static str {
    static CLASSPATH: OnceLock<Result<String, String>> = OnceLock::new();
    let built = CLASSPATH.get_or_init(|| {
        let install = Command::new(format!("{ROOT}/scripts/install-curator"));
        let (code, out, err) = run_command(install, Duration::from_secs(600));
        if code != Some(0) {
            return Err(format!(
                "scripts/install-curator failed ({code:?}): {out}{err}"
            ));
        }
        let jars: Vec<String> = JARS
            .iter()
            .map(|jar| format!("/usr/share/java/{jar}.jar"))
            .collect();
        if let Some(missing) = jars.iter().find(|jar| !Path::new(jar).exists()) {
            return Err(format!(
                "{missing} is missing after scripts/install-curator"
            ));
        }
        let classes = Path::new(env!("CARGO_TARGET_TMPDIR")).join("curator-java");
        let _ = std::fs::remove_dir_all(&classes);
        let mut javac = Command::new("javac");
        javac.arg("-cp").arg(jars.join(":")).arg("-d").arg(&classes);
        for file in ["CuratorPeer.java", "ZookeeperInstance.java"] {
            javac.arg(format!("{ROOT}/tests/interop/curator/{file}"));
        }
        let (code, out, err) = run_command(javac, Duration::from_secs(120));
        if code != Some(0) {
            return Err(format!("javac failed ({code:?}): {out}{err}"));
        }
        Ok(format!("{}:{}", classes.display(), jars.join(":")))
    });
    match built {
        Ok(classpath) => classpath,
        Err(why) => panic!("no Apache Curator to test with: {why}"),
    }
}

fn java(args: &[&str]) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-cp")
        .arg(java_classpath())
        .arg("CuratorPeer")
        .args(args);
    cmd
}

/// One instance as Curator's `queryForInstances` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    id: String,
    address: String,
    port: String,
    ssl_port: String,
    uri: String,
    metadata: BTreeMap<String, String>,
}

/// Curator's `queryForInstances(name)` under `base`, run by the Java side.
fn curator_query(connect: &str, base: &str, name: &str) -> Vec<Found> {
    let (code, out, err) = run_command(
        java(&["query", connect, base, name]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "CuratorPeer query: {out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    let count: usize = lines
        .iter()
        .find_map(|l| l.strip_prefix("done "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `done` line: {out}{err}"));
    let found: Vec<Found> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("instance "))
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            Found {
                id: words[0].to_owned(),
                address: words[1].to_owned(),
                port: words[2].to_owned(),
                ssl_port: words[3].to_owned(),
                uri: words[4].to_owned(),
                metadata: words[5..]
                    .iter()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            }
        })
        .collect();
    assert_eq!(found.len(), count, "{out}");
    found
}

/// `zoorpc-provider` registering in the Curator layout (`extra`: more flags).
fn curator_provider(connect: &str, base: &str, name: &str, extra: &[&str]) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"));
    cmd.args([
        "--zk",
        connect,
        "--curator-name",
        name,
        "--curator-base",
        base,
    ])
    .args(["--session-timeout-ms", "1500"])
    .args(extra);
    let mut process = ChildProcess::spawn(format!("curator provider {name}"), cmd).unwrap();
    process
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    process
}

/// The `http://HOST:PORT` of a provider's `registered <node> <url>` line.
fn url_of(process: &ChildProcess) -> String {
    let line = process
        .seen_lines()
        .iter()
        .find(|l| l.starts_with("registered "))
        .unwrap();
    let url = line.split_whitespace().nth(2).unwrap();
    url.split('?').next().unwrap().to_owned()
}

/// Runs `zoorpc ARGS` to its end: exit code and stdout lines.
fn zoorpc(args: &[&str]) -> (Option<i32>, Vec<String>, String) {
    let mut cmd = Command::new(ZOORPC);
    cmd.args(args);
    let (code, out, err) = run_command(cmd, Duration::from_secs(60));
    (code, out.lines().map(str::to_owned).collect(), err)
}

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

/// The venv's Python with grpcio, or the test fails with the reason.
fn python_hello_server() -> (ChildProcess, u16) {
    let python = match crate::interop::python() {
        Ok(python) => python,
        Err(why) => panic!("no Python grpcio for the server Curator registers: {why}"),
    };
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(format!("{ROOT}/tests/interop/hello_server.py"));
    let mut server = ChildProcess::spawn("python hello server", cmd).unwrap();
    let line = server
        .wait_for_line("listening ", Duration::from_secs(30))
        .unwrap();
    let port = line.rsplit(':').next().unwrap().parse().unwrap();
    (server, port)
}

#[test]
fn zoorpc_calls_and_balances_over_a_fleet_curator_registered_and_follows_its_session() {
    let connect = zk().connect_string();
    let base = unique_path("curator-fleet");
    let curator = ["--curator-name", "greeter", "--curator-base", base.as_str()];
    let (_python, python_port) = python_hello_server();
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
