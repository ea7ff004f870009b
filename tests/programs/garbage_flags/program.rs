//! The programs under test, the garbage they are given, and what a refusal must look like.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{run_command, run_command_bounded};

/// Values no flag or argument of ours can use (the first two no identity, the first three no
/// name).
pub(super) fn garbage() -> Vec<String> {
    vec![
        String::new(),
        "garbage\u{1}\u{7f}".to_owned(),
        "a/b".to_owned(),
        "x".repeat(70_000),
        "1 ".repeat(35_000),
    ]
}

/// Values no number, path, address or URL can be (a name may be any of them).
pub(super) fn not_a_number_path_or_address() -> Vec<String> {
    vec![
        "99999999999999999999".to_owned(),
        "-1".to_owned(),
        "0.5.".to_owned(),
        "%zz".to_owned(),
    ]
}

/// Free text by design: the name the client programs send in `SayHello` (any string is one).
pub(super) const FREE_TEXT: &[(&str, &str)] =
    &[("zoorpc-client", "name"), ("zoorpc-ha-client", "name")];

/// Names that become a znode name (a job's): a number, `%zz` or a long name is a fine name,
/// a `/` is not.
pub(super) const NAMES: &[&str] = &["name", "job-name", "curator-name"];

/// A contender's identity, written as the master node's data: any non-empty printable text.
pub(super) const IDENTITIES: &[&str] = &["address"];

/// Flags whose absence is no error and whose valid value would change what is tested: they are
/// switches, or need a second file (`--tls-key` with `--tls-cert`), so garbage is given alone.
const SWITCHES: &[&str] = &["json", "force", "idempotent", "help", "version"];

/// One program under test: how it is run, its valid arguments, and its flags as `--help` lists
/// them.
pub(super) struct Program {
    pub(super) label: String,
    pub(super) exe: &'static str,
    /// Arguments before the flags (a subcommand, its positional arguments).
    pub(super) leading: Vec<String>,
    /// A valid value for each flag that needs one to run.
    pub(super) valid: Vec<(String, String)>,
}

impl Program {
    pub(super) fn new(
        label: &str,
        exe: &'static str,
        leading: &[&str],
        valid: &[(&str, String)],
    ) -> Program {
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
    pub(super) fn flags(&self) -> BTreeSet<String> {
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
    pub(super) fn run(
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
pub(super) fn check(
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
