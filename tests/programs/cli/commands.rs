//! The subcommands against a real ZooKeeper: help and usage errors, provider / ls / call / watch, master and designate.

use super::*;

#[test]
fn help_lists_every_subcommand_and_usage_errors_are_one_line() {
    let output = Command::new(ZOORPC).arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    let subcommands = [
        "zk",
        "provider",
        "call",
        "ls",
        "watch",
        "master",
        "designate",
        "proxy",
    ];
    for sub in subcommands {
        assert!(
            help.contains(&format!("  {sub} ")),
            "{sub} missing in {help}"
        );
        let output = Command::new(ZOORPC).args([sub, "--help"]).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{sub} --help");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage: zoorpc "));
    }
    let designate = Command::new(ZOORPC)
        .args(["designate", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&designate.stdout).contains("participant"));
    for (args, says) in [
        (&["ls"][..], "--zk"),
        (
            &["proxy", "--zk", "h:1", "--listen", "127.0.0.1:0"][..],
            "--base-path",
        ),
        (&["call", "x", "--zk", "h:1", "--count", "0"][..], "--count"),
        (
            &["call", "x", "--zk", "h:1", "--strategy", "bogus"][..],
            "round-robin",
        ),
        (
            &[
                "proxy",
                "--zk",
                "h:1",
                "--listen",
                "nowhere",
                "--base-path",
                "/r",
            ][..],
            "--listen",
        ),
        (&["nope"][..], "nope"),
    ] {
        let (code, stderr) = zoorpc_stderr(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
    // Nothing listens there: one line naming the address and what to check, status 1.
    let (code, stderr) = zoorpc_stderr(&["ls", "--zk", "127.0.0.1:1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
}

/// `designate` refuses an address no contender can have before anything connects: an IPv6
/// address without brackets (it failed later, "invalid URI", status 1), or no port.
#[test]
fn designate_refuses_an_unbracketed_ipv6_address_or_no_port_as_a_usage_error() {
    for (address, says) in [("::1:1234", "write [::1]:1234"), ("127.0.0.1", "port")] {
        let (code, stderr) = zoorpc_stderr(&["designate", "--zk", "h:1", "/soa/m", address]);
        assert_eq!(code, Some(2), "{address}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{address}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{address}: {stderr}"
        );
    }
}

/// `designate` at a path where no election runs says first that there is no master there (it
/// said the address was no contender's, "there are none"), with or without `--force`: one
/// line, status 1, nothing written.
#[test]
fn designate_where_no_election_runs_says_there_is_no_master() {
    let connect = zk().connect_string();
    let path = format!("{}/Nope:1.0.0", unique_path("designate-none"));
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec!["designate", "--zk", &connect, &path, "127.0.0.1:19102"];
        args.extend(force);
        let (code, stderr) = zoorpc_stderr(&args);
        assert_eq!(code, Some(1), "{force:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{force:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: no master at {path}: no contender holds")),
            "{force:?}: {stderr}"
        );
        assert!(stderr.contains("zoorpc-ha-server"), "{stderr}");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(raw_client(&connect));
    assert_eq!(rt.block_on(client.check_stat(&path)).unwrap(), None);
}

#[test]
fn provider_ls_call_and_watch_against_zookeeper() {
    let connect = zk().connect_string();
    let base = unique_path("cli-ls");
    let mut watch = spawn("watch", &["watch", "--zk", &connect, "--base-path", &base]);
    let first = watch
        .wait_for_line("live=", Duration::from_secs(20))
        .unwrap();
    assert_eq!(first, "live=0");

    // ZOORPC_ZK is the default --zk.
    let mut cmd = Command::new(ZOORPC);
    cmd.env("ZOORPC_ZK", &connect)
        .args(["provider", "--base-path", &base, "--weight", "7"]);
    let mut provider = ChildProcess::spawn("zoorpc provider", cmd).unwrap();
    let line = provider
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    let mut parts = line.split_whitespace().skip(1);
    let (node, url) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
    );
    let name = node.rsplit('/').next().unwrap().to_owned();
    let added = watch
        .wait_for_line("live=1", Duration::from_secs(10))
        .unwrap();
    assert_eq!(added, format!("live=1 +{name} {url}"));

    // ls: text and JSON, the session id is the node's ephemeralOwner.
    let raw = tokio::runtime::Runtime::new().unwrap();
    let owner = raw.block_on(async {
        let client = raw_client(&connect).await;
        client.get_data(&node).await.unwrap().1.ephemeral_owner
    });
    let (code, out, _) = zoorpc(&["ls", &base], Some(&connect));
    assert_eq!(code, Some(0), "{out}");
    let endpoint = url.split('?').next().unwrap();
    assert!(out.starts_with(&format!("{base} (1 provider)")), "{out}");
    assert!(
        out.contains(&format!(
            "  {name} {endpoint} meta=weight=7 session={owner:#x} age="
        )),
        "{out}"
    );
    let (code, out, _) = zoorpc(&["ls", "--json", "--zk", &connect, "/"], None);
    assert_eq!(code, Some(0), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let service = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["base_path"] == base.as_str())
        .unwrap_or_else(|| panic!("{base} not in {out}"));
    let entry = &service["providers"][0];
    assert_eq!(entry["node"], name.as_str());
    assert_eq!(entry["url"], url.as_str());
    assert_eq!(entry["metadata"]["weight"], "7");
    assert_eq!(entry["session_id"], format!("{owner:#x}").as_str());
    assert!(entry["age_ms"].as_i64().unwrap() >= 0);

    // call: through the registry, exit 0 when every call answered.
    let (code, out, _) = zoorpc(
        &[
            "call",
            "zoorpc",
            "--zk",
            &connect,
            "--base-path",
            &base,
            "--count",
            "3",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for line in &lines[..3] {
        assert!(line.starts_with(&format!("ok {url} ")), "{line}");
        assert!(line.contains("zoorpc"), "{line}");
    }
    assert_eq!(lines[3], "calls=3 ok=3 failed=0");

    provider.signal(libc::SIGTERM).unwrap();
    provider
        .wait_for_line("stopped", Duration::from_secs(20))
        .unwrap();
    let removed = watch
        .wait_for_line("live=0", Duration::from_secs(10))
        .unwrap();
    assert_eq!(removed, format!("live=0 -{name} {url}"));

    // With nobody registered: every call fails at once, exit 1 (`--calls` is `--count`, as the
    // client programs spell it).
    let (code, out, _) = zoorpc(
        &[
            "call",
            "x",
            "--zk",
            &connect,
            "--base-path",
            &base,
            "--calls",
            "2",
        ],
        None,
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.ends_with("calls=2 ok=0 failed=2"), "{out}");
    let (code, out, _) = zoorpc(&["ls", "--zk", &connect, &base], None);
    assert_eq!((code, out), (Some(0), format!("no providers under {base}")));

    watch.signal(libc::SIGTERM).unwrap();
    assert!(watch.wait_exit(Duration::from_secs(10)).unwrap().success());
}

#[test]
fn master_shows_the_holder_and_epoch_and_designate_hands_over_to_contenders_only() {
    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("cli-master"));
    let (code, out, _) = zoorpc(&["master", "--zk", &connect, &path], None);
    assert_eq!((code, out), (Some(0), format!("no master at {path}")));

    let ((mut first, first_addr), (mut second, second_addr)) = master_and_standby(&connect, &path);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mzxid, owner) = rt.block_on(async {
        let client = raw_client(&connect).await;
        let (_, companion) = client.get_data(&format!("{path}.epoch")).await.unwrap();
        let (_, node) = client.get_data(&path).await.unwrap();
        (companion.mzxid, node.ephemeral_owner)
    });
    let (code, out, _) = zoorpc(&["master", "--zk", &connect, &path, "--json"], None);
    assert_eq!(code, Some(0), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["master"], first_addr.as_str(), "{out}");
    assert_eq!(doc["epoch"], mzxid, "{out}");
    assert_eq!(doc["session_id"], format!("{owner:#x}").as_str(), "{out}");
    assert!(doc["held_ms"].as_i64().unwrap() >= 0, "{out}");
    let (code, out, _) = zoorpc(&["master", "--zk", &connect, &path], None);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with(&format!("master {first_addr} epoch={mzxid} held=")),
        "{out}"
    );

    // Nothing answers gRPC health there: refused, nothing changes.
    let nobody = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let (code, stderr) = {
        let output = Command::new(ZOORPC)
            .args(["designate", "--zk", &connect, &path, &nobody])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("not look like a contender") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    // The standby: it takes over under a larger epoch.
    let (code, out, _) = zoorpc(&["designate", "--zk", &connect, &path, &second_addr], None);
    assert_eq!(
        (code, out),
        (Some(0), format!("designated {second_addr} at {path}"))
    );
    let line = second
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let epoch: i64 = line.rsplit('=').next().unwrap().parse().unwrap();
    assert!(epoch > mzxid, "{line}");
    first
        .wait_for_line("role standby", Duration::from_secs(20))
        .unwrap();
    let (_, out, _) = zoorpc(&["master", "--zk", &connect, &path], None);
    assert!(
        out.starts_with(&format!("master {second_addr} epoch={epoch} ")),
        "{out}"
    );

    // --force skips the check (ZooKeeper's node says so; the contenders run again after the grace).
    let (code, out, _) = zoorpc(
        &["designate", "--force", "--zk", &connect, &path, &nobody],
        None,
    );
    assert_eq!(
        (code, out),
        (Some(0), format!("designated {nobody} at {path}"))
    );
}
