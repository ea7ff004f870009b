//! Test hosts in Linux network namespaces, for real network partitions as Jepsen makes them.
//!
//! A [`Network`] is one namespace holding a bridge (the switch) and one namespace per host, each
//! linked to the switch by a veth pair (`eth0` in the host, `<host>` in the switch) and given an
//! address of `10.231.0.0/24` that only exists inside these namespaces: nothing is added to the
//! machine's own network, so concurrent networks (other test processes) never collide.
//!
//! - [`Network::cut`] / [`Network::heal`]: both directions between two hosts, with `blackhole`
//!   routes in each of them: established connections go silent (no reset, no error to read),
//!   new connections fail at once.
//! - [`Network::isolate`] / [`Network::rejoin`]: the host's link to the switch goes down: silence
//!   towards every other host.
//! - [`Host::command`] runs a program inside a host (`ip netns exec`); [`Host::run`] runs a
//!   closure on a thread that entered the host's namespace (every socket it opens lives there);
//!   [`crate::ZkServer::start_in`] starts ZooKeeper inside a host.
//! - [`Host::netem`]: `tc netem` delay and loss on the host's link, where the kernel has it.
//!
//! Needs root and iproute2; [`available`] says why not otherwise, and tests print
//! `skipped: <reason>` and return. Namespaces are named `zoorpc-<pid>-<n>-<host>`; dropping the
//! network (also while a test panics) deletes them, and with them the veth pairs and the bridge.
//! Ones left by a test process that was killed are deleted by the next [`Network::new`].

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::HarnessError;

/// The prefix of every namespace this module makes.
const PREFIX: &str = "zoorpc-";
/// The first three octets of every host address (host `i` is `.i+1`).
const SUBNET: [u8; 3] = [10, 231, 0];
/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Why network namespaces cannot be made here (not root, no `ip`, the kernel refuses), or `Ok`.
/// Found out once per process (tests running at once share the answer).
pub fn available() -> Result<(), String> {
    static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
    ANSWER.get_or_init(probe).clone()
}

fn probe() -> Result<(), String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("network namespaces need root (run the tests as root)".into());
    }
    remove_stale();
    let probe = format!("{PREFIX}{}-probe", std::process::id());
    ip(&["netns", "add", &probe]).map_err(|e| {
        format!("cannot make a network namespace ({e}); install iproute2 and run as root")
    })?;
    let _ = ip(&["netns", "del", &probe]);
    Ok(())
}

/// Runs `ip <args>`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn setup_error(what: &str, detail: String) -> HarnessError {
    HarnessError::Timeout {
        what: format!("network namespaces: {what}"),
        detail,
    }
}

/// Deletes namespaces with our prefix whose test process is gone (killed before its drop ran).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// One test host: a network namespace with one address on the network's switch.
#[derive(Clone, Debug)]
pub struct Host {
    name: String,
    netns: String,
    addr: Ipv4Addr,
    index: usize,
}

