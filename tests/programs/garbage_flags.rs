//! Every flag of every program, given garbage: one clear `error:` line, a
//! non-zero exit, no panic, nothing left behind (no znode, no temp file).
//!
//! The flags are read from each program's own `--help`, so a flag added later is swept too.
//! Each program is started with valid arguments (it would run) plus one garbage value in place
//! of one of them: a value accepted where it should not be shows up as a program that keeps
//! running, registers, or prints a second line.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{raw_client, run_command, run_command_bounded, soak, zk};

/// Values no flag or argument of ours can use (the first two no identity, the first three no
/// name).
fn garbage() -> Vec<String> {
    vec![
        String::new(),
        "garbage\u{1}\u{7f}".to_owned(),
        "a/b".to_owned(),
        "x".repeat(70_000),
        "1 ".repeat(35_000),
    ]
}

/// Values no number, path, address or URL can be (a name may be any of them).
fn not_a_number_path_or_address() -> Vec<String> {
    vec![
        "99999999999999999999".to_owned(),
        "-1".to_owned(),
        "0.5.".to_owned(),
        "%zz".to_owned(),
    ]
}

/// Free text by design: the name the client programs send in `SayHello` (any string is one).
const FREE_TEXT: &[(&str, &str)] = &[("zoorpc-client", "name"), ("zoorpc-ha-client", "name")];

/// Names that become a znode name (a job's): a number, `%zz` or a long name is a fine name,
/// a `/` is not.
const NAMES: &[&str] = &["name", "job-name", "curator-name"];

/// A contender's identity, written as the master node's data: any non-empty printable text.
const IDENTITIES: &[&str] = &["address"];

/// Flags whose absence is no error and whose valid value would change what is tested: they are
/// switches, or need a second file (`--tls-key` with `--tls-cert`), so garbage is given alone.
const SWITCHES: &[&str] = &["json", "force", "idempotent", "help", "version"];

/// One program under test: how it is run, its valid arguments, and its flags as `--help` lists
/// them.
struct Program {
    label: String,
    exe: &'static str,
    /// Arguments before the flags (a subcommand, its positional arguments).
    leading: Vec<String>,
    /// A valid value for each flag that needs one to run.
    valid: Vec<(String, String)>,
}

impl Program {
    fn new(label: &str, exe: &'static str, leading: &[&str], valid: &[(&str, String)]) -> Program {
        Program {
            label: label.to_owned(),
            exe,
            leading: leading.iter().map(|s| s.to_string()).collect(),
            valid: valid
                .iter()
                .map(|(f, v)| (f.to_string(), v.clone()))
                .collect(),
        }
    }

