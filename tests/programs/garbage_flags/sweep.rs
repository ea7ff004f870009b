//! The sweep's parts: the programs with their valid arguments, the cases (a flag or a
//! positional argument given one garbage value), running them four at a time.

use std::path::Path;

use super::program::{
    FREE_TEXT, IDENTITIES, NAMES, Program, check, garbage, not_a_number_path_or_address,
};
use crate::common::soak;

/// Valid values of the flags the programs need to run.
pub(super) struct Valid {
    pub(super) connect: String,
    pub(super) root: String,
    pub(super) base: String,
    pub(super) election: String,
    pub(super) auth: String,
}

impl Valid {
    /// Valid values under a new root named after `name`, the credential file in `dir`.
    pub(super) fn new(name: &str, dir: &Path) -> Valid {
        let root = zoorpc_testkit::unique_path(name);
        let auth = dir.join("zk-auth");
        std::fs::write(&auth, "svc:secret\n").unwrap();
        Valid {
            connect: crate::common::zk().connect_string(),
            base: format!("{root}/registry"),
            election: format!("{root}/master"),
            auth: auth.to_str().unwrap().to_owned(),
            root,
        }
    }

    /// The valid `flags` among those every program may take.
    fn with(&self, flags: &[&str]) -> Vec<(&'static str, String)> {
        let all: [(&'static str, String); 6] = [
            ("zk", self.connect.clone()),
            ("base-path", self.base.clone()),
            ("path", self.election.clone()),
            ("port", "0".to_owned()),
            ("zk-auth-file", self.auth.clone()),
            ("listen", "127.0.0.1:0".to_owned()),
        ];
        all.into_iter().filter(|(f, _)| flags.contains(f)).collect()
    }
}

/// Every program and subcommand with the valid arguments it runs with.
pub(super) fn programs(valid: &Valid) -> Vec<Program> {
    let with = |flags: &[&str]| valid.with(flags);
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    let provider = with(&["zk", "base-path", "port", "zk-auth-file"]);
    let client = with(&["zk", "base-path", "zk-auth-file"]);
    let contender = with(&["zk", "path", "zk-auth-file"]);
    let (root, election) = (valid.root.as_str(), valid.election.as_str());
    vec![
        Program::new(
            "zoorpc-provider",
            env!("CARGO_BIN_EXE_zoorpc-provider"),
            &[],
            &provider,
        ),
        Program::new(
            "zoorpc-echo",
            env!("CARGO_BIN_EXE_zoorpc-echo"),
            &[],
            &provider,
        ),
        Program::new(
            "zoorpc-client",
            env!("CARGO_BIN_EXE_zoorpc-client"),
            &[],
            &client,
        ),
        Program::new(
            "zoorpc-ha-server",
            env!("CARGO_BIN_EXE_zoorpc-ha-server"),
            &[],
            &with(&["zk", "path", "port", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc-ha-client",
            env!("CARGO_BIN_EXE_zoorpc-ha-client"),
            &[],
            &contender,
        ),
        Program::new(
            "zoorpc-master-job",
            env!("CARGO_BIN_EXE_zoorpc-master-job"),
            &[],
            &contender,
        ),
        Program::new(
            "zoorpc-zookeeper",
            env!("CARGO_BIN_EXE_zoorpc-zookeeper"),
            &[],
            &with(&["port"]),
        ),
        Program::new("zoorpc zk", zoorpc, &["zk"], &with(&["port"])),
        Program::new("zoorpc provider", zoorpc, &["provider"], &client),
        Program::new("zoorpc call", zoorpc, &["call", "world"], &client),
        Program::new(
            "zoorpc ls",
            zoorpc,
            &["ls", root],
            &with(&["zk", "zk-auth-file"]),
        ),
        Program::new("zoorpc watch", zoorpc, &["watch"], &client),
        Program::new(
            "zoorpc master",
            zoorpc,
            &["master", election],
            &with(&["zk", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc proxy",
            zoorpc,
            &["proxy"],
            &with(&["zk", "base-path", "listen", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc xds",
            zoorpc,
            &["xds"],
            &with(&["zk", "listen", "zk-auth-file"]),
        ),
    ]
}

/// Positional arguments given garbage (a program, its arguments with one slot replaced).
pub(super) fn positional(valid: &Valid) -> Vec<Program> {
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    let mut positional = Vec::new();
    for value in garbage().into_iter().chain(not_a_number_path_or_address()) {
        let (value, election) = (value.clone(), valid.election.clone());
        for (label, leading) in [
            ("zoorpc ls PATH", vec!["ls".to_owned(), value.clone()]),
            (
                "zoorpc master PATH",
                vec!["master".to_owned(), value.clone()],
            ),
            (
                "zoorpc designate PATH",
                vec![
                    "designate".to_owned(),
                    value.clone(),
                    "127.0.0.1:1".to_owned(),
                ],
            ),
            (
                "zoorpc designate ADDRESS",
                vec![
                    "designate".to_owned(),
                    election,
                    value.clone(),
                    "--force".to_owned(),
                ],
            ),
        ] {
            positional.push(Program {
                label: format!("{label}={:?}", super::short_value(&value)),
                exe: zoorpc,
                leading,
                valid: valid
                    .with(&["zk"])
                    .into_iter()
                    .map(|(f, v)| (f.to_owned(), v))
                    .collect(),
            });
        }
    }
    positional
}

/// One case: what it is called, the program, the flag given garbage (none: a positional
/// argument), the value.
pub(super) type Case<'a> = (String, &'a Program, Option<String>, String);

/// The garbage values a flag is given.
fn values_for(flag: &str) -> Vec<String> {
    let mut values = garbage();
    if IDENTITIES.contains(&flag) {
        values.truncate(2);
    } else if NAMES.contains(&flag) {
        values.truncate(3);
        values.push("1 ".repeat(35_000));
    } else {
        values.extend(not_a_number_path_or_address());
    }
    values
}

/// The cases: a soak run (`make soak`) gives every flag every value; `make test` every third
/// value, a different third for the next flag, so each flag and each value is still tried.
pub(super) fn cases<'a>(programs: &'a [Program], positional: &'a [Program]) -> Vec<Case<'a>> {
    let stride = if soak() { 1 } else { 3 };
    let mut cases = Vec::new();
    let mut nth_flag = 0;
    for program in programs {
        let flags = program.flags();
        assert!(
            flags.contains("zk")
                || program.label.contains("zk")
                || program.label.contains("zookeeper"),
            "{}: no flags read from --help: {flags:?}",
            program.label
        );
        eprintln!("{}: {flags:?}", program.label);
        for flag in flags {
            if FREE_TEXT.contains(&(program.label.as_str(), flag.as_str())) {
                continue;
            }
            nth_flag += 1;
            for (i, value) in values_for(&flag).into_iter().enumerate() {
                if (nth_flag + i) % stride == 0 {
                    let what = format!(
                        "{} --{flag}={:?}",
                        program.label,
                        super::short_value(&value)
                    );
                    cases.push((what, program, Some(flag.clone()), value));
                }
            }
        }
    }
    for program in positional.iter().step_by(stride) {
        cases.push((program.label.clone(), program, None, String::new()));
    }
    cases
}

/// Runs every case, four at a time (each is a process that should end at once): the problems.
pub(super) fn run_all(cases: &[Case<'_>], tmp: &Path) -> Vec<String> {
    run_all_with(cases, tmp, |what, run| check(what, run.clone()))
}

/// The output of one run: exit status, stdout, stderr, whether it had to be killed.
pub(super) type Run = (Option<i32>, String, String, bool);

/// [`run_all`] with `check` saying what is wrong with a run, if anything.
pub(super) fn run_all_with(
    cases: &[Case<'_>],
    tmp: &Path,
    check: impl Fn(&str, &Run) -> Option<String> + Sync,
) -> Vec<String> {
    let problems = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((what, program, flag, value)) = cases.get(i) else {
                        break;
                    };
                    if let Some(problem) = check(what, &program.run(flag.as_deref(), value, tmp)) {
                        problems
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(problem);
                    }
                }
            });
        }
    });
    problems.into_inner().unwrap_or_else(|p| p.into_inner())
}
