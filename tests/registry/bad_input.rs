//! Bad input against a real ZooKeeper: what ZooKeeper refuses in a znode path
//! is refused by `validate_path` first, with an error naming the path; what it accepts, we
//! accept. (The parsers' property tests are in `registry/tests/parsers.rs`.)

use crate::common;

use common::{raw_client, zk};
use zookeeper_client as zkc;
use zoorpc::registry::{Error, ProviderUrl, Registration, Session, validate_path};
use zoorpc_testkit::unique_path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_characters_zookeeper_refuses_are_refused_first_and_its_accepted_ones_accepted() {
    let base = unique_path("path-chars");
    let raw = raw_client(&zk().connect_string()).await;
    let open = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
    raw.mkdir(&base, &open).await.unwrap();
    let session = Session::connect_to(&zk().connect_string()).await.unwrap();
    let url = ProviderUrl::http("127.0.0.1", 4545).unwrap();

    let refused = [
        '\u{1}',
        '\u{1f}',
        '\u{7f}',
        '\u{9f}',
        '\u{e000}',
        '\u{f8ff}',
        '\u{fff0}',
        '\u{ffff}',
        '\u{10000}',
        '\u{1f600}',
    ];
    for c in refused {
        let path = format!("{base}/x{c}y");
        assert!(
            raw.create(&path, b"", &open).await.is_err(),
            "ZooKeeper took {path:?}"
        );
        let err = validate_path(&path).unwrap_err();
        assert!(err.to_string().contains(&format!("{path:?}")), "{err}");
        let err = Registration::register(&session, &path, &url)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
    }
    for c in ['\u{a0}', '\u{d7ff}', '\u{f900}', '\u{ffef}', 'é'] {
        let path = format!("{base}/x{c}y");
        assert!(validate_path(&path).is_ok(), "{path:?}");
        let registration = Registration::register(&session, &path, &url).await.unwrap();
        assert_eq!(raw.list_children(&path).await.unwrap().len(), 1, "{path:?}");
        registration.deregister().await.unwrap();
    }
}

/// A path naming one of an election's own nodes (`<path>.epoch`, `.participants`, `.jobs`,
/// `.floor`) is not an election path: joining, designating and watching it are refused with an
/// error saying why, before anything is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_election_path_naming_an_elections_own_node_is_refused_and_nothing_created() {
    use zoorpc::registry::{MasterElection, MasterWatch, designate};
    let root = unique_path("reserved-election");
    let session = Session::connect_to(&zk().connect_string()).await.unwrap();
    for suffix in [".epoch", ".participants", ".jobs", ".floor"] {
        let path = format!("{root}/Svc:1.0.0{suffix}");
        let joined = MasterElection::join(&session, &path, "127.0.0.1:5").await;
        let err = joined.map(|_| ()).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{path}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&path) && text.contains("election's own nodes"),
            "{text}"
        );
        let err = designate(&session, &path, "127.0.0.1:5").await.unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{path}: {err}");
        let err = MasterWatch::follow(&session, &path)
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{path}: {err}");
    }
    let raw = raw_client(&zk().connect_string()).await;
    assert!(
        raw.check_stat(&root).await.unwrap().is_none(),
        "{root} was created"
    );
}
