//! TLS through the programs, against the real ZooKeeper: `zoorpc-provider`, `zoorpc provider`,
//! `zoorpc-ha-server` with `--tls-cert`/`--tls-key` (`--tls-client-ca`); `zoorpc call`,
//! `zoorpc proxy`, `zoorpc-client`, `zoorpc-ha-client` with `--tls-ca` (client certificates);
//! and every bad value of those flags.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::pki::{Ca, Pki};
use common::{raw_client, run_command, spawn_provider, zk};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::{ChildProcess, unique_path};

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");

/// Runs `zoorpc args` to its end (at most 30 s): exit code, stdout, stderr.
fn zoorpc(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(ZOORPC);
    cmd.args(args).env_remove("ZOORPC_ZK");
    run_command(cmd, Duration::from_secs(30))
}

#[test]
fn the_programs_serve_and_call_over_tls_with_their_flags() {
    let pki = Pki::new();
    let connect = zk().connect_string();
    let base = unique_path("tls-programs");
    let (cert, key, ca) = (
        pki.file("server.pem"),
        pki.file("server.key"),
        pki.file("ca.pem"),
    );
    // zoorpc-provider with --tls-cert/--tls-key registers https://.
    let provider = spawn_provider(
        &connect,
        &base,
        0,
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    assert_eq!(provider.url, format!("https://127.0.0.1:{}", provider.port));

    let (code, out, err) = zoorpc(&[
        "call",
        "--zk",
        &connect,
        "--base-path",
        &base,
        "--tls-ca",
        &ca,
        "--count",
        "3",
        "tls",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with(&format!("ok {} ", provider.url)))
            .count(),
        3,
        "{out}"
    );
    assert!(out.contains("calls=3 ok=3 failed=0"), "{out}");

    // Trusting another CA: one readable line naming the endpoint and the certificate problem.
    std::fs::write(
        pki.dir.path().join("other-ca.pem"),
        Ca::new("another CA").pem,
    )
    .unwrap();
    let other = pki.file("other-ca.pem");
    let (code, out, _) = zoorpc(&[
        "call",
        "--zk",
        &connect,
        "--base-path",
        &base,
        "--tls-ca",
        &other,
        "tls",
    ]);
    assert_eq!(code, Some(1), "{out}");
    let port = provider.port;
    assert_eq!(
        out.lines().next().unwrap_or_default(),
        format!(
            "err call failed after 1 attempt(s); last failure at https://127.0.0.1:{port}: cannot open a \
             connection to 127.0.0.1:{port}: TLS handshake failed: invalid peer certificate: UnknownIssuer \
             (the provider's certificate must be issued by a CA in --tls-ca and name 127.0.0.1; a provider \
             that does not speak TLS fails here too)"
        ),
        "{out}"
    );

    // Without --tls-ca: an error naming the flag, exit 1, never plaintext.
    let (code, out, _) = zoorpc(&["call", "--zk", &connect, "--base-path", &base, "tls"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("err ") && out.contains("--tls-ca"), "{out}");

    // zoorpc proxy --tls-ca: a plaintext gRPC client on loopback reaches the TLS provider.
    let mut cmd = Command::new(ZOORPC);
    cmd.args([
        "proxy",
        "--zk",
        &connect,
        "--listen",
        "127.0.0.1:0",
        "--base-path",
        &base,
    ])
    .args(["--tls-ca", &ca]);
    let mut proxy = ChildProcess::spawn("zoorpc proxy (TLS upstream)", cmd).unwrap();
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let addr = line.split_whitespace().nth(1).unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reply = runtime.block_on(async {
        let mut client = HelloServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        client
            .say_hello(HelloRequest {
                name: "via proxy".into(),
            })
            .await
    });
    assert_eq!(reply.unwrap().into_inner().provider, provider.url);
    drop(proxy);

    // zoorpc provider with mutual TLS; zoorpc-client presents its certificate.
    let mutual = unique_path("tls-programs-mutual");
    let mut cmd = Command::new(ZOORPC);
    cmd.args(["provider", "--zk", &connect, "--base-path", &mutual])
        .args([
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ]);
    let mut server = ChildProcess::spawn("zoorpc provider (mTLS)", cmd).unwrap();
    let line = server
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    assert!(line.contains(" https://127.0.0.1:"), "{line}");
    let client = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
        cmd.args([
            "--zk",
            &connect,
            "--base-path",
            &mutual,
            "--calls",
            "2",
            "--interval-ms",
            "0",
        ])
        .args(["--tls-ca", &ca])
        .args(extra);
        run_command(cmd, Duration::from_secs(30))
    };
    let (code, out, err) = client(&[
        "--tls-client-cert",
        &pki.file("client.pem"),
        "--tls-client-key",
        &pki.file("client.key"),
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("calls=2 ok=2 failed=0"), "{out}");
    let (code, out, err) = client(&[]);
    // Every call failed: status 1.
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("calls=2 ok=0 failed=2"), "{out}");
    assert!(out.contains("CertificateRequired"), "{out}");
}

#[test]
fn the_ha_programs_serve_and_call_the_master_over_tls() {
    let pki = Pki::new();
    let connect = zk().connect_string();
    let path = unique_path("tls-ha-programs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args([
        "--zk",
        &connect,
        "--path",
        &path,
        "--session-timeout-ms",
        "2000",
    ])
    .args([
        "--tls-cert",
        &pki.file("server.pem"),
        "--tls-key",
        &pki.file("server.key"),
    ]);
    let mut server = ChildProcess::spawn("ha-server (TLS)", cmd).unwrap();
    let line = server
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let address = line["listening ".len()..].to_owned();
    server
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let client = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-client"));
        cmd.args([
            "--zk",
            &connect,
            "--path",
            &path,
            "--calls",
            "2",
            "--interval-ms",
            "0",
        ])
        .args(["--switch-over-timeout-ms", "1000"])
        .args(extra);
        run_command(cmd, Duration::from_secs(30))
    };
    let (code, out, err) = client(&["--tls-ca", &pki.file("ca.pem")]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(
        out.lines()
            .filter(|l| *l == format!("ok {address}"))
            .count(),
        2,
        "{out}"
    );
    // Without the CA every call fails: status 1, as `zoorpc call`.
    let (code, out, err) = client(&[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("calls=2 ok=0 failed=2"), "{out}");
}

#[test]
fn bad_tls_flags_are_one_line_and_nothing_is_registered() {
    let pki = Pki::new();
    let connect = zk().connect_string();
    let base = unique_path("tls-bad");
    let other = Ca::new("another CA");
    let (_, foreign_key) = other.issue(&["127.0.0.1"]);
    std::fs::write(pki.dir.path().join("foreign.key"), foreign_key).unwrap();
    let (cert, key) = (pki.file("server.pem"), pki.file("server.key"));
    let (missing, garbage, foreign) = (
        pki.file("missing.pem"),
        pki.file("garbage.pem"),
        pki.file("foreign.key"),
    );
    std::fs::write(
        pki.dir.path().join("encrypted.key"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let encrypted = pki.file("encrypted.key");
    let garbage_named = format!("(--tls-key) {garbage} is not usable PEM");
    let (expired_cert, expired_key) = other.issue_expired(&["127.0.0.1"]);
    std::fs::write(pki.dir.path().join("expired.pem"), expired_cert).unwrap();
    std::fs::write(pki.dir.path().join("expired.key"), expired_key).unwrap();
    let (expired, expired_key) = (pki.file("expired.pem"), pki.file("expired.key"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // It registered, and every consumer then failed naming the expiry.
        (
            vec!["--tls-cert", &expired, "--tls-key", &expired_key],
            "expired on",
        ),
        (
            vec!["--tls-cert", &missing, "--tls-key", &key],
            "cannot read the certificate (--tls-cert)",
        ),
        (
            vec!["--tls-cert", &garbage, "--tls-key", &key],
            "is not usable PEM",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &garbage],
            "private key (--tls-key)",
        ),
        // The file is named (it said "PEM bytes").
        (
            vec!["--tls-cert", &cert, "--tls-key", &garbage],
            &garbage_named,
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &encrypted],
            "the key is encrypted",
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &foreign],
            "does not match",
        ),
        (vec!["--tls-cert", &cert], "--tls-cert needs --tls-key"),
        (vec!["--tls-key", &key], "--tls-key needs --tls-cert"),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &garbage,
            ],
            "client CA (--tls-client-ca)",
        ),
    ];
    for (flags, expected) in &cases {
        // The zoorpc-provider program and `zoorpc provider` alike.
        let mut program = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"));
        program
            .args(["--zk", &connect, "--base-path", &base])
            .args(flags);
        let mut subcommand = Command::new(ZOORPC);
        subcommand
            .args(["provider", "--zk", &connect, "--base-path", &base])
            .args(flags);
        for cmd in [program, subcommand] {
            let what = format!("{cmd:?}");
            let (code, out, err) = run_command(cmd, Duration::from_secs(30));
            assert_eq!(code, Some(2), "{what}: {out}\n{err}");
            assert!(!out.contains("registered"), "{what}: {out}");
            let first = err.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("error: ") && first.contains(expected),
                "{what}: {err}"
            );
        }
    }
    let consumer_cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--tls-ca", &missing],
            "cannot read the CA certificate (--tls-ca)",
        ),
        (
            vec!["--tls-ca", &garbage],
            "no \"-----BEGIN CERTIFICATE-----\" block",
        ),
        (vec!["--tls-client-cert", &cert], "need --tls-ca"),
        (
            vec!["--tls-ca", &cert, "--tls-client-cert", &cert],
            "--tls-client-cert needs --tls-client-key",
        ),
        (
            vec![
                "--tls-ca",
                &cert,
                "--tls-client-cert",
                &cert,
                "--tls-client-key",
                &foreign,
            ],
            "does not match",
        ),
    ];
    for (flags, expected) in &consumer_cases {
        let mut args = vec![
            "call",
            "--zk",
            connect.as_str(),
            "--base-path",
            base.as_str(),
        ];
        args.extend(flags.iter().copied());
        args.push("x");
        let (code, out, err) = zoorpc(&args);
        assert_eq!(code, Some(2), "{args:?}: {out}\n{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{args:?}: {err}"
        );
    }
    let raw = tokio::runtime::Runtime::new().unwrap();
    let children = raw.block_on(async {
        let client = raw_client(&connect).await;
        client.list_children(&base).await
    });
    assert!(
        matches!(&children, Err(zookeeper_client::Error::NoNode))
            || matches!(&children, Ok(c) if c.is_empty()),
        "{children:?}"
    );
}
