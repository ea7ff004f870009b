//! Access control against a real ZooKeeper: with a digest credential, the
//! nodes zoorpc creates are readable by anyone and changeable only by that identity; a stranger
//! gets NoAuth, a reader needs no credential, the owner's deletion is repaired.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{eventually, eventually_blocking, raw_client, run_command, zk};
use zookeeper_client as zkc;
use zoorpc::consumer::{Consumer, ConsumerConfig};
use zoorpc::provider::ProviderConfig;
use zoorpc::registry::{
    Error, MasterElection, ProviderUrl, Registration, Session, SessionConfig, ZkCredential,
    companion_path,
};
use zoorpc_testkit::{ChildProcess, unique_path};

mod nodes;
mod programs;

const SECRET: &str = "s3cret-do-not-log";

/// A credential file `svc:<SECRET>` in a temp dir (kept alive by the returned guard).
fn auth_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zk-auth");
    std::fs::write(&path, format!("svc:{SECRET}\n")).unwrap();
    (dir, path)
}

fn credential() -> ZkCredential {
    ZkCredential::parse(&format!("svc:{SECRET}")).unwrap()
}

async fn owner_session() -> Session {
    Session::connect(
        SessionConfig::new(zk().connect_string())
            .session_timeout(Duration::from_millis(1500))
            .credential(Some(credential())),
    )
    .await
    .unwrap()
}

/// A raw client authenticated as the owner identity (an operator's zkCli with `addauth`).
async fn owner_raw_client() -> zkc::Client {
    zkc::Client::connector()
        .with_auth("digest", format!("svc:{SECRET}").as_bytes())
        .connect(&zk().connect_string())
        .await
        .unwrap()
}

/// Creates the tests' shared root `/zoorpc-test` open to all, as an operator pre-creates a
/// parent several identities share: created by an authenticated test it would take the owner's
/// ACL and lock the other tests of this binary out.
async fn open_test_root() {
    let raw = raw_client(&zk().connect_string()).await;
    let open = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    match raw.create("/zoorpc-test", b"", &open).await {
        Ok(_) | Err(zkc::Error::NodeExists) => {}
        Err(e) => panic!("cannot create /zoorpc-test: {e}"),
    }
}

fn assert_no_auth<T: std::fmt::Debug>(what: &str, result: Result<T, zkc::Error>) {
    assert_eq!(result.unwrap_err(), zkc::Error::NoAuth, "{what}");
}
