//! The `zoorpc` command: help and usage errors, and each subcommand against a real ZooKeeper
//! (providers, listings, watches, the master of an election, designation, the gRPC proxy).

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{eventually, raw_client, spawn_provider, zk};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::{ChildProcess, unique_path};

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");

/// Runs `zoorpc args` to its end (at most 30 s): exit code, stdout, stderr.
fn zoorpc(args: &[&str], env_zk: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(ZOORPC);
    cmd.args(args).env_remove("ZOORPC_ZK");
    if let Some(zk) = env_zk {
        cmd.env("ZOORPC_ZK", zk);
    }
    let mut child = ChildProcess::spawn(format!("zoorpc {args:?}"), cmd).unwrap();
    let status = child
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("zoorpc {args:?} did not end: {e}"));
    let out = child.drain_lines().join("\n");
    (status.code(), out, String::new())
}

/// Runs `zoorpc args` capturing stderr too (for the usage errors).
fn zoorpc_stderr(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(ZOORPC)
        .args(args)
        .env_remove("ZOORPC_ZK")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn spawn(name: &str, args: &[&str]) -> ChildProcess {
    let mut cmd = Command::new(ZOORPC);
    cmd.args(args);
    ChildProcess::spawn(name, cmd).unwrap()
}

/// A plain tonic channel to `addr` (a proxy's, an HA server's).
async fn channel_to(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// `zoorpc proxy --zk CONNECT --listen 127.0.0.1:0 ARGS...` once it listens: the process, its
/// `listening` line and the address it accepts on.
fn start_proxy(connect: &str, args: &[&str]) -> (ChildProcess, String, String) {
    let mut all = vec!["proxy", "--zk", connect, "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut proxy = spawn("proxy", &all);
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let addr = line.split_whitespace().nth(1).unwrap().to_owned();
    (proxy, line, addr)
}

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

/// An `ha-server` process and its address.
fn ha_server(connect: &str, path: &str) -> (ChildProcess, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args(["--zk", connect, "--path", path, "--port", "0"])
        .args(["--session-timeout-ms", "2000"]);
    let mut process = ChildProcess::spawn("ha-server", cmd).unwrap();
    let line = process
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let address = line["listening ".len()..].to_owned();
    (process, address)
}

/// Two `ha-server` processes on `path`: the first once it is master, the second once it
/// stands by.
fn master_and_standby(
    connect: &str,
    path: &str,
) -> ((ChildProcess, String), (ChildProcess, String)) {
    let (mut first, first_addr) = ha_server(connect, path);
    first
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let (mut second, second_addr) = ha_server(connect, path);
    second
        .wait_for_line("role standby", Duration::from_secs(20))
        .unwrap();
    ((first, first_addr), (second, second_addr))
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

#[test]
fn proxy_forwards_any_grpc_client_with_failover_while_a_provider_is_killed() {
    common::init_logging();
    let connect = zk().connect_string();
    let base = unique_path("cli-proxy");
    let mut a = spawn_provider(&connect, &base, 0, &[]);
    let b = spawn_provider(&connect, &base, 0, &[]);
    let (mut proxy, _line, addr) = start_proxy(&connect, &["--base-path", &base, "--idempotent"]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = channel_to(&addr).await;
        let client = HelloServiceClient::new(channel.clone());
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let answered_by_a = Arc::new(AtomicU64::new(0));
        let a_url = a.url.clone();
        let looper = {
            let (ok, failed, stop, by_a) = (
                ok.clone(),
                failed.clone(),
                stop.clone(),
                answered_by_a.clone(),
            );
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut errors = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let request = HelloRequest {
                        name: "proxy".into(),
                    };
                    match client.say_hello(request).await {
                        Ok(reply) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if reply.get_ref().provider == a_url {
                                by_a.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            errors.push(e.to_string());
                        }
                    }
                }
                errors
            })
        };
        // Kill a provider once both answered through the proxy, then go on calling.
        let answered = || {
            (
                ok.load(Ordering::SeqCst),
                answered_by_a.load(Ordering::SeqCst),
            )
        };
        let both = "20 calls answered through the proxy, provider a's among them";
        eventually(both, Duration::from_secs(20), || async {
            match answered() {
                (ok, by_a) if ok >= 20 && by_a > 0 => Ok(()),
                (ok, by_a) => Err(format!("{ok} answered, {by_a} by a")),
            }
        })
        .await;
        a.process.kill();
        let before = ok.load(Ordering::SeqCst);
        eventually(
            "200 calls answered after the kill",
            Duration::from_secs(20),
            || async {
                match ok.load(Ordering::SeqCst) - before {
                    more if more >= 200 => Ok(()),
                    more => Err(format!(
                        "{more} answered, {} failed",
                        failed.load(Ordering::SeqCst)
                    )),
                }
            },
        )
        .await;
        stop.store(true, Ordering::SeqCst);
        let errors = looper.await.unwrap();
        assert!(
            errors.is_empty(),
            "failed calls through the proxy: {errors:?}"
        );
        assert_eq!(failed.load(Ordering::SeqCst), 0);

        // A method no provider has: the provider's own answer (UNIMPLEMENTED) comes back.
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<HelloRequest, HelloRequest>::default();
        let path = http::uri::PathAndQuery::from_static("/hello.v1.HelloService/Nope");
        let status = grpc
            .unary(tonic::Request::new(HelloRequest::default()), path, codec)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{status}");
    });

    // No provider left: an UNAVAILABLE status naming the base path, not a dropped connection.
    let mut b = b;
    b.process.kill();
    rt.block_on(async {
        let client = raw_client(&connect).await;
        for p in [&a.node, &b.node] {
            common::wait_node_gone(&client, p, Duration::from_secs(20)).await;
        }
        let channel = channel_to(&addr).await;
        // The proxy hears of the deletions a moment after ZooKeeper made them: until then a
        // call may still meet a dead provider (refused).
        let naming = "an answer naming the base path";
        let status = eventually(naming, Duration::from_secs(5), || async {
            let status = HelloServiceClient::new(channel.clone())
                .say_hello(HelloRequest { name: "x".into() })
                .await
                .unwrap_err();
            if status.message().contains(&base) {
                Ok(status)
            } else {
                Err(status)
            }
        })
        .await;
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    });
    proxy.signal(libc::SIGTERM).unwrap();
    proxy
        .wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();
}

