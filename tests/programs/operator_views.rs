//! What operators see and change with `zoorpc ls`, `master` and `designate` when the tree holds
//! what someone else wrote with zkCli: nodes under other names, 70 KB of garbage, a mistyped
//! path. Found by a hunting session; each case failed before its fix.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{eventually_blocking, raw_client, run_command, spawn_provider, zk};
use zookeeper_client as zkc;
use zoorpc_testkit::{ChildProcess, unique_path};

fn zoorpc(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args(args)
        .env_remove("ZOORPC_ZK")
        .env_remove("ZOORPC_ZK_AUTH_FILE");
    run_command(cmd, Duration::from_secs(30))
}

fn persistent() -> zkc::CreateOptions<'static> {
    zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all())
}

/// `ls` shows every node a consumer would call (discovery takes any child name), and bad data
/// as a short line.
#[test]
fn ls_shows_what_consumers_call_whatever_its_name_and_bad_data_in_one_short_line() {
    let connect = zk().connect_string();
    let root = unique_path("ls-names");
    let provider = spawn_provider(&connect, &format!("{root}/registry"), 0, &[]);
    let base = format!("{root}/r2");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = raw_client(&connect).await;
        client.create(&base, b"", &persistent()).await.unwrap(); // its parent: the provider's
        // An operator's node under another name, holding a live provider's URL.
        let foo = format!("{base}/foo");
        client
            .create(&foo, provider.url.as_bytes(), &persistent())
            .await
            .unwrap();
        // A provider-named node holding 70 KB of garbage.
        let junk = format!("{base}/provider0000000099");
        client
            .create(&junk, "g".repeat(70_000).as_bytes(), &persistent())
            .await
            .unwrap();
    });
    let (code, out, err) = zoorpc(&["call", "x", "--zk", &connect, "--base-path", &base]);
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(out.contains(&provider.url), "the consumer calls foo: {out}");

    let (code, out, err) = zoorpc(&["ls", &root, "--zk", &connect]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("foo ") && l.contains(&provider.url)),
        "ls hides what consumers call:\n{out}"
    );
    assert!(out.contains("provider0000000099"), "{out}");
    assert!(out.lines().all(|l| l.len() < 1000), "a long line:\n{out}");
    let (code, out, _) = zoorpc(&["ls", &root, "--zk", &connect, "--json"]);
    assert_eq!(code, Some(0));
    assert!(out.len() < 4000, "{} bytes of JSON", out.len());
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(doc.to_string().contains("foo"), "{out}");
}

