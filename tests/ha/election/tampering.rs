//! A tampered companion is repaired under a new epoch.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_companion_is_repaired_under_a_new_epoch_and_fenced_writes_work_again() {
    let path = unique_path("tampered");
    let marker = companion_path(&path);
    let record = format!("{path}.jobs/manual");
    let connect = zk().connect_string();
    let a = Contender::join(&connect, &path, &address(0)).await;
    let mut epoch = a.wait_master(SETTLE).await;
    let b = Contender::join(&connect, &path, &address(1)).await;
    b.wait_standby_of(a.address(), SETTLE).await;
    let mut b_changes = b.election.changes();
    let raw = raw_client(&connect).await;

    // Deleted; recreated by hand (one transaction); set by hand.
    for tamper in ["delete", "recreate", "set"] {
        let old_fence = a.election.fence().expect("a is master");
        match tamper {
            "delete" => raw.delete(&marker, None).await.unwrap(),
            "recreate" => {
                let mut writer = raw.new_multi_writer();
                writer.add_delete(&marker, None).unwrap();
                writer
                    .add_create(
                        &marker,
                        b"",
                        &zookeeper_client::CreateMode::Persistent
                            .with_acls(zookeeper_client::Acls::anyone_all()),
                    )
                    .unwrap();
                writer.commit().await.unwrap();
            }
            _ => {
                raw.set_data(&marker, b"", None).await.unwrap();
            }
        }
        // A repairs the companion and is master under a new, larger epoch: its mzxid.
        let repaired = match a
            .election
            .wait_for(SETTLE, |r| r.epoch() > Some(epoch))
            .await
        {
            Some(Role::Master { epoch }) => epoch,
            other => panic!("{tamper}: a did not repair the companion: {other:?}"),
        };
        let (_, stat) = raw.get_data(&marker).await.unwrap();
        assert_eq!(stat.mzxid, repaired, "{tamper}");
        // The new fence writes; the old one is refused.
        let fence = a.election.fence().unwrap();
        fence
            .write(&a.session, &record, tamper.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{tamper}: the repaired master's write failed: {e}"));
        let err = old_fence
            .write(&a.session, &record, b"stale")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Fenced { .. }), "{tamper}: {err}");
        epoch = repaired;
    }
    // The node is still A's, and B never took over.
    let (data, _) = raw.get_data(&path).await.unwrap();
    assert_eq!(data, a.address().as_bytes());
    while let Some(change) = b_changes.try_next() {
        assert!(!change.role.is_master(), "b became master: {change:?}");
    }
}
