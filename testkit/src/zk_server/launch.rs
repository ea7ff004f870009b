//! Starting the server's JVM (Debian's package, or `ZOOKEEPER_CLASSPATH`) and waiting until
//! it serves: `ruok` answered `imok` and `srvr` names its mode.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ZkServer;
use crate::HarnessError;
use crate::four_letter::{four_letter_word, ruok, serving};
use crate::process::spawn_tied;

const DEFAULT_CLASSPATH: &str = "/usr/share/java/zookeeper.jar";
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);
pub(super) const STANDALONE: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
pub(crate) const QUORUM_PEER: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

impl ZkServer {
    pub(super) fn launch(&mut self) -> Result<(), HarnessError> {
        self.spawn()?;
        self.wait_ready(Instant::now() + READY_TIMEOUT)
    }

    /// Starts the process without waiting for it to serve.
    pub(crate) fn spawn(&mut self) -> Result<(), HarnessError> {
        let java = std::env::var("JAVA").unwrap_or_else(|_| "java".into());
        let log = self.dir.join("server.log");
        let mut cmd = match &self.place.netns {
            Some(host) => host.command(&java),
            None => Command::new(&java),
        };
        cmd.arg("-Xms32m")
            .arg("-Xmx256m")
            .arg("-XX:+UseSerialGC")
            .arg("-XX:TieredStopAtLevel=1")
            .arg("-Dzookeeper.forceSync=no")
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-cp")
            .arg(classpath())
            .arg(self.main_class)
            .arg(self.dir.join("zoo.cfg"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log)?))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&log)?,
            ));
        let child = spawn_tied(cmd).map_err(|source| HarnessError::Spawn {
            what: format!("{java} (ZooKeeper)"),
            source,
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the server answers `ruok` and serves (`srvr` names its mode); kills it and
    /// returns the tail of its log if it exits or the deadline passes first.
    pub(crate) fn wait_ready(&mut self, deadline: Instant) -> Result<(), HarnessError> {
        loop {
            if ruok(&self.place, self.port) && serving(&self.place, self.port) {
                return Ok(());
            }
            let exited = matches!(
                self.child.as_mut().map(|c| c.try_wait()),
                Some(Ok(Some(_))) | None
            );
            if exited || Instant::now() >= deadline {
                self.kill();
                let output =
                    std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(HarnessError::NotReady {
                    port: self.port,
                    timeout: READY_TIMEOUT,
                    output: output
                        .chars()
                        .rev()
                        .take(2000)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What `srvr` says of the server's role: `standalone`, `leader` or `follower`; `None` when
    /// it does not serve.
    pub fn mode(&self) -> Option<String> {
        let reply = four_letter_word(&self.place, self.port, b"srvr")?;
        reply
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_owned())
    }
}

fn classpath() -> String {
    std::env::var("ZOOKEEPER_CLASSPATH").unwrap_or_else(|_| DEFAULT_CLASSPATH.into())
}

pub(crate) fn check_installed() -> Result<(), HarnessError> {
    let cp = classpath();
    let first = cp.split(':').next().unwrap_or_default();
    if std::env::var_os("ZOOKEEPER_CLASSPATH").is_none() && !Path::new(first).exists() {
        return Err(HarnessError::NotInstalled(first.to_owned()));
    }
    Ok(())
}