impl Host {
    /// The name the test gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Its address on the network.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// A command that runs `program` inside this host (`ip netns exec <ns> <program>`). The
    /// process is `program` itself (ip execs it), so its pid and signals are the program's.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).arg(program);
        cmd
    }

    /// Runs `f` on a new thread that entered this host's namespace and returns its result; a
    /// panic in `f` is raised again here. Sockets opened by `f` (a Tokio runtime built in it,
    /// a ZooKeeper client, a gRPC channel) are this host's.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, HarnessError> {
        let path = format!("{NETNS_DIR}/{}", self.netns);
        std::thread::scope(|scope| {
            let thread = scope.spawn(move || -> Result<T, HarnessError> {
                enter(&path)?;
                Ok(f())
            });
            match thread.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Adds `tc netem` delay (with jitter) and loss to everything this host sends. `Err` says
    /// why not, e.g. "Specified qdisc kind is unknown" where the kernel has no `sch_netem`.
    pub fn netem(
        &self,
        delay: Duration,
        jitter: Duration,
        loss_percent: f64,
    ) -> Result<(), String> {
        let (delay, jitter) = (
            format!("{}ms", delay.as_millis()),
            format!("{}ms", jitter.as_millis()),
        );
        let loss = format!("{loss_percent}%");
        #[rustfmt::skip]
        let args = ["-n", &self.netns, "qdisc", "add", "dev", "eth0", "root", "netem",
            "delay", &delay, &jitter, "loss", &loss];
        run("tc", &args)
    }
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &str) -> Result<(), HarnessError> {
    let file = std::fs::File::open(path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: setns(2) on an open namespace file; it only changes this thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(setup_error(
            "cannot enter a host",
            format!("setns {path}: {}", std::io::Error::last_os_error()),
        ));
    }
    Ok(())
}

/// Test hosts linked through one switch; every namespace is deleted on drop.
#[derive(Debug)]
pub struct Network {
    switch: String,
    hosts: Vec<Host>,
}

impl Network {
    /// Makes one host per name (at most 200), all on one switch, reachable from each other.
    pub fn new(names: &[&str]) -> Result<Network, HarnessError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if names.len() > 200 {
            return Err(setup_error(
                "too many hosts",
                format!("{} > 200", names.len()),
            ));
        }
        // Children spawned later from a thread inside a host must not inherit its namespace:
        // start the spawner thread here, in the caller's own namespace.
        let _ = super::spawn_tied(Command::new("true")).map(|mut c| c.wait());
        remove_stale();
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut network = Network {
            switch: format!("{id}-switch"),
            hosts: Vec::new(),
        };
        // From here on, drop deletes whatever was made if a step fails.
        network
            .build(&id, names)
            .map_err(|e| setup_error("setup", e))?;
        Ok(network)
    }

    fn build(&mut self, id: &str, names: &[&str]) -> Result<(), String> {
        let sw = self.switch.clone();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (i, name) in names.iter().enumerate() {
            let netns = format!("{id}-{name}");
            let [a, b, c] = SUBNET;
            let host = Host {
                name: (*name).to_owned(),
                netns: netns.clone(),
                addr: Ipv4Addr::new(a, b, c, i as u8 + 1),
                index: i,
            };
            ip(&["netns", "add", &netns])?;
            self.hosts.push(host.clone());
            let port = Self::port_name(i);
            #[rustfmt::skip]
            ip(&["link", "add", "name", "eth0", "netns", &netns, "type", "veth",
                "peer", "name", &port, "netns", &sw])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", host.addr);
            ip(&["-n", &netns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// The switch port of host `index`.
    fn port_name(index: usize) -> String {
        format!("port{index}")
    }

    /// The host named `name`.
    ///
    /// # Panics
    /// If no host has that name (a mistake in the test).
    pub fn host(&self, name: &str) -> &Host {
        match self.hosts.iter().find(|h| h.name == name) {
            Some(host) => host,
            None => panic!("no host named {name:?} in this network"),
        }
    }

    /// Every host, in the order given to [`Network::new`].
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Cuts the link between `a` and `b`, both directions; every other link stays.
    pub fn cut(&self, a: &Host, b: &Host) -> Result<(), HarnessError> {
        self.routes("add", a, b)
    }

    /// Undoes [`Network::cut`].
    pub fn heal(&self, a: &Host, b: &Host) -> Result<(), HarnessError> {
        self.routes("del", a, b)
    }

    fn routes(&self, verb: &str, a: &Host, b: &Host) -> Result<(), HarnessError> {
        for (from, to) in [(a, b), (b, a)] {
            let dst = format!("{}/32", to.addr);
            ip(&["-n", &from.netns, "route", verb, "blackhole", &dst])
                .map_err(|e| setup_error(&format!("{verb} a cut"), e))?;
        }
        Ok(())
    }

    /// Takes `host`'s link to the switch down: it reaches nobody and nobody reaches it, and
    /// what is sent either way is lost silently.
    pub fn isolate(&self, host: &Host) -> Result<(), HarnessError> {
        self.switch_port(host, "down")
    }

    /// Undoes [`Network::isolate`].
    pub fn rejoin(&self, host: &Host) -> Result<(), HarnessError> {
        self.switch_port(host, "up")
    }

    fn switch_port(&self, host: &Host, state: &str) -> Result<(), HarnessError> {
        let port = Self::port_name(host.index);
        ip(&["-n", &self.switch, "link", "set", &port, state])
            .map_err(|e| setup_error(&format!("set {}'s link {state}", host.name), e))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of each veth pair, and so the pair.
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.netns]);
        }
        let _ = ip(&["netns", "del", &self.switch]);
        // A process still inside a namespace keeps it alive, unnamed, until it exits; the
        // harness's children die on their own drop (or with this process).
    }
}
