//! Child processes for tests and demos: killed on drop, tied to this process's life (so a
//! crashed or killed test run leaves nothing behind), with their stdout lines delivered to a
//! channel that tests wait on.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::HarnessError;

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` so that it receives SIGKILL when this process dies, in a process group of its
/// own (a terminal's Ctrl-C reaches the parent only).
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked exits, so every child is forked from
/// one thread that lives as long as the process.
///
/// ```
/// let mut child = zoorpc_testkit::spawn_tied(std::process::Command::new("true"))?;
/// assert!(child.wait()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_tied(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: Mutex<Option<mpsc::Sender<SpawnRequest>>> = Mutex::new(None);
    let sender = {
        let mut guard = SPAWNER.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .get_or_insert_with(|| {
                let (tx, rx) = mpsc::channel::<SpawnRequest>();
                std::thread::Builder::new()
                    .name("zoorpc-spawner".into())
                    .spawn(move || {
                        for (mut cmd, reply) in rx {
                            let _ = reply.send(spawn_with_deathsig(&mut cmd));
                        }
                        // Keep the thread (and so the children) alive until the process ends.
                        loop {
                            std::thread::park();
                        }
                    })
                    .map(|_| ())
                    .unwrap_or_else(|e| tracing::error!("cannot start the spawner thread: {e}"));
                tx
            })
            .clone()
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    sender
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

fn spawn_with_deathsig(cmd: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid, kill) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
    // A process group of its own: a terminal's Ctrl-C (sent to the whole foreground group)
    // reaches only the parent, which decides what its children get (the chaos run undoes its
    // fault and counts; the children dying of the same SIGINT made false counts).
    cmd.process_group(0);
    cmd.spawn()
}

/// A child process that is killed (SIGKILL) and reaped on drop.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// use zoorpc_testkit::ChildProcess;
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "echo starting; echo ready 42; exec sleep 30"]);
/// let mut child = ChildProcess::spawn("sleeper", cmd)?;
/// assert_eq!(child.wait_for_line("ready", Duration::from_secs(10))?, "ready 42");
/// assert_eq!(child.seen_lines(), ["starting", "ready 42"]);
/// child.signal(libc::SIGTERM)?;
/// assert!(!child.wait_exit(Duration::from_secs(10))?.success());
/// # Ok::<(), zoorpc_testkit::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ChildProcess {
    /// Spawns `cmd` with stdout piped (stderr inherited), tied to this process.
    pub fn spawn(name: impl Into<String>, mut cmd: Command) -> Result<ChildProcess, HarnessError> {
        let name = name.into();
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = spawn_tied(cmd).map_err(|source| HarnessError::Spawn {
            what: name.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let label = name.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    tracing::debug!(process = %label, "{line}");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(ChildProcess {
            name,
            child,
            lines: rx,
            seen: Vec::new(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits (blocking) for a stdout line starting with `prefix`; returns it.
    pub fn wait_for_line(
        &mut self,
        prefix: &str,
        timeout: Duration,
    ) -> Result<String, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return Ok(line);
                    }
                }
                Err(e) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(HarnessError::Timeout {
                        what: format!("{} did not print {prefix:?} within {timeout:?}", self.name),
                        detail: format!(
                            "{e}; exit status {status:?}; lines so far: {:?}",
                            self.seen
                        ),
                    });
                }
            }
        }
    }

    /// Lines read so far (by `wait_for_line` or `drain_lines`).
    pub fn seen_lines(&self) -> &[String] {
        &self.seen
    }

    /// Reads every line available now; once the process has exited, every line it printed (the
    /// reader thread may still be behind: wait for the end of its output, at most 5 s).
    pub fn drain_lines(&mut self) -> &[String] {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(line) = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                self.seen.push(line);
            }
        } else {
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
        }
        &self.seen
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`, `libc::SIGSTOP`).
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Pauses the process (SIGSTOP) and returns once the kernel reports it stopped: `kill(2)`
    /// returns before every thread has stopped, and a thread still running could answer one
    /// more request.
    pub fn pause(&self) -> std::io::Result<()> {
        self.signal(libc::SIGSTOP)?;
        let pid = self.child.id() as libc::pid_t;
        let mut status = 0;
        loop {
            // SAFETY: waitpid(2) on our own child; WUNTRACED reports the stop without reaping.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
            if rc == pid && libc::WIFSTOPPED(status) {
                return Ok(());
            }
            if rc == pid {
                return Err(std::io::Error::other(format!(
                    "{} exited instead of stopping (wait status {status})",
                    self.name
                )));
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Resumes a paused process (SIGCONT).
    pub fn resume(&self) -> std::io::Result<()> {
        self.signal(libc::SIGCONT)
    }

    /// Waits (blocking) up to `timeout` for the process to exit.
    pub fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> Result<std::process::ExitStatus, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!("{} did not exit within {timeout:?}", self.name),
                    detail: String::new(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // A stopped process must be continued to die promptly on some kernels; SIGKILL works
        // on stopped processes, so kill is enough.
        self.kill();
    }
}
