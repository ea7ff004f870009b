//! A node with children and no data under a base path is a folder, not a provider, and every
//! view says so the same way: `zoorpc ls` lists it as a service of its own (not as a provider
//! with bad data of its parent), `zoorpc watch` (discovery) passes it over without a warning;
//! a provider with bad data is counted apart from the providers.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{raw_client, run_command, runtime, zk};
use zoorpc_testkit::{ChildProcess, unique_path};

#[test]
fn a_folder_is_no_provider_and_bad_data_is_counted_apart() {
    let connect = zk().connect_string();
    let bd = format!("{}/bd", unique_path("folders"));
    let runtime = runtime();
    let raw = runtime.block_on(raw_client(&connect));
    let open =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    let nodes: [(String, &[u8]); 4] = [
        (format!("{bd}/provider0000009999"), b"not a url"),
        (format!("{bd}/foo"), b"http://127.0.0.1:1"),
        (format!("{bd}/sub"), b""),
        (
            format!("{bd}/sub/provider0000000001"),
            b"http://127.0.0.1:2",
        ),
    ];
    runtime.block_on(raw.mkdir(&bd, &open)).unwrap();
    for (path, data) in &nodes {
        runtime.block_on(raw.create(path, data, &open)).unwrap();
    }

    let mut ls = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    ls.args(["ls", &bd, "--zk", &connect]);
    let (code, stdout, stderr) = run_command(ls, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(&format!("{bd} (1 provider, 1 with bad data)").as_str()),
        "{stdout}"
    );
    assert!(
        lines.contains(&format!("{bd}/sub (1 provider)").as_str()),
        "{stdout}"
    );
    assert!(
        !stdout.contains("  sub "),
        "the folder listed as a provider: {stdout}"
    );

    let mut watch = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    let log = tempfile::NamedTempFile::new().unwrap();
    watch
        .args(["watch", "--base-path", &bd, "--zk", &connect])
        .stderr(Stdio::from(log.reopen().unwrap()));
    let mut watch = ChildProcess::spawn("watch", watch).unwrap();
    let line = watch
        .wait_for_line("live=", Duration::from_secs(20))
        .unwrap();
    assert_eq!(line, "live=1 +foo http://127.0.0.1:1");
    watch.signal(libc::SIGTERM).unwrap();
    watch.wait_exit(Duration::from_secs(10)).unwrap();
    let warnings = std::fs::read_to_string(log.path()).unwrap();
    assert!(!warnings.contains(&format!("{bd}/sub")), "{warnings}");
    assert!(
        warnings.contains(&format!("{bd}/provider0000009999")),
        "bad data is still warned of: {warnings}"
    );
}
