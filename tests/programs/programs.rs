//! The programs other tools drive: their exact output lines and exit codes.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{spawn_provider, zk};
use zoorpc_testkit::{ChildProcess, unique_path};

fn client(connect: &str, base: &str, calls: u32) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
    cmd.args(["--zk", connect, "--base-path", base]).args([
        "--calls",
        &calls.to_string(),
        "--interval-ms",
        "5",
    ]);
    ChildProcess::spawn("client", cmd).unwrap()
}

#[test]
fn client_prints_one_line_per_call_and_a_summary() {
    let base = unique_path("client-lines");
    let connect = zk().connect_string();
    let providers = [
        spawn_provider(&connect, &base, 0, &[]),
        spawn_provider(&connect, &base, 0, &[]),
    ];
    let mut c = client(&connect, &base, 40);
    let last = c.wait_for_line("calls=", Duration::from_secs(30)).unwrap();
    assert_eq!(last, "calls=40 ok=40 failed=0");
    let lines = c.seen_lines().to_vec();
    assert_eq!(lines.len(), 41, "{lines:?}");
    for line in &lines[..40] {
        let url = line.strip_prefix("ok ").unwrap_or_else(|| panic!("{line}"));
        assert!(providers.iter().any(|p| p.url == url), "{line}");
    }
    for p in &providers {
        assert!(
            lines.iter().any(|l| l == &format!("ok {}", p.url)),
            "{} never answered",
            p.url
        );
    }
    assert!(c.wait_exit(Duration::from_secs(5)).unwrap().success());
}

#[test]
fn client_without_providers_prints_err_lines() {
    let base = unique_path("client-empty");
    let mut c = client(&zk().connect_string(), &base, 2);
    let last = c.wait_for_line("calls=", Duration::from_secs(30)).unwrap();
    assert_eq!(last, "calls=2 ok=0 failed=2");
    let lines = c.seen_lines().to_vec();
    for line in &lines[..2] {
        assert!(
            line.starts_with("err no providers registered under "),
            "{line}"
        );
    }
    // Failed calls are a failed run (as `zoorpc call` and `zoorpc-ha-client`): status 1.
    let status = c.wait_exit(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}");
}

/// `--curator-name NAME --curator-base PATH`, as `zoorpc call` takes them: the client calls the
/// instances of that service in the Curator layout (here a provider registered only there), and
/// refuses `--base-path` with it.
#[test]
fn client_calls_the_instances_of_a_curator_service() {
    let base = unique_path("client-curator");
    let connect = zk().connect_string();
    let curator = ["--curator-name", "greeter", "--curator-base", base.as_str()];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"));
    cmd.args(["--zk", connect.as_str(), "--port", "0"])
        .args(curator)
        .args(["--session-timeout-ms", "1500"]);
    let mut provider = ChildProcess::spawn("curator provider", cmd).unwrap();
    let line = provider
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    let url = line
        .split_whitespace()
        .nth(2)
        .expect("url in line")
        .to_owned();
    assert!(line.contains(&format!("{base}/greeter/")), "{line}");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
    cmd.args(["--zk", connect.as_str(), "--calls", "3"])
        .args(curator);
    let mut c = ChildProcess::spawn("client", cmd).unwrap();
    let last = c.wait_for_line("calls=", Duration::from_secs(30)).unwrap();
    assert_eq!(last, "calls=3 ok=3 failed=0");
    let ok = format!("ok {url}");
    assert!(
        c.seen_lines()[..3].iter().all(|l| *l == ok),
        "{:?}",
        c.seen_lines()
    );
    assert!(c.wait_exit(Duration::from_secs(5)).unwrap().success());

    let args = [
        ["--zk", connect.as_str(), "--base-path", "/registry"].as_slice(),
        &curator,
    ]
    .concat();
    let (code, _, err) = run_to_end(
        env!("CARGO_BIN_EXE_zoorpc-client"),
        &args,
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--base-path") && err.contains("--curator-name"),
        "{err}"
    );
}

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
fn provider_reports_a_taken_port_and_bad_flags() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .args(["--zk", &zk().connect_string(), "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("already in use"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .args(["--zk", "127.0.0.1:2181", "--prot", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: unexpected argument '--prot'")
            && err.contains("'--port'")
            && err.trim_end().ends_with("see --help"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("required arguments were not provided: --zk <HOST:PORT"),
        "{err}"
    );
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

/// Runs `program` with `args` to its end, at most `timeout` (then kills it and fails the test):
/// its exit code, stdout and stderr.
fn run_to_end(program: &str, args: &[&str], timeout: Duration) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(program);
    cmd.args(args);
    common::run_command(cmd, timeout)
}

