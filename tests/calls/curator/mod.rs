//! Interop with the Java fleets on ZooKeeper: Apache Curator's own service discovery
//! (Debian's `libcurator-discovery-java`, with Spring Cloud Zookeeper's payload class) finds
//! zoorpc providers, and zoorpc's consumer calls and balances over instances Curator registered
//! for a server zoorpc knows nothing of (Python grpcio), through `zoorpc call`, `ls`, `watch`
//! and `proxy`, with real processes and SIGKILL.
//!
//! The Java side is `tests/interop/curator/` compiled once per run with `javac` into
//! `target/tmp/curator-java` (`scripts/install-curator` installs Curator and a JDK when they are
//! missing). A machine where they cannot be installed fails these tests with the reason: they
//! never pass without having run. The Python server comes from the venv `interop.rs` makes.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{curator_provider, run_command, url_of, zk};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::{ChildProcess, unique_path};

mod fleet;
mod java_reads;

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The jars the Java side runs with (Debian's, under /usr/share/java).
const JARS: [&str; 11] = [
    "curator-x-discovery",
    "curator-framework",
    "curator-client",
    "zookeeper",
    "zookeeper-jute",
    "guava",
    "jackson-databind",
    "jackson-core",
    "jackson-annotations",
    "slf4j-api",
    "slf4j-nop",
];

/// The classpath of the compiled Java side: installed and compiled once per run, or the test
/// fails with the reason.
fn java_classpath() -> &'static str {
    static CLASSPATH: OnceLock<Result<String, String>> = OnceLock::new();
    let built = CLASSPATH.get_or_init(|| {
        let install = Command::new(format!("{ROOT}/scripts/install-curator"));
        let (code, out, err) = run_command(install, Duration::from_secs(600));
        if code != Some(0) {
            return Err(format!(
                "scripts/install-curator failed ({code:?}): {out}{err}"
            ));
        }
        let jars: Vec<String> = JARS
            .iter()
            .map(|jar| format!("/usr/share/java/{jar}.jar"))
            .collect();
        if let Some(missing) = jars.iter().find(|jar| !Path::new(jar).exists()) {
            return Err(format!(
                "{missing} is missing after scripts/install-curator"
            ));
        }
        let classes = Path::new(env!("CARGO_TARGET_TMPDIR")).join("curator-java");
        let _ = std::fs::remove_dir_all(&classes);
        let mut javac = Command::new("javac");
        javac.arg("-cp").arg(jars.join(":")).arg("-d").arg(&classes);
        for file in ["CuratorPeer.java", "ZookeeperInstance.java"] {
            javac.arg(format!("{ROOT}/tests/interop/curator/{file}"));
        }
        let (code, out, err) = run_command(javac, Duration::from_secs(120));
        if code != Some(0) {
            return Err(format!("javac failed ({code:?}): {out}{err}"));
        }
        Ok(format!("{}:{}", classes.display(), jars.join(":")))
    });
    match built {
        Ok(classpath) => classpath,
        Err(why) => panic!("no Apache Curator to test with: {why}"),
    }
}

fn java(args: &[&str]) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-cp")
        .arg(java_classpath())
        .arg("CuratorPeer")
        .args(args);
    cmd
}

/// One instance as Curator's `queryForInstances` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    id: String,
    address: String,
    port: String,
    ssl_port: String,
    uri: String,
    metadata: BTreeMap<String, String>,
}

/// Curator's `queryForInstances(name)` under `base`, run by the Java side.
fn curator_query(connect: &str, base: &str, name: &str) -> Vec<Found> {
    let (code, out, err) = run_command(
        java(&["query", connect, base, name]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "CuratorPeer query: {out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    let count: usize = lines
        .iter()
        .find_map(|l| l.strip_prefix("done "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `done` line: {out}{err}"));
    let found: Vec<Found> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("instance "))
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            Found {
                id: words[0].to_owned(),
                address: words[1].to_owned(),
                port: words[2].to_owned(),
                ssl_port: words[3].to_owned(),
                uri: words[4].to_owned(),
                metadata: words[5..]
                    .iter()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            }
        })
        .collect();
    assert_eq!(found.len(), count, "{out}");
    found
}

/// Runs `zoorpc ARGS` to its end: exit code and stdout lines.
fn zoorpc(args: &[&str]) -> (Option<i32>, Vec<String>, String) {
    let mut cmd = Command::new(ZOORPC);
    cmd.args(args);
    let (code, out, err) = run_command(cmd, Duration::from_secs(60));
    (code, out.lines().map(str::to_owned).collect(), err)
}
