//! What error lines say, against a real ZooKeeper: a library's name the setting to change (a
//! library user has no flags), a program's name its own flags (a `zoorpc` user has no
//! `cargo run --example`); a NoAuth line names the node whose ACL refused, and says what that
//! ACL refused (a create under a parent, a read, a change).

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{raw_client, run_command, zk};
use zookeeper_client as zkc;
use zoorpc::registry::{ProviderUrl, Registration, Session, SessionConfig, ZkCredential};
use zoorpc_testkit::unique_path;

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");

/// An owner-only base path (anyone reads, only `svc` changes) under an open parent.
async fn owner_only_base() -> String {
    let open = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    let raw = raw_client(&zk().connect_string()).await;
    match raw.create("/zoorpc-test", b"", &open).await {
        Ok(_) | Err(zkc::Error::NodeExists) => {}
        Err(e) => panic!("/zoorpc-test: {e}"),
    }
    let owner = Session::connect(
        SessionConfig::new(zk().connect_string())
            .credential(Some(ZkCredential::parse("svc:pw").expect("credential"))),
    )
    .await
    .expect("owner session");
    let base = unique_path("messages-secure");
    let url = ProviderUrl::http("127.0.0.1", 4242).expect("url");
    // The owner's registration creates the base path with the owner-only ACL.
    let registration = Registration::register(&owner, &base, &url)
        .await
        .expect("owner registers");
    drop(registration);
    base
}

/// A library's NoAuth on a create names the parent whose ACL refused it (the node itself does
/// not exist), also several levels down, and the setting to give (`zk_auth`), not a flag.
#[test]
fn a_refused_create_names_the_parent_whose_acl_refused_and_the_setting() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let base = owner_only_base().await;
        let plain = Session::connect_to(&zk().connect_string())
            .await
            .expect("session");
        let url = ProviderUrl::http("127.0.0.1", 4243).expect("url");
        let text = Registration::register(&plain, &base, &url)
            .await
            .expect_err("no credential")
            .to_string();
        assert!(
            text.contains(&format!(
                "not authorized (NoAuth) to create children of {base},"
            )),
            "{text}"
        );
        assert!(text.contains("`zk_auth`"), "{text}");
        assert!(!text.contains("--zk-auth-file"), "{text}");
        // Two levels below: the create refused is of the first missing node, under `base`.
        let deeper = format!("{base}/deeper/more");
        let text = Registration::register(&plain, &deeper, &url)
            .await
            .expect_err("no credential")
            .to_string();
        assert!(
            text.starts_with(&format!("ZooKeeper refused the create of {base}/deeper:")),
            "{text}"
        );
        assert!(text.contains(&format!("children of {base},")), "{text}");
    });
}

/// A refused read (`zoorpc master` on a node only its creator may read) says so, not that
/// only its creator may change it; a program names its flag.
#[test]
fn a_refused_read_says_read_and_programs_name_their_flags() {
    let connect = zk().connect_string();
    let secret = format!("{}/Hidden:1.0.0", unique_path("messages-read"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let raw = raw_client(&connect).await;
        let open = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        let parent = secret.rsplit_once('/').expect("parent").0;
        raw.mkdir(parent, &open).await.expect("parent");
        let owner = zkc::Client::connector()
            .with_auth("digest", b"svc:pw")
            .connect(&connect)
            .await
            .expect("owner");
        let private = zkc::CreateMode::Persistent.with_acls(zkc::Acls::creator_all());
        owner
            .create(&secret, b"127.0.0.1:1", &private)
            .await
            .expect("private node");
    });
    let mut cmd = Command::new(ZOORPC);
    cmd.args(["master", &secret, "--zk", &connect])
        .env_remove("ZOORPC_ZK_AUTH_FILE");
    let (code, _, stderr) = run_command(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        line.contains(&format!(
            "refused the read of {secret}: not authorized (NoAuth) to read it"
        )),
        "{line}"
    );
    assert!(!line.contains("change it"), "{line}");
    assert!(line.contains("--zk-auth-file"), "{line}");
    assert!(!line.contains("`zk_auth`"), "{line}");
}

/// A `zoorpc` user is pointed at `zoorpc` commands, never at `cargo run --example`; a library
/// user at the API.
#[test]
fn no_provider_points_a_program_user_at_a_program_and_a_library_user_at_the_api() {
    let connect = zk().connect_string();
    let base = unique_path("messages-empty");
    let mut cmd = Command::new(ZOORPC);
    cmd.args(["call", "x", "--zk", &connect, "--base-path", &base]);
    let (code, stdout, stderr) = run_command(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    let err = stdout
        .lines()
        .find(|l| l.starts_with("err "))
        .unwrap_or_else(|| panic!("no err line: {stdout}"));
    assert!(
        err.contains("start a provider with that base path (e.g. `zoorpc provider --zk HOST:PORT --base-path PATH`)"),
        "{err}"
    );
    assert!(!err.contains("cargo run"), "{err}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let text = rt.block_on(async {
        let consumer = zoorpc::consumer::Consumer::connect(&connect, &base)
            .await
            .expect("consumer");
        consumer
            .say_hello("x")
            .await
            .expect_err("no provider")
            .to_string()
    });
    assert!(text.contains("(`Provider::serve`)"), "{text}");
    assert!(
        !text.contains("cargo run") && !text.contains("--"),
        "{text}"
    );
}

/// A program's log lines name its flags too: `zoorpc proxy` without `--tls-ca` over a list
/// holding an `https://` provider warns naming `--tls-ca`, not the library's setting.
#[test]
fn a_programs_log_lines_name_its_flags() {
    let connect = zk().connect_string();
    let base = unique_path("messages-log");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let raw = raw_client(&connect).await;
        let open = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        raw.mkdir(&base, &open).await.expect("base path");
        raw.create(
            &format!("{base}/provider0000000001"),
            b"https://127.0.0.1:1",
            &open,
        )
        .await
        .expect("an https provider's node");
    });
    let logs = tempfile::tempdir().expect("temp dir");
    let log = logs.path().join("proxy");
    let mut cmd = Command::new(ZOORPC);
    cmd.args(["proxy", "--zk", &connect, "--listen", "127.0.0.1:0"])
        .args(["--base-path", &base])
        .env_remove("RUST_LOG")
        .stderr(std::fs::File::create(&log).expect("log file"));
    let mut proxy = zoorpc_testkit::ChildProcess::spawn("proxy", cmd).expect("proxy");
    proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .expect("proxy listens");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("no TLS configured (--tls-ca)"), "{text}");
    assert!(!text.contains("ConsumerConfig::tls"), "{text}");
}
