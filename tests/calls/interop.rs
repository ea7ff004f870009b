//! Interop with tools nobody here wrote: Python grpcio (with grpcio-reflection, v1alpha, and
//! grpcio-health-checking) lists a provider's services, checks its health and calls it, directly
//! and through `zoorpc proxy` (a provider SIGKILLed behind the proxy is `cli.rs`'s proxy test: the
//! proxy fails over the same for any client); Debian's `zkCli.sh` reads our nodes and hands
//! mastership over with `set`.
//!
//! The Python packages come from PyPI into a venv under the target dir
//! (`target/tmp/interop-venv`, made once by `scripts/install-python-grpcio` and reused). Where PyPI (or `python3 -m venv`) is not
//! available the Python test prints why and passes without running: it cannot say anything
//! about the proxy then, and says so.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{spawn_provider, zk};
use zoorpc_testkit::{ChildProcess, unique_path};

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");
const CLIENT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/grpc_client.py");

/// Runs `cmd` to its end within `timeout`: whether it succeeded, and its stdout lines.
pub(crate) fn run(name: &str, cmd: Command, timeout: Duration) -> (bool, Vec<String>) {
    let mut child = match ChildProcess::spawn(name, cmd) {
        Ok(child) => child,
        Err(e) => return (false, vec![format!("cannot start {name}: {e}")]),
    };
    let ok = match child.wait_exit(timeout) {
        Ok(status) => status.success(),
        Err(e) => {
            child.kill();
            return (false, vec![format!("{name}: {e}")]);
        }
    };
    (ok, child.drain_lines().to_vec())
}

/// The venv's python with grpcio, grpcio-reflection and grpcio-health-checking, made by
/// `scripts/install-python-grpcio` if need be, or why not (also the Python of `curator.rs`'s
/// server).
pub(crate) fn python() -> Result<&'static Path, &'static str> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
            let python = venv.join("bin/python");
            let ready = || {
                let mut check = Command::new(&python);
                check.args(["-c", "import grpc, grpc_reflection, grpc_health"]);
                run("python check", check, Duration::from_secs(60)).0
            };
            if python.exists() && ready() {
                return Ok(python);
            }
            let mut install = Command::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/install-python-grpcio"
            ));
            install.arg(&venv);
            let (ok, out) = run("install-python-grpcio", install, Duration::from_secs(720));
            if !ok || !ready() {
                return Err(format!(
                    "scripts/install-python-grpcio failed (its own errors are above): {out:?}"
                ));
            }
            Ok(python)
        })
        .as_deref()
        .map_err(String::as_str)
}

/// `tests/interop/hello_server.py ARGS` in the venv's Python (the test fails with the reason
/// without one; `why` says what it is for): the process and the port it listens on.
pub(crate) fn python_hello_server(args: &[&str], why: &str) -> (ChildProcess, u16) {
    let python = python().unwrap_or_else(|e| panic!("no Python grpcio for {why}: {e}"));
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/hello_server.py"
        ))
        .args(args);
    let mut server = ChildProcess::spawn("python hello server", cmd).expect("spawn python");
    let line = server
        .wait_for_line("listening ", Duration::from_secs(30))
        .expect("the python server listens");
    let port = line.rsplit(':').next().and_then(|p| p.trim().parse().ok());
    (
        server,
        port.unwrap_or_else(|| panic!("no port in {line:?}")),
    )
}

/// [`python`], or `None` after saying why the test calling it is skipped.
pub(crate) fn python_or_skip() -> Option<&'static Path> {
    python()
        .inspect_err(|why| eprintln!("SKIPPED: no Python grpcio to test with: {why}"))
        .ok()
}

/// `grpc_client.py args`.
pub(crate) fn python_client(python: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg("-u").arg(CLIENT_PY).args(args);
    cmd
}

/// `inspect ADDR`: services by reflection, health, one SayHello.
fn inspect(python: &Path, address: &str) -> Vec<String> {
    let (ok, lines) = run(
        "python inspect",
        python_client(python, &["inspect", address]),
        Duration::from_secs(60),
    );
    assert!(ok, "python inspect {address}: {lines:?}");
    lines
}

