//! `zoorpc-client`: one line per call, the summary, the exit status, its layouts and call loops.

use super::*;

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
    let provider = common::curator_provider(&connect, &base, "greeter", &[]);
    let (node, url) = common::registered(&provider);
    assert!(node.starts_with(&format!("{base}/greeter/")), "{node}");

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
