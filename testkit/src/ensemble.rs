//! `ZkEnsemble`: a replicated ZooKeeper of N members (`QuorumPeerMain`), all on loopback ports
//! in one temp dir (or one member in each of a set of test hosts, [`ZkEnsemble::start_in`]), for
//! tests where ZooKeeper members die or are partitioned. Each member is a [`ZkServer`] that
//! can be stopped, killed and restarted on its own; the ensemble serves while a majority runs.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::zk_server::{
    QUORUM_PEER, READY_TIMEOUT, ZkServer, ZkServerConfig, check_installed, free_port, write_config,
};
use super::{HarnessError, retry_in_temp_dir};

/// Where a member runs: its address, its client, quorum and election ports, and the test host
/// it runs in (if any).
type Member = (Ipv4Addr, [u16; 3], Option<crate::netns::Host>);

/// A running ensemble. Every member is killed and the directory removed on drop.
///
/// ```no_run
/// use zoorpc_testkit::ZkEnsemble;
/// let mut ensemble = ZkEnsemble::start(3)?;
/// let connect = ensemble.connect_string(); // every member, for the code under test
/// if let Some(leader) = ensemble.leader() {
///     ensemble.member(leader).kill(); // the other two elect a leader and serve on
///     ensemble.member(leader).restart()?; // and it rejoins as a follower
/// }
/// # let _ = connect; Ok::<(), zoorpc_testkit::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct ZkEnsemble {
    members: Vec<ZkServer>,
    dir: PathBuf,
}

impl ZkEnsemble {
    /// Starts `size` members (3 or 5 make sense) with default settings and waits until every one
    /// serves as leader or follower.
    pub fn start(size: usize) -> Result<ZkEnsemble, HarnessError> {
        ZkEnsemble::start_with(size, ZkServerConfig::default())
    }

    /// Starts `size` members with `config`.
    pub fn start_with(size: usize, config: ZkServerConfig) -> Result<ZkEnsemble, HarnessError> {
        check_installed()?;
        let (members, dir) = retry_in_temp_dir("zoorpc-ensemble-", 3, |dir| {
            ZkEnsemble::launch(dir, size, &config)
        })?;
        Ok(ZkEnsemble { members, dir })
    }

    /// Starts one member in each of `hosts` ([`crate::netns`]), each listening on its host's
    /// address (client port 2181, quorum 2888, election 3888), and waits until every one serves.
    /// Cutting a host's links then partitions the ensemble for real.
    pub fn start_in(
        hosts: &[&crate::netns::Host],
        config: ZkServerConfig,
    ) -> Result<ZkEnsemble, HarnessError> {
        check_installed()?;
        let places: Vec<Member> = hosts
            .iter()
            .map(|h| (h.addr(), [2181, 2888, 3888], Some((*h).clone())))
            .collect();
        let (members, dir) = retry_in_temp_dir("zoorpc-ensemble-", 1, |dir| {
            ZkEnsemble::launch_at(dir, &places, &config)
        })?;
        Ok(ZkEnsemble { members, dir })
    }

    fn launch(
        dir: &Path,
        size: usize,
        config: &ZkServerConfig,
    ) -> Result<Vec<ZkServer>, HarnessError> {
        let mut places = Vec::with_capacity(size);
        for _ in 0..size {
            let ports = [free_port()?, free_port()?, free_port()?];
            places.push((Ipv4Addr::LOCALHOST, ports, None));
        }
        ZkEnsemble::launch_at(dir, &places, config)
    }

    /// Starts a member at each place and waits until every one serves.
    fn launch_at(
        dir: &Path,
        places: &[Member],
        config: &ZkServerConfig,
    ) -> Result<Vec<ZkServer>, HarnessError> {
        let servers: String = places
            .iter()
            .enumerate()
            .map(|(i, (ip, [_, quorum, election], _))| {
                format!("server.{}={ip}:{quorum}:{election}\n", i + 1)
            })
            .collect();
        let extra = format!("initLimit=20\nsyncLimit=10\n{servers}");
        let mut members = Vec::with_capacity(places.len());
        for (i, (ip, [client, _, _], host)) in places.iter().enumerate() {
            let member_dir = dir.join(format!("member-{}", i + 1));
            write_config(&member_dir, *ip, *client, config, &extra)?;
            std::fs::write(member_dir.join("data").join("myid"), format!("{}\n", i + 1))?;
            let mut member = ZkServer::new(*client, member_dir, QUORUM_PEER);
            if let Some(host) = host {
                member.place_in(host);
            }
            members.push(member);
        }
        // Members only serve once a quorum has formed: start all, then wait for each.
        for member in &mut members {
            member.spawn()?;
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for member in &mut members {
            member.wait_ready(deadline)?;
        }
        Ok(members)
    }

    /// `127.0.0.1:<port>,127.0.0.1:<port>,...` (each host's address for an ensemble in test
    /// hosts), every member.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(ZkServer::connect_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Member `index` (from 0), to stop, kill or restart.
    pub fn member(&mut self, index: usize) -> &mut ZkServer {
        &mut self.members[index]
    }

    /// The index of the member that is leader now, if one is.
    pub fn leader(&self) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.is_running() && m.mode().as_deref() == Some("leader"))
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        self.members.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
