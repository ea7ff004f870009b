//! `zoorpc-ha-server` processes as the HA tests drive them: spawned on a free port, their
//! `role ...` lines read in order, and a prober calling each server's own address.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use zoorpc::proto::standby::is_standby_refusal;
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::ChildProcess;

/// The session timeout the servers ask for (ZooKeeper ticks are 200 ms).
pub const SESSION_TIMEOUT_MS: u64 = 1000;

/// A `zoorpc-ha-server` process, its advertised address and how far its lines were read.
pub struct HaServer {
    pub process: ChildProcess,
    pub address: String,
    /// How many of the lines read so far have been looked at.
    pub cursor: usize,
}

impl HaServer {
    pub fn spawn(connect: &str, path: &str, extra: &[&str]) -> HaServer {
        HaServer::spawn_with_timeout(connect, path, SESSION_TIMEOUT_MS, extra)
    }

    /// [`HaServer::spawn`] with a session timeout of `session_timeout_ms`.
    pub fn spawn_with_timeout(
        connect: &str,
        path: &str,
        session_timeout_ms: u64,
        extra: &[&str],
    ) -> HaServer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
        cmd.args(["--zk", connect, "--path", path, "--port", "0"]);
        let session_timeout_ms = session_timeout_ms.to_string();
        super::args_with_defaults(
            &mut cmd,
            &[("--session-timeout-ms", &session_timeout_ms)],
            extra,
        );
        HaServer::from_command(cmd)
    }

    /// [`HaServer::spawn`] with its log lines (stderr) among its lines.
    pub fn spawn_with_logs(connect: &str, path: &str) -> HaServer {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exec \"$0\" \"$@\" 2>&1"])
            .arg(env!("CARGO_BIN_EXE_zoorpc-ha-server"))
            .args(["--zk", connect, "--path", path, "--port", "0"])
            .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()]);
        HaServer::from_command(cmd)
    }

    fn from_command(cmd: Command) -> HaServer {
        let process = ChildProcess::spawn("ha-server", cmd).expect("spawn ha server");
        HaServer::listening(process, "127.0.0.1", Duration::from_secs(20))
    }

    /// `process`, a started `zoorpc-ha-server`, once it says it listens on `host` (within
    /// `timeout`).
    pub fn listening(process: ChildProcess, host: &str, timeout: Duration) -> HaServer {
        let mut server = HaServer {
            process,
            address: String::new(),
            cursor: 0,
        };
        let line = server
            .next_line("listening ", timeout)
            .unwrap_or_else(|| panic!("the HA server on {host} does not listen"));
        server.address = line["listening ".len()..].to_owned();
        assert!(server.address.starts_with(&format!("{host}:")), "{line}");
        server
    }

    /// The next line starting with `prefix` that has not been looked at yet, waiting for it at
    /// most `timeout`.
    pub fn next_line(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        super::next_line_after(&mut self.process, &mut self.cursor, prefix, timeout)
    }

    /// Waits for the next `role ...` line and returns what follows `role `.
    pub fn next_role(&mut self, timeout: Duration) -> String {
        match self.next_line("role ", timeout) {
            Some(line) => line["role ".len()..].to_owned(),
            None => panic!(
                "{} printed no role line within {timeout:?}; lines: {:?}",
                self.address,
                self.process.seen_lines()
            ),
        }
    }

    /// Waits for `role master epoch=<n>`; returns n.
    pub fn wait_master(&mut self, timeout: Duration) -> i64 {
        let role = self.next_role(timeout);
        parse_epoch(&role).unwrap_or_else(|| panic!("{} became {role:?}", self.address))
    }

    /// Waits for the next `role master epoch=<n>`, passing over other roles; returns n.
    pub fn next_master(&mut self, timeout: Duration) -> i64 {
        let deadline = Instant::now() + timeout;
        loop {
            let role = self.next_role(deadline.saturating_duration_since(Instant::now()));
            if let Some(epoch) = parse_epoch(&role) {
                return epoch;
            }
        }
    }

    /// Waits for `role standby master=<master>`; fails on a master line first.
    pub fn wait_standby_of(&mut self, master: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let role = self.next_role(deadline.saturating_duration_since(Instant::now()));
            if role == format!("standby master={master}") {
                return;
            }
            assert!(
                !role.starts_with("master"),
                "{} became {role} instead of standing by for {master}",
                self.address
            );
        }
    }

    /// Two servers of `path` with a session timeout of `session_timeout_ms`: the first the
    /// master, the second its standby.
    pub fn master_and_standby(
        connect: &str,
        path: &str,
        session_timeout_ms: u64,
    ) -> (HaServer, HaServer) {
        let mut master = HaServer::spawn_with_timeout(connect, path, session_timeout_ms, &[]);
        master.wait_master(Duration::from_secs(10));
        let mut standby = HaServer::spawn_with_timeout(connect, path, session_timeout_ms, &[]);
        standby.wait_standby_of(&master.address, Duration::from_secs(10));
        (master, standby)
    }

    /// How many lines have been looked at by [`HaServer::next_line`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Every line read so far, reading what is available now.
    pub fn lines(&mut self) -> Vec<String> {
        self.process.drain_lines().to_vec()
    }

    /// The `(epoch, seq)` of `run` lines seen so far.
    pub fn runs(&mut self) -> Vec<(i64, u64)> {
        self.process
            .drain_lines()
            .iter()
            .filter_map(|l| parse_run(l))
            .collect()
    }
}

