//! The processes under test: three providers and two election contenders, each a real process
//! running one of the project's programs (this example's own executable, re-run with
//! `ZOORPC_CHAOS_RUN=provider` or `master-job`, runs `zoorpc::apps::provider::main` or
//! `zoorpc::apps::master_job::main`: the code of `zoorpc-provider` and `zoorpc-master-job`).
//! Each talks to the ensemble through proxies of its own (one per member), so it can be cut off
//! from ZooKeeper while the rest of the world still reaches it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use zoorpc_testkit::{ChildProcess, ZkProxy};

/// The environment variable that turns this executable into one of the programs.
pub const RUN_ENV: &str = "ZOORPC_CHAOS_RUN";

/// One proxy per ensemble member in front of one process: cutting them all partitions it.
pub struct Proxies {
    proxies: Vec<ZkProxy>,
    cut: bool,
}

impl Proxies {
    /// A proxy for each member address.
    pub async fn start(members: &[SocketAddr]) -> Result<Proxies, String> {
        let mut proxies = Vec::with_capacity(members.len());
        for member in members {
            proxies.push(
                ZkProxy::start(*member)
                    .await
                    .map_err(|e| format!("cannot start a proxy in front of {member}: {e}"))?,
            );
        }
        Ok(Proxies {
            proxies,
            cut: false,
        })
    }

    /// The connect string through the proxies.
    pub fn connect_string(&self) -> String {
        self.proxies
            .iter()
            .map(|p| p.addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Drops every packet to and from ZooKeeper, on every member.
    pub fn cut(&mut self) {
        self.proxies.iter().for_each(ZkProxy::cut);
        self.cut = true;
    }

    /// Lets packets through again.
    pub fn heal(&mut self) {
        self.proxies.iter().for_each(ZkProxy::heal);
        self.cut = false;
    }

    /// Whether the process is cut off now.
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

/// What the programs share: where the executable is and the session timeout.
#[derive(Clone)]
pub struct Programs {
    /// This executable, re-run as each program.
    pub exe: std::path::PathBuf,
    /// The session timeout the programs ask for.
    pub session_timeout: Duration,
}

impl Programs {
    /// This executable re-run as `program`.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.env(RUN_ENV, program);
        // The programs warn at every lost connection: a chaos run would drown its own lines.
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "error");
        }
        cmd
    }
}

/// Waits for each started process of `slots` ((name, process) pairs) to print a line starting
/// with `line`; the error names the first that did not and `what` it failed to do.
pub fn wait_for_each<'a>(
    slots: impl IntoIterator<Item = (&'a String, &'a mut Option<ChildProcess>)>,
    line: &str,
    what: &str,
) -> Result<(), String> {
    for (name, process) in slots {
        if let Some(process) = process.as_mut() {
            tokio::task::block_in_place(|| process.wait_for_line(line, crate::START_TIMEOUT))
                .map_err(|e| format!("{name} {what}: {e}"))?;
        }
    }
    Ok(())
}

/// A provider slot: a fixed port (a restarted provider comes back at the same URL), its proxies
/// and its current process, if any.
pub struct ProviderSlot {
    /// `provider-<i>`, in the printed lines.
    pub name: String,
    /// Its port, kept across restarts.
    pub port: u16,
    /// The URL it registers.
    pub url: String,
    /// Its way to ZooKeeper.
    pub proxies: Proxies,
    /// The running process (`None` while killed).
    pub process: Option<ChildProcess>,
    /// Stopped by SIGSTOP now.
    pub paused: bool,
}

impl ProviderSlot {
    /// A slot on a free loopback port; not started.
    pub async fn new(index: usize, members: &[SocketAddr]) -> Result<ProviderSlot, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
        Ok(ProviderSlot {
            name: format!("provider-{index}"),
            port,
            url: format!("http://127.0.0.1:{port}"),
            proxies: Proxies::start(members).await?,
            process: None,
            paused: false,
        })
    }

    /// Starts the provider program (does not wait for it to register).
    pub fn start(&mut self, programs: &Programs, base: &str) -> Result<(), String> {
        let mut cmd = programs.command("provider");
        cmd.args(["--zk", &self.proxies.connect_string(), "--base-path", base])
            .args(["--port", &self.port.to_string()])
            .args([
                "--session-timeout-ms",
                &programs.session_timeout.as_millis().to_string(),
            ]);
        let process = ChildProcess::spawn(self.name.clone(), cmd).map_err(|e| e.to_string())?;
        self.process = Some(process);
        self.paused = false;
        Ok(())
    }

    /// Whether the process runs, is not paused and reaches ZooKeeper: one that must be
    /// registered.
    pub fn healthy(&mut self) -> bool {
        let running = self.process.as_mut().is_some_and(|p| {
            p.drain_lines();
            !p.has_exited()
        });
        running && !self.paused && !self.proxies.is_cut()
    }
}

/// An election contender running the master-job program, its proxies, and every line it
/// printed (role changes and job runs, stamped with the wall clock).
pub struct Contender {
    /// `contender-<i>`, also its address in the master node.
    pub name: String,
    /// Its way to ZooKeeper.
    pub proxies: Proxies,
    /// The running process.
    pub process: ChildProcess,
    /// Master intervals of earlier processes of this contender (one that exited on its own and
    /// was started again).
    pub past: Vec<crate::tally::MasterInterval>,
    /// Job-run lines of earlier processes.
    pub past_runs: Vec<String>,
    index: usize,
    path: String,
    interval: Duration,
}

impl Contender {
    /// Starts the master-job program contending at `path`, running job `report` every
    /// `interval`.
    pub async fn start(
        index: usize,
        members: &[SocketAddr],
        programs: &Programs,
        path: &str,
        interval: Duration,
    ) -> Result<Contender, String> {
        let name = format!("contender-{index}");
        let proxies = Proxies::start(members).await?;
        let process = Contender::spawn(&name, &proxies, programs, path, interval)?;
        Ok(Contender {
            name,
            proxies,
            process,
            past: Vec::new(),
            past_runs: Vec::new(),
            index,
            path: path.to_owned(),
            interval,
        })
    }

    fn spawn(
        name: &str,
        proxies: &Proxies,
        programs: &Programs,
        path: &str,
        interval: Duration,
    ) -> Result<ChildProcess, String> {
        let mut cmd = programs.command("master-job");
        cmd.args(["--zk", &proxies.connect_string(), "--path", path])
            .args(["--interval-ms", &interval.as_millis().to_string()])
            .args(["--address", name, "--timestamps", "true"])
            .args([
                "--session-timeout-ms",
                &programs.session_timeout.as_millis().to_string(),
            ]);
        ChildProcess::spawn(name, cmd).map_err(|e| e.to_string())
    }

    /// Starts the program again after its process ended, keeping what the old one printed.
    pub fn restart(&mut self, programs: &Programs) -> Result<(), String> {
        let ended = crate::tally::now_ms();
        let lines = self.process.drain_lines().to_vec();
        self.past
            .extend(crate::tally::master_intervals(self.index, &lines, ended));
        self.past_runs
            .extend(lines.into_iter().filter(|l| l.starts_with("run ")));
        self.process = Contender::spawn(
            &self.name,
            &self.proxies,
            programs,
            &self.path,
            self.interval,
        )?;
        Ok(())
    }

    /// Whether the last role it printed is master.
    pub fn is_master(&mut self) -> bool {
        self.process
            .drain_lines()
            .iter()
            .rev()
            .find(|l| l.starts_with("role "))
            .is_some_and(|l| l.starts_with("role master "))
    }
}
