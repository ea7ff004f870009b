//! Seed 004's own contender in the same election as zoorpc's. It follows only the seed's text
//! (`runForMaster` / `masterExists` / `checkMaster`): it creates the `EPHEMERAL` master node
//! holding its `host:port`, and whoever's address is in the node's data is the master. It knows
//! nothing of `<path>.epoch` or of participant nodes, and never deletes its node when the data
//! names someone else. Here it runs in a process of its own (this test binary, run again with
//! [`SEED_ENV`] set), so it can be killed with `SIGKILL`.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{runtime, zk};
use zookeeper_client as zkc;
use zoorpc::registry::{MasterElection, Role, Session, SessionConfig, designate, inspect};
use zoorpc_testkit::{ChildProcess, unique_path};

/// Set (to `connect|path|address`) in the process that runs the seed's contender.
const SEED_ENV: &str = "ZOORPC_TEST_SEED_CONTENDER";
/// The seed contender's address: a label (nothing listens there), as in the seed's text.
const SEED_ADDRESS: &str = "10.255.0.4:8080";
const SESSION_TIMEOUT: Duration = Duration::from_millis(1000);

/// Seed 004's contender, as its text describes it, until the process is killed.
async fn seed_contender(connect: &str, path: &str, address: &str) {
    let client = zkc::Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .connect(connect)
        .await
        .unwrap_or_else(|e| panic!("the seed's contender cannot connect to {connect}: {e}"));
    let mut said = String::new();
    loop {
        // runForMaster: create the EPHEMERAL node holding our address.
        let ephemeral = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::anyone_all());
        match client.create(path, address.as_bytes(), &ephemeral).await {
            Ok(_) | Err(zkc::Error::NodeExists) | Err(zkc::Error::ConnectionLoss) => {}
            Err(e) => panic!("runForMaster: {e}"),
        }
        // checkMaster, masterExists: the master is whoever's address is in the data; watch the
        // node, and run again when it is deleted.
        match client.get_and_watch_data(path).await {
            Ok((data, _, watcher)) => {
                let role = if data == address.as_bytes() {
                    "master".to_owned()
                } else {
                    format!("standby {}", String::from_utf8_lossy(&data))
                };
                if role != said {
                    println!("seed role {role}");
                    said = role;
                }
                watcher.changed().await;
            }
            Err(zkc::Error::NoNode) => {}
            Err(e) => panic!("checkMaster: {e}"),
        }
    }
}

/// The body of the seed contender's process; does nothing in a normal test run.
#[test]
fn seed_contender_process() {
    let Ok(spec) = std::env::var(SEED_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, '|');
    let (Some(connect), Some(path), Some(address)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("{SEED_ENV} must be connect|path|address, not {spec:?}");
    };
    runtime().block_on(seed_contender(connect, path, address));
}

fn spawn_seed(connect: &str, path: &str) -> ChildProcess {
    let exe = std::env::current_exe().expect("this test binary");
    let mut cmd = Command::new(exe);
    // The test's name as the harness knows it: its module path without the crate's name.
    let name = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::seed_contender_process"),
        None => "seed_contender_process".to_owned(),
    };
    cmd.args([name.as_str(), "--exact", "--nocapture"])
        .env(SEED_ENV, format!("{connect}|{path}|{SEED_ADDRESS}"));
    ChildProcess::spawn("seed-contender", cmd).expect("spawn the seed's contender")
}

async fn wait_role(election: &MasterElection, what: &str, wanted: impl FnMut(&Role) -> bool) {
    let timeout = Duration::from_secs(10);
    assert!(
        election.wait_for(timeout, wanted).await.is_some(),
        "{} is not {what} within {timeout:?}; it is {}",
        election.address(),
        election.role()
    );
}

/// Waits until the master node exists holding `address` and owned by a session other than
/// `not_owner` (the seed's contender says "master" as soon as the data names it, before our
/// holder has handed the node over and the seed's contender has created its own).
async fn wait_node_taken(path: &str, address: &str, not_owner: i64) {
    let raw = common::raw_client(&zk().connect_string()).await;
    let taken = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (stat, watcher) = raw
                .check_and_watch_stat(path)
                .await
                .unwrap_or_else(|e| panic!("watch {path}: {e}"));
            if let Some(stat) = stat
                && stat.ephemeral_owner != not_owner
                && let Ok((data, now)) = raw.get_data(path).await
                && data == address.as_bytes()
                && now.ephemeral_owner == stat.ephemeral_owner
            {
                return;
            }
            watcher.changed().await;
        }
    })
    .await;
    assert!(
        taken.is_ok(),
        "{path} was not taken by {address} within 10 s"
    );
}