/// `designate` refuses what is not a master node (a provider's node, a parent): one line,
/// status 1, the node unchanged. `master` on a parent says it is not an election.
#[test]
fn designate_refuses_a_provider_node_or_a_parent_and_changes_nothing() {
    let connect = zk().connect_string();
    let base = unique_path("designate-wrong");
    let provider = spawn_provider(&connect, &base, 0, &[]);
    let node = format!("{base}/{}", provider.node.rsplit('/').next().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(raw_client(&connect));
    for path in [node.as_str(), base.as_str()] {
        let before = rt.block_on(client.get_data(path)).unwrap();
        let (code, out, err) = zoorpc(&[
            "designate",
            path,
            "127.0.0.1:1",
            "--force",
            "--zk",
            &connect,
        ]);
        assert_eq!(code, Some(1), "{path}: {out} {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains("not an election's master node"), "{err}");
        let after = rt.block_on(client.get_data(path)).unwrap();
        assert_eq!(before.0, after.0, "{path} was changed");
        assert_eq!(before.1.version, after.1.version, "{path} was written");
    }
    let (code, _, err) = zoorpc(&["master", &base, "--zk", &connect]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not an election's master node"), "{err}");
}

/// A master node holding 70 KB of garbage: `master` prints one short line, and an HA server
/// standing by prints a short role line.
#[test]
fn a_master_node_of_70_kb_garbage_is_shown_in_short_lines() {
    let connect = zk().connect_string();
    let path = format!("{}/Junk:1.0.0", unique_path("master-junk"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(raw_client(&connect));
    let parent = path.rsplit_once('/').unwrap().0.to_owned();
    rt.block_on(async {
        for p in ["/zoorpc-test", parent.as_str()] {
            match client.create(p, b"", &persistent()).await {
                Ok(_) | Err(zkc::Error::NodeExists) => {}
                Err(e) => panic!("{p}: {e}"),
            }
        }
        client
            .create(&format!("{path}.epoch"), b"", &persistent())
            .await
            .unwrap();
        let ephemeral = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::anyone_all());
        client
            .create(&path, "g".repeat(70_000).as_bytes(), &ephemeral)
            .await
            .unwrap();
    });
    let (code, out, err) = zoorpc(&["master", &path, "--zk", &connect]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("BAD DATA") && out.len() < 1000,
        "{} bytes: {out:.300}",
        out.len()
    );
    let (code, out, _) = zoorpc(&["master", &path, "--zk", &connect, "--json"]);
    assert_eq!(code, Some(0));
    assert!(out.len() < 1000, "{} bytes of JSON", out.len());

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args(["--zk", &connect, "--path", &path, "--port", "0"]);
    let mut standby = ChildProcess::spawn("ha-server", cmd).unwrap();
    let role = standby
        .wait_for_line("role standby", Duration::from_secs(20))
        .unwrap();
    assert!(role.len() < 1000, "{} bytes: {role:.300}", role.len());
    drop(client);
}

/// During a handover nobody holds the node for a moment; `master` names the designee then.
#[test]
fn master_names_the_designee_while_a_handover_is_under_way() {
    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("master-designee"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args(["--zk", &connect, "--path", &path, "--port", "0"])
        .args(["--handover-grace-ms", "5000"]);
    let mut holder = ChildProcess::spawn("ha-server", cmd).unwrap();
    holder
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    // Nobody will take over at this address: the handover stays under way for the grace.
    let (code, out, err) = zoorpc(&[
        "designate",
        &path,
        "127.0.0.1:1",
        "--force",
        "--zk",
        &connect,
    ]);
    assert_eq!(code, Some(0), "{out} {err}");
    let out = eventually_blocking("the holder steps down", Duration::from_secs(4), || {
        let (code, out, err) = zoorpc(&["master", &path, "--zk", &connect]);
        assert_eq!(code, Some(0), "{err}");
        if out.starts_with("no master at") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    assert!(out.contains("designee=127.0.0.1:1"), "{out}");
    let (_, json, _) = zoorpc(&["master", &path, "--zk", &connect, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["designee"], "127.0.0.1:1", "{json}");
}

/// A provider whose node an operator deletes registers again and says so; its stop lines name
/// the node it really deletes (they named the node of its first line).
#[test]
fn a_provider_announces_its_new_node_and_deregisters_the_one_there_is() {
    let connect = zk().connect_string();
    let base = unique_path("provider-lines");
    let mut provider = spawn_provider(&connect, &base, 0, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(raw_client(&connect));
    rt.block_on(client.delete(&provider.node, None)).unwrap();
    let line = provider
        .process
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    let new_node = line.split_whitespace().nth(1).unwrap().to_owned();
    assert_ne!(new_node, provider.node, "{line}");
    assert!(line.ends_with(&provider.url), "{line}");
    assert!(
        rt.block_on(client.check_stat(&new_node)).unwrap().is_some(),
        "{new_node} is not in ZooKeeper"
    );
    // The whole base path deleted (as `deleteall`): re-created, the sequence starts again, so
    // the new node may have an old name; announced all the same.
    rt.block_on(async {
        // The provider may re-register between the deletes: as `deleteall`, until it is gone.
        for _ in 0..50 {
            for child in client.list_children(&base).await.unwrap_or_default() {
                let _ = client.delete(&format!("{base}/{child}"), None).await;
            }
            match client.delete(&base, None).await {
                Ok(()) | Err(zkc::Error::NoNode) => return,
                Err(zkc::Error::NotEmpty) => continue,
                Err(e) => panic!("deleting {base}: {e}"),
            }
        }
        panic!("{base} kept its children");
    });
    // Nodes it re-created while the loop deleted them were announced too; the last line names
    // the node there is.
    let new_node = loop {
        let line = provider
            .process
            .wait_for_line("registered ", Duration::from_secs(20))
            .unwrap();
        let node = line.split_whitespace().nth(1).unwrap().to_owned();
        if rt.block_on(client.check_stat(&node)).unwrap().is_some() {
            break node;
        }
    };
    provider.process.signal(libc::SIGTERM).unwrap();
    let line = provider
        .process
        .wait_for_line("deregistered ", Duration::from_secs(20))
        .unwrap();
    assert_eq!(line, format!("deregistered {new_node}"));
    assert!(rt.block_on(client.check_stat(&new_node)).unwrap().is_none());
}

/// A one-shot command prints its one error line and nothing else (no library warnings before
/// it), and logs written to a pipe or a file carry no colour escapes.
#[test]
fn one_shot_commands_print_one_line_and_logs_have_no_colour_codes_off_a_terminal() {
    let connect = zk().connect_string();
    let base = unique_path("quiet");
    let provider = spawn_provider(&connect, &base, 0, &[]);
    // A gRPC server is not ZooKeeper.
    let not_zk = format!("127.0.0.1:{}", provider.port);
    let (code, _, err) = zoorpc(&["ls", "--zk", &not_zk]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");

    // A warning from a long-running program (garbage next to the provider), read from a pipe.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = raw_client(&connect).await;
        client
            .create(
                &format!("{base}/provider9999999999"),
                b"garbage",
                &persistent(),
            )
            .await
            .unwrap();
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
    cmd.args(["--zk", &connect, "--base-path", &base, "--calls", "1"])
        .env_remove("RUST_LOG");
    let (code, out, err) = run_command(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(
        err.contains("WARN"),
        "no warning about the garbage node: {err}"
    );
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe: {err:?}");
}

/// `ls` leaves election nodes out (an HA server's master node is no broken provider), goes on
/// past a subtree it may not read (naming it), and `master` on a provider's node says it is
/// not an election.
#[test]
fn ls_skips_election_nodes_and_unreadable_subtrees_and_master_refuses_a_provider_node() {
    let connect = zk().connect_string();
    let root = unique_path("ls-mixed");
    let provider = spawn_provider(&connect, &format!("{root}/registry"), 0, &[]);
    let path = format!("{root}/soa/Hello:1.0.0");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args(["--zk", &connect, "--path", &path, "--port", "0"]);
    let mut ha = ChildProcess::spawn("ha-server", cmd).unwrap();
    ha.wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let secret = format!("{root}/secret");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let owner = zkc::Client::connector()
            .with_auth("digest", b"svc:pw")
            .connect(&connect)
            .await
            .unwrap();
        let private = zkc::CreateMode::Persistent.with_acls(zkc::Acls::creator_all());
        owner.create(&secret, b"", &private).await.unwrap();
    });
    let (code, out, err) = zoorpc(&["ls", &root, "--zk", &connect]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&provider.url), "{out}");
    assert!(
        !out.contains("Hello:1.0.0"),
        "an election node listed as a provider:\n{out}"
    );
    assert!(
        out.contains(&format!("(not readable by this identity: {secret};")),
        "{out}"
    );
    let (code, out, _) = zoorpc(&["ls", &root, "--zk", &connect, "--json"]);
    assert_eq!(code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["unreadable"][0], secret.as_str(), "{out}");

    let (code, _, err) = zoorpc(&["master", &provider.node, "--zk", &connect]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("not an election's master node (a provider's node)"),
        "{err}"
    );
}

/// A master node holding a word that is not `host:port`: `zoorpc master` shows it as a name, and
/// a master client's call (what `zoorpc proxy --master` forwards through) fails naming what is
/// there, not "no contender holds the node".
#[test]
fn a_master_node_holding_no_address_is_named_by_master_and_by_a_master_clients_calls() {
    use zoorpc::consumer::{MasterClient, MasterClientConfig};
    use zoorpc::proto::{HelloRequest, HelloServiceClient};

    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("master-word"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        let client = raw_client(&connect).await;
        client
            .mkdir(&path, &persistent())
            .await
            .expect("the election's parents");
        client
            .delete(&path, None)
            .await
            .expect("leave only the parents");
        client
            .create(&format!("{path}.epoch"), b"", &persistent())
            .await
            .unwrap();
        let ephemeral = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::anyone_all());
        client.create(&path, b"garbage", &ephemeral).await.unwrap();
        client
    });
    let (code, out, err) = zoorpc(&["master", &path, "--zk", &connect]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("master garbage (a name, not an address: no gRPC client can call it)"),
        "{out}"
    );

    let mut config = MasterClientConfig::new(&connect, &path);
    config.switch_over_timeout = Duration::from_millis(500);
    let master = rt
        .block_on(MasterClient::connect_with(config))
        .expect("a master client");
    let err = rt
        .block_on(master.say_hello("x"))
        .expect_err("nobody to call");
    let said = err.to_string();
    assert!(
        said.contains("\"garbage\"") && !said.contains("no contender holds"),
        "{said}"
    );
    let mut hello = HelloServiceClient::new(master.channel());
    let status = rt
        .block_on(hello.say_hello(HelloRequest { name: "x".into() }))
        .expect_err("nobody to call");
    assert!(
        status.message().contains("\"garbage\""),
        "{}",
        status.message()
    );
    drop(client);
}
