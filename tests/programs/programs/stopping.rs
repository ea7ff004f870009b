//! How the programs stop: Ctrl-C, a second Ctrl-C, a closed stdout, their ZooKeeper dying.

use super::*;

#[test]
fn provider_stops_on_ctrl_c_after_deregistering() {
    let base = unique_path("sigint");
    let mut p = spawn_provider(&zk().connect_string(), &base, 0, &[]);
    assert!(p.node.starts_with(&format!("{base}/provider")));
    assert!(p.url.starts_with("http://127.0.0.1:"));
    p.process.signal(libc::SIGINT).unwrap();
    assert!(
        p.process
            .wait_exit(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    let lines = p.process.drain_lines().to_vec();
    assert_eq!(
        lines[1..],
        [
            format!("stopping {}", p.node),
            format!("deregistered {}", p.node),
            "stopped".to_owned()
        ]
    );
}

#[test]
fn a_second_ctrl_c_ends_a_provider_at_once() {
    let base = unique_path("sigint-twice");
    // A long drain grace: the stop would take a minute.
    let mut p = spawn_provider(
        &zk().connect_string(),
        &base,
        0,
        &["--drain-grace-ms", "60000"],
    );
    p.process.signal(libc::SIGINT).unwrap();
    p.process
        .wait_for_line("stopping ", Duration::from_secs(10))
        .unwrap();
    p.process.signal(libc::SIGINT).unwrap();
    let status = p.process.wait_exit(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(130));
}

#[test]
fn zookeeper_program_serves_the_other_programs_and_stops_on_ctrl_c() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-zookeeper"));
    cmd.args(["--port", "0"]);
    let mut server = ChildProcess::spawn("zookeeper", cmd).unwrap();
    let line = server
        .wait_for_line("zookeeper ", Duration::from_secs(40))
        .unwrap();
    let connect = line.strip_prefix("zookeeper ").unwrap().to_owned();
    assert!(connect.starts_with("127.0.0.1:"), "{line}");

    // What the README's "by hand" steps do against it.
    let base = unique_path("by-hand");
    let p = spawn_provider(&connect, &base, 0, &[]);
    let mut c = client(&connect, &base, 3);
    let last = c.wait_for_line("calls=", Duration::from_secs(30)).unwrap();
    assert_eq!(last, "calls=3 ok=3 failed=0");
    assert_eq!(c.seen_lines()[0], format!("ok {}", p.url));
    drop(p);

    server.signal(libc::SIGINT).unwrap();
    assert!(server.wait_exit(Duration::from_secs(15)).unwrap().success());
    assert_eq!(
        server.drain_lines().last().map(String::as_str),
        Some("stopped")
    );
    assert!(
        std::net::TcpStream::connect(&connect).is_err(),
        "ZooKeeper still answers on {connect}"
    );

    // A taken port: refused with a message that says so, before anything starts.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-zookeeper"))
        .args(["--port", &port])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("in use"),
        "{stderr}"
    );
}

/// A child whose stdout the test reads line by line and can close, killed on drop.
struct Piped {
    child: std::process::Child,
    lines: Option<std::io::Lines<std::io::BufReader<std::process::ChildStdout>>>,
}

impl Piped {
    fn spawn(program: &str, args: &[&str]) -> Piped {
        let mut child = Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        Piped {
            child,
            lines: Some(lines),
        }
    }

    fn first_line(&mut self) -> String {
        self.lines
            .as_mut()
            .and_then(|l| l.next())
            .expect("a line")
            .expect("readable")
    }

    /// Closes our end of its stdout, as `| head -n 1` does once it has its line.
    fn close_stdout(&mut self) {
        self.lines = None;
    }

    fn wait(&mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let status = common::eventually_blocking("the program's exit", timeout, || {
            self.child.try_wait().expect("wait").ok_or("still running")
        });
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        }
        (status, err)
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `| head -n 1` on the programs: a closed stdout never panics them (exit 101), a provider
/// still deregisters on SIGTERM, a call loop just stops.
#[test]
fn a_closed_stdout_neither_panics_a_program_nor_skips_a_providers_graceful_stop() {
    let base = unique_path("closed-stdout");
    let connect = zk().connect_string();
    let mut provider = Piped::spawn(
        env!("CARGO_BIN_EXE_zoorpc-provider"),
        &["--zk", &connect, "--base-path", &base, "--port", "0"],
    );
    let registered = provider.first_line();
    let node = registered
        .split_whitespace()
        .nth(1)
        .expect("node")
        .to_owned();
    provider.close_stdout();

    let mut client = Piped::spawn(
        env!("CARGO_BIN_EXE_zoorpc-client"),
        &[
            "--zk",
            &connect,
            "--base-path",
            &base,
            "--calls",
            "1000000",
            "--interval-ms",
            "0",
        ],
    );
    assert!(client.first_line().starts_with("ok http://"));
    client.close_stdout();
    let (status, err) = client.wait(Duration::from_secs(20));
    assert!(status.success(), "client: {status:?} {err}");
    assert!(!err.contains("panicked"), "{err}");

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(provider.child.id() as libc::pid_t, libc::SIGTERM) };
    let (status, err) = provider.wait(Duration::from_secs(20));
    assert!(status.success(), "provider: {status:?} {err}");
    assert!(!err.contains("panicked"), "{err}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gone = rt.block_on(async {
        let raw = common::raw_client(&connect).await;
        raw.check_stat(&node).await.unwrap().is_none()
    });
    assert!(gone, "the provider did not delete {node} on SIGTERM");
}

/// The children of process `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            children.extend(
                list.split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    children
}

/// `zoorpc-zookeeper` whose server dies under it says so and exits 1 (it used to keep running,
/// serving nothing, and print `stopped` on SIGTERM as if all was well).
#[test]
fn the_zookeeper_program_reports_its_server_dying_and_exits_1() {
    let mut program = Piped::spawn(env!("CARGO_BIN_EXE_zoorpc-zookeeper"), &["--port", "0"]);
    let line = program.first_line();
    assert!(line.starts_with("zookeeper 127.0.0.1:"), "{line}");
    let java = children_of(program.child.id());
    assert_eq!(java.len(), 1, "one server process: {java:?}");
    // SAFETY: kill(2) on the program's own child, found above.
    unsafe { libc::kill(java[0] as libc::pid_t, libc::SIGKILL) };
    let (status, err) = program.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("exited on its own"), "{err}");
}
