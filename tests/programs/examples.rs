//! The examples' command lines: the learn_* examples answer `--help` and wrong arguments with
//! their usage line (status 0 and 2), the demo, bench and chaos programs take the shared
//! `--log-level` and refuse a bad number in the shared parsers' words.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::run_command;

const EXAMPLES: &[&str] = &[
    "learn_call",
    "learn_serve",
    "learn_active_standby",
    "failover",
    "bench",
    "chaos",
];

/// The example `name`, built (all of them, once) with the cargo running the tests: cargo
/// builds examples only for a whole `cargo test`, not for `--test programs`.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        for example in EXAMPLES {
            cargo.args(["--example", example]);
        }
        let (code, _, stderr) = run_command(cargo, Duration::from_secs(1200));
        assert_eq!(code, Some(0), "building the examples: {stderr}");
        // target/debug/deps/programs-<hash> -> target/debug/examples
        let exe = std::env::current_exe().unwrap();
        exe.parent().unwrap().parent().unwrap().join("examples")
    });
    dir.join(name)
}

fn run(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(example(name));
    cmd.args(args);
    run_command(cmd, Duration::from_secs(30))
}

#[test]
fn the_learn_examples_answer_help_and_wrong_arguments_with_their_usage_line() {
    for name in ["learn_call", "learn_serve", "learn_active_standby"] {
        let (code, stdout, stderr) = run(name, &["--help"]);
        let what = format!("{name} --help: {stdout:?} {stderr:?}");
        assert_eq!(code, Some(0), "{what}");
        assert!(
            stdout.starts_with(&format!("usage: {name} [HOST:PORT]")),
            "{what}"
        );
        let wrong: [&[&str]; 4] = [
            &["bogus"],
            &["--zk", "127.0.0.1:2181"],
            &["127.0.0.1:1", "bogus"],
            &["127.0.0.1:1", "server", "more"],
        ];
        for args in wrong {
            let (code, stdout, stderr) = run(name, args);
            let what = format!("{name} {args:?}: {stdout:?} {stderr:?}");
            assert_eq!(code, Some(2), "{what}");
            assert_eq!(stderr.lines().count(), 1, "{what}");
            assert!(stderr.starts_with(&format!("usage: {name} ")), "{what}");
            assert!(stdout.is_empty(), "{what}");
        }
    }
}

#[test]
fn the_demo_bench_and_chaos_take_log_level_and_the_shared_number_parsers() {
    for name in ["failover", "bench", "chaos"] {
        let (code, stdout, _) = run(name, &["--help"]);
        assert_eq!(code, Some(0), "{name}");
        assert!(stdout.contains("--log-level <LEVEL>"), "{name}: {stdout}");
        let (code, _, stderr) = run(name, &["--log-level", "loud"]);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.contains("'--log-level <LEVEL>'"), "{name}: {stderr}");
    }
    for (args, expected) in [
        (
            ["--seed", "x"],
            "error: invalid value 'x' for '--seed <N>': expected a whole number from 0 to ",
        ),
        (
            ["--secs", "-1"],
            "error: invalid value '-1' for '--secs <N>': expected a whole number from 1 to ",
        ),
    ] {
        let (code, stdout, stderr) = run("chaos", &args);
        let what = format!("chaos {args:?}: {stdout:?} {stderr:?}");
        assert_eq!(code, Some(2), "{what}");
        assert!(stderr.starts_with(expected), "{what}");
        assert_eq!(stderr.lines().count(), 1, "{what}");
    }
}