#[test]
fn proxy_with_master_follows_the_master_across_a_handover() {
    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("cli-proxy-master"));
    let ((first, first_addr), (mut second, second_addr)) = master_and_standby(&connect, &path);
    let (mut proxy, line, _addr) = start_proxy(&connect, &["--master", &path]);
    assert!(
        line.ends_with(&format!("-> the master of {path}")),
        "{line}"
    );
    let addr = line.split_whitespace().nth(1).unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut client = rt.block_on(async {
        let channel = channel_to(&addr).await;
        HelloServiceClient::new(channel)
    });
    let mut call = || {
        rt.block_on(client.say_hello(HelloRequest { name: "m".into() }))
            .map(|r| r.into_inner().provider)
    };
    for _ in 0..5 {
        assert_eq!(call().unwrap(), first_addr);
    }
    // The master resigns (SIGTERM): calls go to the new master, none fails.
    first.signal(libc::SIGTERM).unwrap();
    second
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    for _ in 0..5 {
        assert_eq!(call().unwrap(), second_addr);
    }
    proxy.signal(libc::SIGTERM).unwrap();
    proxy
        .wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();
}

/// `zoorpc proxy --attempt-timeout-ms`: a provider slower than the attempt timeout answers the
/// client `DEADLINE_EXCEEDED` (the request may have been processed; an `UNAVAILABLE` would
/// invite the client to retry it) naming the reason, within about the timeout.
#[test]
fn proxy_keeps_the_channels_status_and_its_attempt_timeout() {
    common::init_logging();
    let connect = zk().connect_string();
    let base = unique_path("cli-proxy-slow");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (provider, calls) = rt.block_on(common::echo_load::echo_provider(
        &base,
        Duration::from_secs(2),
    ));
    let (_proxy, _line, addr) = start_proxy(
        &connect,
        &["--base-path", &base, "--attempt-timeout-ms", "300"],
    );
    rt.block_on(async {
        let channel = channel_to(&addr).await;
        let mut client = zoorpc::apps::echo::EchoClient::new(channel);
        let started = Instant::now();
        let status = client
            .say(common::echo_load::say("slow"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
        assert!(status.message().contains("no answer"), "{status}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "sent once (not idempotent)"
        );
        provider.shutdown().await.unwrap();
    });
}