pub fn parse_epoch(role: &str) -> Option<i64> {
    role.strip_prefix("master epoch=")?.parse().ok()
}

pub fn parse_run(line: &str) -> Option<(i64, u64)> {
    let rest = line.strip_prefix("run epoch=")?;
    let (epoch, seq) = rest.split_once(" seq=")?;
    Some((epoch.parse().ok()?, seq.parse().ok()?))
}

/// Waits for a `role master epoch=<n>` line from any of `servers`; returns (index, epoch).
pub fn wait_any_master(servers: &mut [&mut HaServer], timeout: Duration) -> (usize, i64) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for (i, s) in servers.iter_mut().enumerate() {
            // A short wait on each in turn; lines not taken here stay for later waits.
            let saved = s.cursor;
            if let Some(line) = s.next_line("role master epoch=", Duration::from_millis(10)) {
                return (i, parse_epoch(&line["role ".len()..]).expect("epoch"));
            }
            s.cursor = saved;
        }
    }
    panic!("no standby became master within {timeout:?}");
}

/// What one call to a server's own address got.
#[derive(Clone, Debug)]
pub enum Answer {
    /// The handler ran: answered as master (the reply's `provider` field).
    Master(String),
    /// The standby refusal.
    Refused,
    /// Anything else (a broken connection, a timeout).
    Failed(String),
}

/// One call of a [`Prober`]: to which server (its index), when it was sent and answered.
#[derive(Clone, Debug)]
pub struct Probe {
    pub server: usize,
    pub sent: Instant,
    pub received: Instant,
    pub answer: Answer,
}

impl Probe {
    pub fn is_master(&self) -> bool {
        matches!(self.answer, Answer::Master(_))
    }

    pub fn is_refused(&self) -> bool {
        matches!(self.answer, Answer::Refused)
    }
}

/// Calls `SayHello` on each server's own address (not through a master client: as a load
/// balancer or grpcurl holding a connection would) every `every`, without waiting for earlier
/// calls: calls to a paused server queue on its connection and are answered when it resumes.
pub struct Prober {
    stop: watch::Sender<bool>,
    loops: JoinSet<()>,
    probes: Arc<Mutex<Vec<Probe>>>,
}

/// How long one probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

impl Prober {
    /// Connects to every address, then starts calling.
    pub async fn start(addresses: &[String], every: Duration) -> Prober {
        let (stop, stopped) = watch::channel(false);
        let probes = Arc::new(Mutex::new(Vec::new()));
        let mut loops = JoinSet::new();
        for (server, address) in addresses.iter().enumerate() {
            let client = HelloServiceClient::connect(format!("http://{address}"))
                .await
                .unwrap_or_else(|e| panic!("connect to {address}: {e}"));
            let (probes, mut stopped) = (probes.clone(), stopped.clone());
            loops.spawn(async move {
                let mut calls = JoinSet::new();
                let mut tick = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stopped.wait_for(|s| *s) => break,
                    }
                    let (mut client, probes) = (client.clone(), probes.clone());
                    calls.spawn(async move {
                        let sent = Instant::now();
                        let request = HelloRequest {
                            name: "probe".into(),
                        };
                        let answer =
                            match tokio::time::timeout(PROBE_TIMEOUT, client.say_hello(request))
                                .await
                            {
                                Ok(Ok(reply)) => Answer::Master(reply.into_inner().provider),
                                Ok(Err(status)) if is_standby_refusal(&status) => Answer::Refused,
                                Ok(Err(status)) => Answer::Failed(status.to_string()),
                                Err(_) => Answer::Failed("no answer in time".into()),
                            };
                        let probe = Probe {
                            server,
                            sent,
                            received: Instant::now(),
                            answer,
                        };
                        probes.lock().unwrap_or_else(|p| p.into_inner()).push(probe);
                    });
                }
                // Every call sent is waited for (each at most PROBE_TIMEOUT).
                while calls.join_next().await.is_some() {}
            });
        }
        Prober {
            stop,
            loops,
            probes,
        }
    }

    /// The probes answered so far.
    pub fn probes(&self) -> Vec<Probe> {
        self.probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until a probe satisfying `wanted` was answered, at most `timeout`.
    pub async fn wait_for(&self, timeout: Duration, wanted: impl Fn(&Probe) -> bool) -> bool {
        let mut looked = 0;
        // New probes arrive every `every`: look at the ones after the last look.
        let found = super::poll_until(timeout, || {
            let probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
            let found = probes[looked..].iter().any(&wanted);
            looked = probes.len();
            std::future::ready(if found { Ok(()) } else { Err(()) })
        });
        found.await.is_ok()
    }

    /// Stops calling, waits for the calls in flight and returns every probe.
    pub async fn stop(mut self) -> Vec<Probe> {
        let _ = self.stop.send(true);
        while self.loops.join_next().await.is_some() {}
        self.probes()
    }
}