    /// The flags `--help` lists that take a value.
    fn flags(&self) -> BTreeSet<String> {
        let mut cmd = Command::new(self.exe);
        cmd.args(&self.leading[..self.leading.len().min(1)])
            .arg("--help");
        let (_, stdout, stderr) = run_command(cmd, Duration::from_secs(10));
        let text = format!("{stdout}\n{stderr}");
        let mut flags = BTreeSet::new();
        for (i, _) in text.match_indices("--") {
            let rest = &text[i + 2..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let after = &rest[name.len()..];
            // `--flag VALUE`, `--flag <VALUE>`: takes a value; `--flag ]`, `--flag  text`: no.
            let takes_value = after.starts_with(" <")
                || after.starts_with('=')
                || (after.starts_with(' ')
                    && after[1..]
                        .chars()
                        .next()
                        .is_some_and(|c| !c.is_whitespace() && c != ']' && c != '-'));
            if !name.is_empty() && takes_value && !SWITCHES.contains(&name.as_str()) {
                flags.insert(name);
            }
        }
        flags
    }

    /// Runs with the valid arguments, `flag` (if any) replaced by `value`.
    fn run(
        &self,
        flag: Option<&str>,
        value: &str,
        tmp: &Path,
    ) -> (Option<i32>, String, String, bool) {
        let mut cmd = Command::new(self.exe);
        cmd.args(&self.leading)
            .env("TMPDIR", tmp)
            .env_remove("ZOORPC_ZK")
            .env_remove("ZOORPC_ZK_AUTH_FILE");
        for (f, v) in &self.valid {
            if Some(f.as_str()) != flag {
                cmd.arg(format!("--{f}={v}"));
            }
        }
        if let Some(flag) = flag {
            cmd.arg(format!("--{flag}={value}"));
        }
        run_command_bounded(cmd, Duration::from_secs(20))
    }
}

/// Values only running finds bad: a contender's identity is free text (a designate to one
/// that is not there fails then), and a well-formed host name that resolves nowhere.
fn checked_at_startup(what: &str) -> bool {
    what.starts_with("zoorpc designate ADDRESS")
        || what.ends_with(" --advertise-host=\"99999999999999999999\"")
}

/// What a refused value must look like: a non-zero exit (2 for usage, 1 for a failed start),
/// one `error:` line, no panic, nothing registered or served.
fn check(
    what: &str,
    (code, stdout, stderr, killed): (Option<i32>, String, String, bool),
) -> Option<String> {
    let errors = stderr.lines().filter(|l| l.starts_with("error:")).count();
    let short = |s: &str| s.chars().take(600).collect::<String>();
    let problem = if killed {
        Some("still ran after 20 s (accepted the value?)".to_owned())
    } else if !matches!(code, Some(1) | Some(2)) {
        Some(format!("exit {code:?}"))
    } else if code != Some(2) && !checked_at_startup(what) {
        // Every program's values are checked (clap's parse, the files they name) before
        // anything starts.
        Some(format!(
            "exit {code:?}, not 2 (a bad value is a usage error)"
        ))
    } else if stderr.contains("panicked") {
        Some("panicked".to_owned())
    } else if errors != 1 {
        Some(format!("{errors} error lines"))
    } else if let Some(long) = stderr.lines().find(|l| l.len() > 1000) {
        Some(format!("an error line of {} bytes", long.len()))
    } else if stdout
        .lines()
        .any(|l| l.starts_with("registered") || l.starts_with("ok ") || l.starts_with("role "))
    {
        Some("it ran".to_owned())
    } else {
        None
    };
    problem.map(|p| {
        format!(
            "{what}: {p}\n  stdout: {}\n  stderr: {}",
            short(&stdout),
            short(&stderr)
        )
    })
}

#[test]
fn every_flag_of_every_program_refuses_garbage_with_one_line_and_leaves_nothing_behind() {
    let connect = zk().connect_string();
    let root = zoorpc_testkit::unique_path("garbage-sweep");
    let base = format!("{root}/registry");
    let election = format!("{root}/master");
    let dir = tempfile::tempdir().unwrap();
    // The programs' temp dir: whatever they leave there is left behind.
    let tmp = tempfile::tempdir().unwrap();
    let auth = dir.path().join("zk-auth");
    std::fs::write(&auth, "svc:secret\n").unwrap();
    let auth = auth.to_str().unwrap().to_owned();
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    let with = |flags: &[&str]| -> Vec<(&'static str, String)> {
        let all: [(&'static str, String); 6] = [
            ("zk", connect.clone()),
            ("base-path", base.clone()),
            ("path", election.clone()),
            ("port", "0".to_owned()),
            ("zk-auth-file", auth.clone()),
            ("listen", "127.0.0.1:0".to_owned()),
        ];
        all.into_iter().filter(|(f, _)| flags.contains(f)).collect()
    };
    let provider = with(&["zk", "base-path", "port", "zk-auth-file"]);
    let programs = vec![
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
            &with(&["zk", "base-path", "zk-auth-file"]),
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
            &with(&["zk", "path", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc-master-job",
            env!("CARGO_BIN_EXE_zoorpc-master-job"),
            &[],
            &with(&["zk", "path", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc-zookeeper",
            env!("CARGO_BIN_EXE_zoorpc-zookeeper"),
            &[],
            &with(&["port"]),
        ),
        Program::new("zoorpc zk", zoorpc, &["zk"], &with(&["port"])),
        Program::new(
            "zoorpc provider",
            zoorpc,
            &["provider"],
            &with(&["zk", "base-path", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc call",
            zoorpc,
            &["call", "world"],
            &with(&["zk", "base-path", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc ls",
            zoorpc,
            &["ls", &root],
            &with(&["zk", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc watch",
            zoorpc,
            &["watch"],
            &with(&["zk", "base-path", "zk-auth-file"]),
        ),
        Program::new(
            "zoorpc master",
            zoorpc,
            &["master", &election],
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
    ];
    // Positional arguments given garbage (a program, its arguments with one slot replaced).
    let mut positional: Vec<Program> = Vec::new();
    for value in garbage().into_iter().chain(not_a_number_path_or_address()) {
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
                    election.clone(),
                    value.clone(),
                    "--force".to_owned(),
                ],
            ),
        ] {
            positional.push(Program {
                label: format!("{label}={:?}", short_value(&value)),
                exe: zoorpc,
                leading,
                valid: with(&["zk"])
                    .into_iter()
                    .map(|(f, v)| (f.to_owned(), v))
                    .collect(),
            });
        }
    }

    // A soak run (`make soak`) gives every flag every value; `make test` every third value,
    // a different third for the next flag, so each flag and each value is still tried.
    let stride = if soak() { 1 } else { 3 };
    let mut cases: Vec<(String, &Program, Option<String>, String)> = Vec::new();
    let mut nth_flag = 0;
    for program in &programs {
        let flags = program.flags();
        assert!(
            flags.contains("zk")
                || program.label.contains("zk")
                || program.label.contains("zookeeper"),
            "{}: no flags read from --help: {flags:?}",
            program.label
        );
        for flag in flags {
            if FREE_TEXT.contains(&(program.label.as_str(), flag.as_str())) {
                continue;
            }
            let mut values = garbage();
            if IDENTITIES.contains(&flag.as_str()) {
                values.truncate(2);
            } else if NAMES.contains(&flag.as_str()) {
                values.truncate(3);
                values.push("1 ".repeat(35_000));
            } else {
                values.extend(not_a_number_path_or_address());
            }
            nth_flag += 1;
            for (i, value) in values.into_iter().enumerate() {
                if (nth_flag + i) % stride != 0 {
                    continue;
                }
                cases.push((
                    format!("{} --{flag}={:?}", program.label, short_value(&value)),
                    program,
                    Some(flag.clone()),
                    value,
                ));
            }
        }
    }
    for (i, program) in positional.iter().enumerate() {
        if i % stride != 0 {
            continue;
        }
        cases.push((program.label.clone(), program, None, String::new()));
    }

    for program in &programs {
        eprintln!("{}: {:?}", program.label, program.flags());
    }
    eprintln!("{} cases", cases.len());
    // Four at a time: each case is a process that should end at once.
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
                    if let Some(problem) =
                        check(what, program.run(flag.as_deref(), value, tmp.path()))
                    {
                        problems.lock().unwrap().push(problem);
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} of {} cases misbehaved:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );

    // Nothing left behind: no node under the sweep's root, no new temp entry.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let raw = runtime.block_on(raw_client(&connect));
    let left = runtime.block_on(raw.check_stat(&root)).unwrap();
    assert!(left.is_none(), "the sweep left {root} in ZooKeeper");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert!(left.is_empty(), "the sweep left temp entries: {left:?}");
}

fn short_value(value: &str) -> String {
    if value.len() > 40 {
        format!("{}... ({} bytes)", &value[..20], value.len())
    } else {
        value.to_owned()
    }
}

/// An argument that is not UTF-8 (a file name from another locale, a stray byte): one error
/// line, status 2, never a panic (the flag-parsed programs panicked in `std::env::args`).
#[test]
fn an_argument_that_is_not_utf8_is_one_error_line_in_every_program() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/base\xff\xfe");
    let programs: [(&str, &[&str]); 9] = [
        (env!("CARGO_BIN_EXE_zoorpc-provider"), &["--base-path"]),
        (env!("CARGO_BIN_EXE_zoorpc-echo"), &["--base-path"]),
        (env!("CARGO_BIN_EXE_zoorpc-client"), &["--base-path"]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-server"), &["--path"]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-client"), &["--path"]),
        (env!("CARGO_BIN_EXE_zoorpc-master-job"), &["--path"]),
        (env!("CARGO_BIN_EXE_zoorpc-zookeeper"), &["--port"]),
        (env!("CARGO_BIN_EXE_zoorpc"), &["watch", "--base-path"]),
        (env!("CARGO_BIN_EXE_zoorpc"), &["ls"]),
    ];
    for (exe, leading) in programs {
        let mut cmd = Command::new(exe);
        cmd.args(["--zk", "127.0.0.1:1"]);
        if leading.len() > 1 || leading[0] == "ls" {
            cmd = Command::new(exe);
            cmd.args(leading).arg(bad).args(["--zk", "127.0.0.1:1"]);
        } else {
            cmd.args(leading).arg(bad);
        }
        let (code, stdout, stderr, killed) = run_command_bounded(cmd, Duration::from_secs(20));
        let what = format!("{exe} {leading:?}: {stderr}");
        assert!(!killed, "{what}");
        assert_eq!(code, Some(2), "{what}");
        assert!(!stderr.contains("panicked"), "{what}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{what}"
        );
        assert!(stdout.is_empty(), "{what}: {stdout}");
    }
}
