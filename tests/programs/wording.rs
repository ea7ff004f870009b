//! What the programs and the README say about what the programs do matches what they do: the
//! HA server's help and errors speak of contending, not registering; the README lists every
//! field `zoorpc ls --json` prints.

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{run_command, spawn_provider, zk};
use zoorpc_testkit::unique_path;

const WAIT: Duration = Duration::from_secs(30);

/// The `--help` text of `flag` of `exe`: its line and the lines continuing it.
fn help_of(exe: &str, flag: &str) -> String {
    let mut cmd = Command::new(exe);
    cmd.arg("--help");
    let (code, out, err) = run_command(cmd, WAIT);
    assert_eq!(code, Some(0), "{exe} --help: {err}");
    let mut lines = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(flag));
    let first = lines.next().unwrap_or_else(|| panic!("no {flag} in {out}"));
    let rest = lines.take_while(|l| !l.trim_start().starts_with('-') && !l.trim().is_empty());
    std::iter::once(first)
        .chain(rest)
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HA server's master node holds `host:port`, TLS or not: its `--tls-cert` help says so (it
/// said the server registers https://, as a provider does).
#[test]
fn tls_cert_help_says_what_each_server_announces() {
    let ha = help_of(env!("CARGO_BIN_EXE_zoorpc-ha-server"), "--tls-cert");
    assert!(
        ha.contains("master node keeps HOST:PORT (no scheme)"),
        "{ha}"
    );
    let provider = help_of(env!("CARGO_BIN_EXE_zoorpc-provider"), "--tls-cert");
    assert!(
        provider.contains("provider registers https://"),
        "{provider}"
    );
}

/// An advertised address that does not reach the server: the provider says it did not
/// register, the HA server that it does not contend (it said "not registered"); neither wrote
/// anything.
#[test]
fn an_unreachable_advertised_address_says_what_each_server_did_not_do() {
    let connect = zk().connect_string();
    let root = unique_path("unreachable-wording");
    let (base, path) = (format!("{root}/registry"), format!("{root}/Hello:1.0.0"));
    let runs = [
        (
            env!("CARGO_BIN_EXE_zoorpc-provider"),
            "--base-path",
            &base,
            "; not registered.",
        ),
        (
            env!("CARGO_BIN_EXE_zoorpc-ha-server"),
            "--path",
            &path,
            "; not contending (not joining the election).",
        ),
    ];
    for (exe, flag, value, says) in runs {
        let mut cmd = Command::new(exe);
        cmd.args(["--zk", &connect, flag, value, "--port", "0"])
            // Loopback too, but the listener is on 127.0.0.1 only: nothing answers there.
            .args(["--advertise-host", "127.0.0.2"]);
        let (code, out, err) = run_command(cmd, WAIT);
        let what = format!("{exe}: {out}{err}");
        assert_eq!(code, Some(1), "{what}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{what}");
        assert!(
            errors[0].starts_with("error: the advertised address http://127.0.0.2:")
                && errors[0].contains(says),
            "{what}"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(common::raw_client(&connect));
    assert_eq!(rt.block_on(client.check_stat(&root)).unwrap(), None);
}

/// The field names in the README's `zoorpc ls` `--json` list.
fn readme_ls_fields() -> BTreeSet<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("`--json`: one document, `{\"root\"")
        .expect("the README lists ls --json's fields");
    let list = &readme[start + "`--json`: one document, `".len()..];
    let list = &list[..list.find('`').expect("the list ends")];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Every field `zoorpc ls --json` prints is in the README's list, and nothing else is (it left
/// out `unreadable`).
#[test]
fn the_readme_lists_every_field_of_ls_json() {
    let connect = zk().connect_string();
    let root = unique_path("ls-json-fields");
    let _provider = spawn_provider(&connect, &format!("{root}/registry"), 0, &[]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args(["ls", &root, "--json", "--zk", &connect]);
    let (code, out, err) = run_command(cmd, WAIT);
    assert_eq!(code, Some(0), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys = |value: &serde_json::Value| -> Vec<String> {
        value.as_object().unwrap().keys().cloned().collect()
    };
    let service = &doc["services"][0];
    let provider = &service["providers"][0];
    let printed: BTreeSet<String> = [keys(&doc), keys(service), keys(provider)]
        .concat()
        .into_iter()
        .collect();
    assert_eq!(printed, readme_ls_fields(), "{out}");
}