/// Every numeric flag of every program, each with values it cannot use: one `error: invalid
/// value` line naming the value, the flag and the range, and status 2. Nothing starts (the
/// connect string points nowhere: the flags are checked first).
#[test]
fn every_numeric_flag_refuses_unusable_values_with_a_clear_error() {
    let zk = ["--zk", "127.0.0.1:1"];
    // Too big for any flag, not numbers, negative, fractional, empty.
    let for_all = ["99999999999999999999", "abc", "-1", "1.5", ""];
    // u64::MAX milliseconds, and one more than a 32-bit count of milliseconds (2^31, which the
    // ZooKeeper client wrapped to the server's minimum session timeout).
    let ms_huge = ["18446744073709551615", "2147483648"];
    // (program, executable, arguments before the flag, [(flag, its own unusable values)])
    type Flags<'a> = &'a [(&'a str, &'a [&'a str])];
    let programs: [(&str, &str, &[&str], Flags); 6] = [
        (
            "provider",
            env!("CARGO_BIN_EXE_zoorpc-provider"),
            &zk,
            &[
                ("port", &["65536", "18446744073709551615"]),
                ("session-timeout-ms", &["0"]),
                ("drain-grace-ms", &[]),
                ("delay-ms", &[]),
                ("weight", &["4294967296", "18446744073709551615"]),
            ],
        ),
        (
            "client",
            env!("CARGO_BIN_EXE_zoorpc-client"),
            &zk,
            &[("calls", &[]), ("interval-ms", &[])],
        ),
        (
            "ha_server",
            env!("CARGO_BIN_EXE_zoorpc-ha-server"),
            &zk,
            &[
                ("port", &["65536"]),
                ("session-timeout-ms", &["0"]),
                ("handover-grace-ms", &[]),
                ("job-interval-ms", &["0", "99"]),
            ],
        ),
        (
            "ha_client",
            env!("CARGO_BIN_EXE_zoorpc-ha-client"),
            &zk,
            &[
                ("calls", &[]),
                ("interval-ms", &[]),
                ("switch-over-timeout-ms", &[]),
            ],
        ),
        (
            "master_job",
            env!("CARGO_BIN_EXE_zoorpc-master-job"),
            &zk,
            &[
                ("job-interval-ms", &["0", "99"]),
                ("session-timeout-ms", &["0"]),
            ],
        ),
        (
            "zookeeper",
            env!("CARGO_BIN_EXE_zoorpc-zookeeper"),
            &[],
            &[("port", &["65536"]), ("tick-ms", &["0", "7158279"])],
        ),
    ];
    for (name, exe, base_args, flags) in programs {
        for (flag, own) in flags {
            let huge: &[&str] = if flag.ends_with("-ms") { &ms_huge } else { &[] };
            for value in for_all.iter().chain(huge).chain(own.iter()) {
                let arg = format!("--{flag}={value}");
                let mut args = base_args.to_vec();
                args.push(&arg);
                let (code, stdout, stderr) = run_to_end(exe, &args, Duration::from_secs(20));
                assert_eq!(code, Some(2), "{name} {arg}: {stderr}");
                assert_eq!(stderr.lines().count(), 1, "{name} {arg}: {stderr}");
                assert!(
                    stderr.starts_with(&format!("error: invalid value '{value}' for '--{flag} <"))
                        && stderr.contains(": expected ")
                        && stderr.contains(" from ")
                        && stderr.trim_end().ends_with("; see --help"),
                    "{name} {arg}: {stderr}"
                );
                assert!(stdout.is_empty(), "{name} {arg}: {stdout}");
            }
        }
    }
}

/// `--interval-ms 0` means "no pause" for the call loops (it used to panic in tokio's
/// `interval` and exit 101).
#[test]
fn call_loops_with_interval_zero_call_without_pause() {
    let base = unique_path("interval-zero");
    let connect = zk().connect_string();
    let provider = spawn_provider(&connect, &base, 0, &[]);
    let args = ["--zk", &connect, "--base-path", &base, "--calls", "50"];
    let (code, stdout, stderr) = run_to_end(
        env!("CARGO_BIN_EXE_zoorpc-client"),
        &[&args[..], &["--interval-ms", "0"]].concat(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().last(), Some("calls=50 ok=50 failed=0"));
    assert!(
        stdout
            .lines()
            .take(50)
            .all(|l| l == format!("ok {}", provider.url))
    );

    let path = format!("{}/HelloService:1.0.0", unique_path("interval-zero-ha"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args(["--zk", &connect, "--path", &path, "--port", "0"]);
    let mut server = ChildProcess::spawn("ha-server", cmd).unwrap();
    server
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let (code, stdout, stderr) = run_to_end(
        env!("CARGO_BIN_EXE_zoorpc-ha-client"),
        &[
            "--zk",
            &connect,
            "--path",
            &path,
            "--calls",
            "50",
            "--interval-ms",
            "0",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().last(), Some("calls=50 ok=50 failed=0"));
}

/// A provider never registers an address no client can dial or that does not reach it: an
/// unspecified advertised host is refused before anything starts, and the startup health probe
/// goes to the advertised URL, so an address nothing listens on fails startup naming it.
#[test]
fn provider_refuses_an_advertised_address_that_does_not_reach_it() {
    let base = unique_path("advertise");
    let connect = zk().connect_string();
    let provider = |extra: &[&str]| {
        let args = [
            &["--zk", &connect, "--base-path", &base, "--port", "0"],
            extra,
        ]
        .concat();
        run_to_end(
            env!("CARGO_BIN_EXE_zoorpc-provider"),
            &args,
            Duration::from_secs(20),
        )
    };
    for host in ["0.0.0.0", "::", "[::]"] {
        let (code, stdout, stderr) = provider(&["--advertise-host", host]);
        assert_eq!(code, Some(1), "{host}: {stdout} {stderr}");
        assert!(
            stderr.starts_with(&format!("error: cannot advertise {host}: "))
                && stderr.contains("--advertise-host"),
            "{stderr}"
        );
    }
    // 127.0.0.2 is loopback too, but the listener is on 127.0.0.1 only: nothing answers there.
    // A refused connection is said as such and at once (it was "no answer within 5 s", after
    // the 5 s).
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = provider(&["--advertise-host", "127.0.0.2"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: the advertised address http://127.0.0.2:")
            && stderr.contains("does not reach this server (listening on 127.0.0.1:")
            && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a refused address took {:?} (the self-check's whole 5 s)",
        started.elapsed()
    );
    // Nothing was registered.
    let registered = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let raw = common::raw_client(&connect).await;
        raw.list_children(&base).await
    });
    assert!(
        matches!(registered, Err(zookeeper_client::Error::NoNode)),
        "{registered:?}"
    );
    // Listening on every interface needs the advertised address spelled out; refused before
    // binding anything.
    let (code, stdout, stderr) = provider(&["--listen-host", "0.0.0.0"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: --listen-host 0.0.0.0 listens on every interface")
            && stderr.contains("--advertise-host"),
        "{stderr}"
    );
}

/// The HA server writes into the master node only an address that reaches it.
#[test]
fn ha_server_refuses_an_advertised_address_that_does_not_reach_it() {
    let path = format!("{}/HelloService:1.0.0", unique_path("ha-advertise"));
    let connect = zk().connect_string();
    let ha_server = |extra: &[&str]| {
        let args = [&["--zk", &connect, "--path", &path, "--port", "0"], extra].concat();
        run_to_end(
            env!("CARGO_BIN_EXE_zoorpc-ha-server"),
            &args,
            Duration::from_secs(20),
        )
    };
    let (code, stdout, stderr) = ha_server(&["--advertise-host", "0.0.0.0"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: cannot advertise 0.0.0.0: "),
        "{stderr}"
    );
    let (code, stdout, stderr) = ha_server(&["--advertise-host", "127.0.0.2"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: the advertised address http://127.0.0.2:"),
        "{stderr}"
    );
    assert!(!stdout.contains("role master"), "{stdout}");
    let master = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let raw = common::raw_client(&connect).await;
        raw.check_stat(&path).await
    });
    assert!(matches!(master, Ok(None)), "{master:?}");
    let (code, stdout, stderr) = ha_server(&["--listen-host", "::"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: --listen-host :: listens on every interface"),
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

/// A bad election path, job name or address is refused before contending (found once master, it
/// left the master node behind for a session timeout).
#[test]
fn bad_election_paths_job_names_and_addresses_are_refused_before_contending() {
    let connect = zk().connect_string();
    let path = unique_path("bad-job-flags");
    let cases: [(&str, Vec<&str>, &str); 5] = [
        (
            "zoorpc-ha-server",
            vec!["--path", &path, "--job-name", ""],
            "must not end with '/'",
        ),
        (
            "zoorpc-ha-server",
            vec!["--path", "relative"],
            "must start with '/'",
        ),
        (
            "zoorpc-master-job",
            vec!["--path", &path, "--name", "x/y"],
            "one path segment",
        ),
        (
            "zoorpc-master-job",
            vec!["--path", &path, "--name", ".."],
            "'..'",
        ),
        (
            "zoorpc-master-job",
            vec!["--path", &path, "--address", "a b"],
            "whitespace",
        ),
    ];
    for (program, args, expected) in cases {
        let exe = match program {
            "zoorpc-ha-server" => env!("CARGO_BIN_EXE_zoorpc-ha-server"),
            _ => env!("CARGO_BIN_EXE_zoorpc-master-job"),
        };
        let mut all = vec!["--zk", connect.as_str()];
        all.extend(args.iter().copied());
        let (code, stdout, stderr) = run_to_end(exe, &all, Duration::from_secs(10));
        assert_eq!(code, Some(2), "{program} {args:?}: {stdout} {stderr}");
        assert!(stdout.is_empty(), "{program} {args:?} started: {stdout}");
        assert!(stderr.contains(expected), "{program} {args:?}: {stderr}");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt.block_on(async {
        let raw = common::raw_client(&connect).await;
        raw.check_stat(&path).await.unwrap().is_some()
    });
    assert!(!created, "a refused program created {path}");
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
