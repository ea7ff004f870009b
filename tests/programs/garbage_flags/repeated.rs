//! A flag that takes one value, given twice (or with its alias, or a global flag before and after
//! the subcommand), is a usage error in every program: one `error:` line naming the flag, status
//! 2, nothing started. A program that took the last value registered, contended or called with
//! a value the user may not have meant. Flags meant to repeat collect every value.

use std::time::Duration;

use zoorpc_testkit::ChildProcess;

use super::program::{Program, check};
use super::sweep;
use crate::common::zk;

/// Each program with one of its valid flags given a second time, and the aliases and globals
/// given with their flag.
fn repeated(valid: &sweep::Valid) -> Vec<Program> {
    let mut cases = Vec::new();
    for program in sweep::programs(valid) {
        for (flag, value) in &program.valid {
            let mut twice = program.valid.clone();
            twice.push((flag.clone(), value.clone()));
            cases.push(Program {
                label: format!("{} --{flag} twice", program.label),
                exe: program.exe,
                leading: program.leading.clone(),
                valid: twice,
            });
        }
    }
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    let job = env!("CARGO_BIN_EXE_zoorpc-master-job");
    let (zk, path) = (
        ("zk", valid.connect.clone()),
        ("path", valid.election.clone()),
    );
    let base = ("base-path", valid.base.clone());
    let flag = |name: &'static str, value: &str| (name, value.to_owned());
    cases.extend([
        Program::new(
            "zoorpc call --count --calls",
            zoorpc,
            &["call", "world"],
            &[zk.clone(), base, flag("count", "1"), flag("calls", "2")],
        ),
        Program::new(
            "zoorpc-master-job --job-interval-ms --interval-ms",
            job,
            &[],
            &[
                zk.clone(),
                path.clone(),
                flag("interval-ms", "100"),
                flag("job-interval-ms", "200"),
            ],
        ),
        Program::new(
            "zoorpc-master-job --job-name --name",
            job,
            &[],
            &[zk.clone(), path, flag("job-name", "a"), flag("name", "b")],
        ),
        Program::new(
            "zoorpc --log-level ls --log-level",
            zoorpc,
            &["--log-level", "info", "ls", valid.root.as_str()],
            &[zk, flag("log-level", "debug")],
        ),
    ]);
    cases
}

#[test]
fn a_flag_given_twice_or_with_its_alias_is_a_usage_error_in_every_program() {
    let dir = tempfile::tempdir().unwrap();
    let valid = sweep::Valid::new("repeated-flags", dir.path());
    let programs = repeated(&valid);
    let cases: Vec<sweep::Case<'_>> = programs
        .iter()
        .map(|program| (program.label.clone(), program, None, String::new()))
        .collect();
    let problems = sweep::run_all_with(&cases, dir.path(), |what, run| {
        const SAYS: &str = "cannot be used multiple times; see --help";
        check(what, run.clone()).or_else(|| {
            (!run.2.contains(SAYS)).then(|| format!("{what}: does not say {SAYS:?}: {}", run.2))
        })
    });
    super::assert_none_misbehaved(&problems, cases.len());
}

/// `--service` and `--master` of `zoorpc xds` and `--scrape` of `zoorpc console` take one
/// value each time they are given, and every one counts.
#[test]
fn flags_meant_to_repeat_still_repeat() {
    let connect = zk().connect_string();
    let root = zoorpc_testkit::unique_path("repeating-flags");
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    let runs: [(&str, Vec<String>, &str); 2] = [
        (
            "xds",
            vec![
                "--listen=127.0.0.1:0".into(),
                format!("--service=a={root}/a"),
                format!("--service=b={root}/b"),
                format!("--master=m={root}/m"),
                format!("--master=n={root}/n"),
            ],
            "listening ",
        ),
        (
            "console",
            vec![
                "--listen=127.0.0.1:0".into(),
                format!("--root={root}"),
                "--scrape=127.0.0.1:1".into(),
                "--scrape=127.0.0.1:2".into(),
            ],
            "console at ",
        ),
    ];
    for (command, args, serving) in runs {
        let mut cmd = std::process::Command::new(zoorpc);
        cmd.args([command, "--zk", &connect]).args(&args);
        let mut process = ChildProcess::spawn(command, cmd).unwrap();
        let line = process.wait_for_line(serving, Duration::from_secs(30));
        assert!(line.is_ok(), "zoorpc {command} {args:?}: {line:?}");
    }
}
