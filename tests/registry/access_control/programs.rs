//! The programs and the credential: from a flag or the environment, an unusable file refused before starting, the zoorpc command's changes, a contender without it.

use super::*;

/// The programs: `--zk-auth-file` and `ZOORPC_ZK_AUTH_FILE` authenticate; a provider without
/// the credential prints one line naming the option and exits 1; a bad file is a flag error.
#[test]
fn programs_take_the_credential_from_a_flag_or_the_environment() {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(open_test_root());
    let (_dir, file) = auth_file();
    let file = file.to_str().unwrap().to_owned();
    let connect = zk().connect_string();
    let base = unique_path("acl-programs");
    let provider = |extra: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"));
        cmd.args(["--zk", &connect, "--base-path", &base, "--port", "0"])
            .args(["--session-timeout-ms", "1500"])
            .args(extra)
            .env_remove("ZOORPC_ZK_AUTH_FILE");
        if let Some(env) = env {
            cmd.env("ZOORPC_ZK_AUTH_FILE", env);
        }
        cmd
    };
    let mut by_flag =
        ChildProcess::spawn("provider:flag", provider(&["--zk-auth-file", &file], None)).unwrap();
    by_flag
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    let mut by_env = ChildProcess::spawn("provider:env", provider(&[], Some(&file))).unwrap();
    by_env
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();

    let (code, _, stderr) = run_command(provider(&[], None), Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("NoAuth") && lines[0].contains("--zk-auth-file"),
        "{stderr}"
    );

    let missing = format!("{file}.missing");
    let (code, _, stderr) = run_command(
        provider(&["--zk-auth-file", &missing], None),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&missing) && stderr.contains("cannot read"),
        "{stderr}"
    );
    std::fs::write(&missing, "no-colon-here").unwrap();
    let (code, _, stderr) = run_command(
        provider(&["--zk-auth-file", &missing], None),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("user:password") && !stderr.contains("no-colon-here"),
        "{stderr}"
    );

    // The consumer program reads without a credential.
    let (code, stdout, stderr) = run_command(
        {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-client"));
            cmd.args(["--zk", &connect, "--base-path", &base, "--calls", "2"])
                .args(["--interval-ms", "0"])
                .env_remove("ZOORPC_ZK_AUTH_FILE");
            cmd
        },
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("calls=2 ok=2 failed=0"), "{stdout}");
    for mut p in [by_flag, by_env] {
        p.signal(libc::SIGTERM).unwrap();
        p.wait_for_line("stopped", Duration::from_secs(10)).unwrap();
    }
}

/// Every program refuses an unusable credential file (flag or environment) before it starts:
/// one error line naming the file, never its contents, exit 2.
#[test]
fn every_program_refuses_an_unusable_credential_file_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let malformed = dir.path().join("malformed");
    std::fs::write(&malformed, "only-a-user-no-colon").unwrap();
    let zoorpc = env!("CARGO_BIN_EXE_zoorpc");
    let programs: [(&str, &[&str]); 13] = [
        (env!("CARGO_BIN_EXE_zoorpc-provider"), &[]),
        (env!("CARGO_BIN_EXE_zoorpc-echo"), &[]),
        (env!("CARGO_BIN_EXE_zoorpc-client"), &[]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-server"), &[]),
        (env!("CARGO_BIN_EXE_zoorpc-ha-client"), &[]),
        (env!("CARGO_BIN_EXE_zoorpc-master-job"), &[]),
        (zoorpc, &["provider"]),
        (zoorpc, &["call", "world"]),
        (zoorpc, &["ls"]),
        (zoorpc, &["watch"]),
        (zoorpc, &["master", "/soa/master/x"]),
        (
            zoorpc,
            &["designate", "/soa/master/x", "127.0.0.1:1", "--force"],
        ),
        (
            zoorpc,
            &[
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--base-path",
                "/registry",
            ],
        ),
    ];
    for (program, subcommand) in programs {
        for file in [&missing, &malformed] {
            let file = file.to_str().unwrap();
            for by_env in [false, true] {
                let mut cmd = Command::new(program);
                // Nothing listens on port 1: a program that tried to connect would say so.
                cmd.args(subcommand)
                    .args(["--zk", "127.0.0.1:1"])
                    .env_remove("ZOORPC_ZK_AUTH_FILE");
                if by_env {
                    cmd.env("ZOORPC_ZK_AUTH_FILE", file);
                } else {
                    cmd.args(["--zk-auth-file", file]);
                }
                let (code, stdout, stderr) = run_command(cmd, Duration::from_secs(10));
                let what = format!("{program} {subcommand:?} {file} env={by_env}: {stderr}");
                assert_eq!(code, Some(2), "{what}");
                assert!(stdout.is_empty(), "{what}: {stdout}");
                let errors: Vec<&str> =
                    stderr.lines().filter(|l| l.starts_with("error:")).collect();
                assert_eq!(errors.len(), 1, "{what}");
                assert!(errors[0].contains(file), "{what}");
                assert!(!stderr.contains("only-a-user-no-colon"), "{what}");
                assert!(!stderr.contains("could not reach"), "{what}");
            }
        }
    }
}

