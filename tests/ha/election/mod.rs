//! Master election end to end, contenders in process (each with its own ZooKeeper session),
//! against a real ZooKeeper.

use crate::common;

mod designation;
mod faults;
mod operator;
mod roles;
mod tampering;
mod vacancy;

use std::time::{Duration, Instant};

use common::{raw_client, zk};
use zoorpc::registry::election::companion_path;
use zoorpc::registry::{
    ElectionOptions, Error, MasterElection, MasterWatch, Role, Session, SessionConfig, designate,
};
use zoorpc_testkit::{Request, ZkProxy, ZkServer, expire_session, unique_path};

const SESSION_TIMEOUT: Duration = Duration::from_millis(1000);
const SETTLE: Duration = Duration::from_secs(3);

async fn session(connect: &str, timeout: Duration) -> Session {
    Session::connect(SessionConfig::new(connect).session_timeout(timeout))
        .await
        .expect("session")
}

struct Contender {
    session: Session,
    election: MasterElection,
}

impl Contender {
    async fn join(connect: &str, path: &str, address: &str) -> Contender {
        Contender::join_with(connect, path, address, ElectionOptions::default()).await
    }

    async fn join_with(
        connect: &str,
        path: &str,
        address: &str,
        options: ElectionOptions,
    ) -> Contender {
        let session = session(connect, SESSION_TIMEOUT).await;
        let election = MasterElection::join_with(&session, path, address, options)
            .await
            .expect("join");
        Contender { session, election }
    }

    fn address(&self) -> &str {
        self.election.address()
    }

    async fn wait_master(&self, timeout: Duration) -> i64 {
        match self.election.wait_for(timeout, Role::is_master).await {
            Some(Role::Master { epoch }) => epoch,
            other => panic!(
                "{} is not master within {timeout:?}: {other:?} (now {})",
                self.address(),
                self.election.role()
            ),
        }
    }

    /// Waits until this contender is master under an epoch after `previous`.
    async fn wait_master_again(&self, previous: i64, timeout: Duration) -> i64 {
        let again = |r: &Role| matches!(r, Role::Master { epoch } if *epoch > previous);
        match self.election.wait_for(timeout, again).await {
            Some(Role::Master { epoch }) => epoch,
            other => panic!(
                "{} is not master again within {timeout:?}: {other:?} (now {})",
                self.address(),
                self.election.role()
            ),
        }
    }

    async fn wait_standby_of(&self, master: &str, timeout: Duration) {
        let expected = Role::Standby {
            master: master.to_owned(),
        };
        assert!(
            self.election
                .wait_for(timeout, |r| *r == expected)
                .await
                .is_some(),
            "{} does not stand by for {master} within {timeout:?}; it is {}",
            self.address(),
            self.election.role()
        );
    }
}

fn address(i: usize) -> String {
    format!("127.0.0.1:{}", 41000 + i)
}

/// Waits until one of `contenders` reports master with an epoch above `epoch`; returns it.
async fn wait_any_master_after(contenders: &[Contender], epoch: i64) -> Option<i64> {
    let mut roles: Vec<_> = contenders.iter().map(|c| c.election.subscribe()).collect();
    tokio::time::timeout(SETTLE, async {
        loop {
            for r in roles.iter_mut() {
                if let Some(e) = r.borrow_and_update().epoch()
                    && e > epoch
                {
                    return e;
                }
            }
            let [a, b, c] = &mut roles[..] else {
                panic!("three contenders expected");
            };
            tokio::select! {
                _ = a.changed() => {}
                _ = b.changed() => {}
                _ = c.changed() => {}
            }
        }
    })
    .await
    .ok()
}

/// The intervals during which a contender was master, from its role changes (an interval still
/// open at the end is closed at `end`).
fn master_intervals(
    changes: &[zoorpc::registry::RoleChange],
    end: Instant,
) -> Vec<(Instant, Instant)> {
    let mut intervals = Vec::new();
    let mut since = None;
    for change in changes {
        match (change.role.is_master(), since) {
            (true, None) => since = Some(change.at),
            (false, Some(start)) => {
                intervals.push((start, change.at));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(start) = since {
        intervals.push((start, end));
    }
    intervals
}

/// The master's session timeout: long enough that waiting it out once more is plain to see.
const MASTER_TIMEOUT: Duration = Duration::from_secs(6);

/// A master talking to ZooKeeper through its own proxy (cut it to stall the master's link).
struct CutOffMaster {
    proxy: ZkProxy,
    session: Session,
    election: MasterElection,
}

impl CutOffMaster {
    async fn start(connect: &str, path: &str) -> CutOffMaster {
        let proxy = ZkProxy::start(connect.parse().expect("a socket address"))
            .await
            .expect("a ZooKeeper proxy");
        let session = session(&proxy.addr().to_string(), MASTER_TIMEOUT).await;
        let election = MasterElection::join(&session, path, &address(0))
            .await
            .expect("join");
        assert!(
            election.wait_for(SETTLE, Role::is_master).await.is_some(),
            "the first contender is not master: {}",
            election.role()
        );
        CutOffMaster {
            proxy,
            session,
            election,
        }
    }
}

/// Asserts that `election` becomes master, but not before [`MASTER_TIMEOUT`] after `deleted`
/// (when a hand deleted or forged what proves the stalled master gone: its lease may still run
/// until then).
async fn assert_taken_only_after_the_timeout(election: &MasterElection, deleted: Instant) {
    let role = election.wait_for(MASTER_TIMEOUT * 3, Role::is_master).await;
    let after = deleted.elapsed();
    assert!(
        role.is_some(),
        "{} is not master {after:?} after the deletes: {}",
        election.address(),
        election.role()
    );
    assert!(
        after >= MASTER_TIMEOUT,
        "{} took over {after:?} after a hand's deletes, before the stalled master's session \
         timeout ({MASTER_TIMEOUT:?}): the master may still have served",
        election.address()
    );
}