#[test]
fn python_grpcio_lists_checks_and_calls_a_provider_directly_and_through_the_proxy() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let connect = zk().connect_string();
    let base = unique_path("interop");
    let a = spawn_provider(&connect, &base, 0, &[]);
    let b = spawn_provider(&connect, &base, 0, &[]);
    let mut cmd = Command::new(ZOORPC);
    cmd.args(["proxy", "--zk", &connect, "--listen", "127.0.0.1:0"])
        .args(["--base-path", &base, "--idempotent"]);
    let mut proxy = ChildProcess::spawn("proxy", cmd).unwrap();
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let proxy_addr = line.split_whitespace().nth(1).unwrap().to_owned();

    // Directly, and through the proxy (reflection's stream goes through it too).
    let direct = a.url.trim_start_matches("http://");
    for (address, answered_by) in [
        (direct, vec![a.url.clone()]),
        (proxy_addr.as_str(), vec![a.url.clone(), b.url.clone()]),
    ] {
        let lines = inspect(python, address);
        let services = lines[0].strip_prefix("services ").unwrap();
        for expected in [
            "hello.v1.HelloService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(services.split(',').any(|s| s == expected), "{lines:?}");
        }
        assert_eq!(lines[1], "health SERVING", "{lines:?}");
        let hello = lines[2].strip_prefix("hello Hello python! ").unwrap();
        assert!(answered_by.iter().any(|u| u == hello), "{lines:?}");
    }

    proxy.signal(libc::SIGTERM).unwrap();
    proxy
        .wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();
}

/// Debian's zkCli.sh (`ZKCLI` to use another).
fn zkcli(connect: &str, args: &[&str]) -> Vec<String> {
    let program =
        std::env::var("ZKCLI").unwrap_or_else(|_| "/usr/share/zookeeper/bin/zkCli.sh".into());
    let mut cmd = Command::new(program);
    cmd.args(["-server", connect]).args(args);
    let (ok, lines) = run("zkCli.sh", cmd, Duration::from_secs(60));
    assert!(ok, "zkCli.sh {args:?}: {lines:?}");
    lines
}

#[test]
fn zkcli_reads_our_nodes_and_hands_mastership_over_with_set() {
    let connect = zk().connect_string();
    let base = unique_path("interop-zkcli");
    let mut cmd = Command::new(ZOORPC);
    cmd.args([
        "provider",
        "--zk",
        &connect,
        "--base-path",
        &base,
        "--weight",
        "30",
    ]);
    let mut process = ChildProcess::spawn("zoorpc provider", cmd).unwrap();
    let line = process
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    let mut words = line.split_whitespace().skip(1);
    let (node, url) = (words.next().unwrap(), words.next().unwrap());
    let listed = zkcli(&connect, &["ls", &base]);
    let name = node.rsplit('/').next().unwrap();
    assert!(
        listed.iter().any(|l| l == &format!("[{name}]")),
        "{listed:?}"
    );
    let got = zkcli(&connect, &["get", node]);
    assert!(got.iter().any(|l| l == url), "{got:?}");
    assert!(url.ends_with("?weight=30"), "{url}");
    // The session `zoorpc ls` reports is the one zkCli.sh sees as the owner.
    let stat = zkcli(&connect, &["stat", node]);
    let owner = stat
        .iter()
        .find_map(|l| l.strip_prefix("ephemeralOwner = "))
        .unwrap_or_else(|| panic!("{stat:?}"))
        .to_owned();
    let mut ls = Command::new(ZOORPC);
    ls.args(["ls", "--zk", &connect, &base]);
    let (ok, out) = run("zoorpc ls", ls, Duration::from_secs(30));
    assert!(ok, "{out:?}");
    assert!(
        out.iter().any(|l| l.contains(&format!("session={owner} "))),
        "{owner}: {out:?}"
    );

    // An election: zkCli.sh reads the master and hands it over by `set`.
    let path = format!("{}/Hello:1.0.0", unique_path("interop-zkcli-ha"));
    let mut servers = Vec::new();
    for _ in 0..2 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
        cmd.args(["--zk", &connect, "--path", &path, "--port", "0"]);
        let mut server = ChildProcess::spawn("ha-server", cmd).unwrap();
        let line = server
            .wait_for_line("listening ", Duration::from_secs(20))
            .unwrap();
        let address = line["listening ".len()..].to_owned();
        server
            .wait_for_line("role ", Duration::from_secs(20))
            .unwrap();
        servers.push((server, address));
    }
    let got = zkcli(&connect, &["get", &path]);
    let master = servers
        .iter()
        .position(|(_, a)| got.iter().any(|l| l == a))
        .unwrap_or_else(|| panic!("no contender's address in {got:?}"));
    let standby = 1 - master;
    let standby_addr = servers[standby].1.clone();
    zkcli(&connect, &["set", &path, &standby_addr]);
    servers[standby]
        .0
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let mut show = Command::new(ZOORPC);
    show.args(["master", "--zk", &connect, &path]);
    let (ok, out) = run("zoorpc master", show, Duration::from_secs(30));
    assert!(ok, "{out:?}");
    assert!(
        out[0].starts_with(&format!("master {standby_addr} epoch=")),
        "{out:?}"
    );
}