#[test]
fn designation_works_both_ways_with_the_seeds_contender_and_its_crash_is_taken_over() {
    let path = unique_path("seed-004");
    let connect = zk().connect_string();
    let rt = runtime();
    let ours_address = "127.0.0.1:41901";
    let (session, ours) = rt.block_on(async {
        let config = SessionConfig::new(&connect).session_timeout(SESSION_TIMEOUT);
        let session = Session::connect(config).await.expect("a session");
        let ours = MasterElection::join(&session, &path, ours_address)
            .await
            .expect("join");
        wait_role(&ours, "master", Role::is_master).await;
        (session, ours)
    });
    let first = ours.role().epoch().expect("an epoch");
    let mut seed = spawn_seed(&connect, &path);
    seed.wait_for_line(
        &format!("seed role standby {ours_address}"),
        Duration::from_secs(20),
    )
    .expect("the seed's contender stands by for ours");

    // To the seed's contender (as `zkCli.sh set <path> 10.255.0.4:8080`): ours hands over.
    rt.block_on(designate(&session, &path, SEED_ADDRESS))
        .expect("designate the seed's contender");
    seed.wait_for_line("seed role master", Duration::from_secs(10))
        .expect("the seed's contender becomes master");
    rt.block_on(wait_node_taken(&path, SEED_ADDRESS, session.session_id()));
    let seed_standby = Role::Standby {
        master: SEED_ADDRESS.into(),
    };
    rt.block_on(wait_role(&ours, "standby", |r| *r == seed_standby));

    // Back to ours while the seed's contender holds the node (it never deletes it): ours takes
    // the node over under a new epoch, and the seed's contender stands by, by its own rule.
    rt.block_on(designate(&session, &path, ours_address))
        .expect("designate ours");
    rt.block_on(wait_role(&ours, "master again", |r| {
        r.epoch().is_some_and(|e| e > first)
    }));
    seed.wait_for_line(
        &format!("seed role standby {ours_address}"),
        Duration::from_secs(10),
    )
    .expect("the seed's contender stands by again");
    let shown = rt
        .block_on(inspect::master(&session, &path))
        .expect("read the master")
        .expect("a master");
    assert_eq!(shown.address.as_deref(), Ok(ours_address));
    assert!(
        shown.pending.is_none() && shown.designee.is_none(),
        "{shown:?}"
    );

    // The seed's contender master again; its address does not listen, which deposes nobody.
    rt.block_on(designate(&session, &path, SEED_ADDRESS))
        .expect("designate the seed's contender");
    seed.wait_for_line("seed role master", Duration::from_secs(10))
        .expect("the seed's contender becomes master again");
    rt.block_on(wait_node_taken(&path, SEED_ADDRESS, session.session_id()));
    rt.block_on(wait_role(&ours, "standby", |r| *r == seed_standby));
    // Ours never takes the node back (a moment disconnected under a loaded machine is no
    // taking over: what counts is that it is never master meanwhile).
    let kept = rt.block_on(ours.wait_for(SESSION_TIMEOUT * 3, Role::is_master));
    assert_eq!(
        kept, None,
        "ours left the seed's contender master: {kept:?}"
    );
    let shown = rt
        .block_on(inspect::master(&session, &path))
        .expect("read the master")
        .expect("a master");
    assert_eq!(shown.address.as_deref(), Ok(SEED_ADDRESS));
    assert_eq!(shown.holder, None, "{shown:?}");
    assert_eq!(shown.standbys, vec![ours_address.to_owned()]);

    // SIGKILL of the seed's contender while master: ours takes over once its session is gone.
    seed.signal(libc::SIGKILL)
        .expect("kill the seed's contender");
    rt.block_on(wait_role(&ours, "master after the crash", Role::is_master));
}