/// The `zoorpc` command takes the credential too: `zoorpc provider --zk-auth-file` registers a
/// node a stranger cannot delete, and `zoorpc designate` on an election whose companion an
/// authenticated HA server wrote needs the credential (without it: one line naming NoAuth and
/// the option, exit 1, nothing changed); with it, the handover is asked for.
#[test]
fn the_zoorpc_command_takes_the_credential_for_what_it_changes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(open_test_root());
    let (_dir, file) = auth_file();
    let file = file.to_str().unwrap().to_owned();
    let connect = zk().connect_string();
    let base = unique_path("acl-zoorpc-provider");
    let mut provider = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
        cmd.args(["provider", "--zk", &connect, "--base-path", &base])
            .args(["--session-timeout-ms", "1500", "--zk-auth-file", &file])
            .env_remove("ZOORPC_ZK_AUTH_FILE");
        ChildProcess::spawn("zoorpc provider", cmd).unwrap()
    };
    provider
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    let stranger = runtime.block_on(raw_client(&connect));
    let children = runtime.block_on(stranger.list_children(&base)).unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    let node = format!("{base}/{}", children[0]);
    assert_no_auth(
        "a stranger deleting zoorpc provider's node",
        runtime.block_on(stranger.delete(&node, None)),
    );

    // Two authenticated HA servers contend; designate the standby.
    let path = unique_path("acl-zoorpc-designate");
    let ha = |name: &'static str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
        cmd.args(["--zk", &connect, "--path", &path, "--port", "0"])
            .args(["--session-timeout-ms", "2000", "--zk-auth-file", &file])
            .env_remove("ZOORPC_ZK_AUTH_FILE");
        let mut process = ChildProcess::spawn(name, cmd).unwrap();
        let line = process
            .wait_for_line("listening ", Duration::from_secs(20))
            .unwrap();
        let address = line["listening ".len()..].to_owned();
        (process, address)
    };
    let (mut first, first_address) = ha("ha-1");
    first
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let (_second, second_address) = ha("ha-2");
    let designate = |with_credential: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
        cmd.args(["designate", &path, &second_address, "--zk", &connect])
            .env_remove("ZOORPC_ZK_AUTH_FILE");
        if with_credential {
            cmd.args(["--zk-auth-file", &file]);
        }
        run_command(cmd, Duration::from_secs(30))
    };
    let (code, stdout, stderr) = designate(false);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("NoAuth") && errors[0].contains("--zk-auth-file"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET), "{stderr}");
    let holder = runtime.block_on(stranger.get_data(&path)).unwrap().0;
    assert_eq!(String::from_utf8_lossy(&holder), first_address);

    let (code, stdout, stderr) = designate(true);
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert!(stdout.contains("designated"), "{stdout}");
    // The designee takes over (the handover the credential allowed).
    let what = format!("{second_address} holding the election");
    runtime.block_on(eventually(&what, Duration::from_secs(20), || async {
        match stranger.get_data(&path).await {
            Ok((holder, _)) if holder == second_address.as_bytes() => Ok(()),
            Ok((holder, _)) => Err(String::from_utf8_lossy(&holder).into_owned()),
            Err(e) => Err(e.to_string()),
        }
    }));
    provider.signal(libc::SIGTERM).unwrap();
    provider
        .wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();
}

/// A contender without the credential on an election an identity owns: it cannot take over,
/// so it says so in one line and exits 1, whether the node is vacant when it starts or it was
/// standing by when the master left (it used to retry silently for ever, deaf to SIGTERM).
#[test]
fn a_contender_without_the_credential_says_noauth_and_exits_instead_of_hanging() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(open_test_root());
    let (_dir, file) = auth_file();
    let file = file.to_str().unwrap().to_owned();
    let connect = zk().connect_string();
    let path = format!("{}/Acl:1.0.0", unique_path("acl-contender"));
    let ha = |credential: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-ha-server"));
        cmd.args(["--zk", &connect, "--path", &path, "--port", "0"])
            .args(["--session-timeout-ms", "2000"])
            .env_remove("ZOORPC_ZK_AUTH_FILE");
        if credential {
            cmd.args(["--zk-auth-file", &file]);
        }
        cmd
    };
    // The owner holds the election; a stranger stands by.
    let mut owner = ChildProcess::spawn("owner", ha(true)).unwrap();
    owner
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    let mut stranger_cmd = ha(false);
    stranger_cmd.stderr(std::process::Stdio::piped());
    /// Killed on drop, also when an assertion fails.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut guard = Guard(stranger_cmd.spawn().unwrap());
    let stranger = &mut guard.0;
    // The owner leaves: the stranger cannot take the node.
    owner.signal(libc::SIGTERM).unwrap();
    owner
        .wait_for_line("resigned", Duration::from_secs(20))
        .unwrap();
    let status = eventually_blocking("the stranger's exit", Duration::from_secs(20), || {
        stranger.try_wait().unwrap().ok_or("still contending")
    });
    let mut stderr = String::new();
    use std::io::Read;
    stranger
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("NoAuth") && errors[0].contains("--zk-auth-file"),
        "{stderr}"
    );

    // The node vacant from the start: the same line at once.
    let (code, _, stderr) = run_command(ha(false), Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("NoAuth"), "{stderr}");
    // And the master-job program too.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc-master-job"));
    cmd.args(["--zk", &connect, "--path", &path, "--interval-ms", "500"])
        .env_remove("ZOORPC_ZK_AUTH_FILE");
    let (code, _, stderr) = run_command(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("NoAuth"), "{stderr}");
}
