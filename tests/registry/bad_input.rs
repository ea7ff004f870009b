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
