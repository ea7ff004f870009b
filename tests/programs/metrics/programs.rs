//! The other programs' metrics: an HA server's role and epoch, a consumer program's calls, a listener on port 0.

use super::*;

#[test]
fn ha_server_metrics_show_role_and_epoch() {
    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("metrics-ha"));
    let metrics = free_addr();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
    cmd.args(["--zk", &connect, "--path", &path, "--port", "0"])
        .args(["--metrics", &metrics]);
    let mut server = ChildProcess::spawn("ha-server --metrics", cmd).unwrap();
    let line = server
        .wait_for_line("role master epoch=", Duration::from_secs(20))
        .unwrap();
    let epoch: f64 = line.rsplit('=').next().unwrap().parse().unwrap();
    let master = format!("zoorpc_master{{path=\"{path}\"}}");
    wait_value(&metrics, &master, 1.0);
    let body = scrape(&metrics);
    assert_eq!(
        value(&body, &format!("zoorpc_master_epoch{{path=\"{path}\"}}")),
        Some(epoch),
        "{body}"
    );
    assert_eq!(
        value(&body, &format!("zoorpc_zk_connected{{zk=\"{connect}\"}}")),
        Some(1.0),
        "{body}"
    );
}

/// The consumer side as a program: `zoorpc-client --metrics` shows its calls and live endpoints
/// while its loop runs.
#[test]
fn a_consumer_programs_metrics_count_its_calls() {
    let base = unique_path("metrics-client");
    let connect = zk().connect_string();
    let _provider = spawn_provider(&connect, &base, 0, &[]);
    let addr = free_addr();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
    cmd.args(["--zk", &connect, "--base-path", &base]).args([
        "--calls",
        "100000",
        "--interval-ms",
        "5",
        "--metrics",
        &addr,
    ]);
    let mut client = ChildProcess::spawn("client", cmd).expect("spawn client");
    client
        .wait_for_line("ok http://", Duration::from_secs(20))
        .expect("the client calls");
    wait_value(
        &addr,
        &format!("zoorpc_live_endpoints{{base_path=\"{base}\"}}"),
        1.0,
    );
    eventually_blocking("10 answered calls counted", Duration::from_secs(20), || {
        let body = scrape(&addr);
        match value(&body, "zoorpc_calls_total{outcome=\"answered\"}") {
            Some(answered) if answered >= 10.0 => Ok(()),
            _ => Err(body),
        }
    });
}

/// `--metrics 127.0.0.1:0` serves on a free port and says which on stderr (it did not: the
/// port had to be found with `ss`).
#[test]
fn metrics_on_port_0_say_where_they_are() {
    use std::io::BufRead;
    let connect = zk().connect_string();
    let base = unique_path("metrics-port-0");
    let mut child = Command::new(ZOORPC)
        .args(["proxy", "--zk", &connect, "--listen", "127.0.0.1:0"])
        .args(["--base-path", &base, "--metrics", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().unwrap();
    let _guard = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a line on stderr");
    let addr = line
        .strip_prefix("metrics at http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{line}"));
    assert!(!addr.ends_with(":0"), "{line}");
    // Served there (nothing counted yet: an empty exposition).
    let answer = scrape(addr);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
