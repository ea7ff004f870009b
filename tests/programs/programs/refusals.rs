//! What the programs refuse before they start: taken ports, bad flags and values, addresses that do not reach them, bad election paths.

use super::*;

#[test]
fn provider_reports_a_taken_port_and_bad_flags() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .args(["--zk", &zk().connect_string(), "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("already in use"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .args(["--zk", "127.0.0.1:2181", "--prot", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: unexpected argument '--prot'")
            && err.contains("'--port'")
            && err.trim_end().ends_with("see --help"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_zoorpc-provider"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("required arguments were not provided: --zk <HOST:PORT"),
        "{err}"
    );
}

/// Every numeric flag of every program, each with values it cannot use: one `error: invalid
/// value` line naming the value, the flag and the range, and status 2. Nothing starts (the
/// connect string points nowhere: the flags are checked first).
#[test]
fn every_numeric_flag_refuses_unusable_values_with_a_clear_error() {
    let zk = ["--zk", "127.0.0.1:1"];
    // Too big for any flag, not numbers, negative, fractional, empty.
    let for_all = ["99999999999999999999", "abc", "-1", "1.5", ""];
    // u64::MAX milliseconds, and one more than a 32-bit count of milliseconds (2^31, which the
    // ZooKeeper client wrapped to the server's minimum session timeout).
    let ms_huge = ["18446744073709551615", "2147483648"];
    // (program, executable, arguments before the flag, [(flag, its own unusable values)])
    type Flags<'a> = &'a [(&'a str, &'a [&'a str])];
    let programs: [(&str, &str, &[&str], Flags); 6] = [
        (
            "provider",
            env!("CARGO_BIN_EXE_zoorpc-provider"),
            &zk,
            &[
                ("port", &["65536", "18446744073709551615"]),
                ("session-timeout-ms", &["0"]),
                ("drain-grace-ms", &[]),
                ("delay-ms", &[]),
                ("weight", &["4294967296", "18446744073709551615"]),
            ],
        ),
        (
            "client",
            env!("CARGO_BIN_EXE_zoorpc-client"),
            &zk,
            &[("calls", &[]), ("interval-ms", &[])],
        ),
        (
            "ha_server",
            env!("CARGO_BIN_EXE_zoorpc-ha-server"),
            &zk,
            &[
                ("port", &["65536"]),
                ("session-timeout-ms", &["0"]),
                ("handover-grace-ms", &[]),
                ("job-interval-ms", &["0", "99"]),
            ],
        ),
        (
            "ha_client",
            env!("CARGO_BIN_EXE_zoorpc-ha-client"),
            &zk,
            &[
                ("calls", &[]),
                ("interval-ms", &[]),
                ("switch-over-timeout-ms", &[]),
            ],
        ),
        (
            "master_job",
            env!("CARGO_BIN_EXE_zoorpc-master-job"),
            &zk,
            &[
                ("job-interval-ms", &["0", "99"]),
                ("session-timeout-ms", &["0"]),
            ],
        ),
        (
            "zookeeper",
            env!("CARGO_BIN_EXE_zoorpc-zookeeper"),
            &[],
            &[("port", &["65536"]), ("tick-ms", &["0", "7158279"])],
        ),
    ];
    for (name, exe, base_args, flags) in programs {
        for (flag, own) in flags {
            let huge: &[&str] = if flag.ends_with("-ms") { &ms_huge } else { &[] };
            for value in for_all.iter().chain(huge).chain(own.iter()) {
                let arg = format!("--{flag}={value}");
                let mut args = base_args.to_vec();
                args.push(&arg);
                let (code, stdout, stderr) = run_to_end(exe, &args, Duration::from_secs(20));
                assert_eq!(code, Some(2), "{name} {arg}: {stderr}");
                assert_eq!(stderr.lines().count(), 1, "{name} {arg}: {stderr}");
                assert!(
                    stderr.starts_with(&format!("error: invalid value '{value}' for '--{flag} <"))
                        && stderr.contains(": expected ")
                        && stderr.contains(" from ")
                        && stderr.trim_end().ends_with("; see --help"),
                    "{name} {arg}: {stderr}"
                );
                assert!(stdout.is_empty(), "{name} {arg}: {stdout}");
            }
        }
    }
}

/// A provider never registers an address no client can dial or that does not reach it: an
/// unspecified advertised host is refused before anything starts, and the startup health probe
/// goes to the advertised URL, so an address nothing listens on fails startup naming it.
#[test]
fn provider_refuses_an_advertised_address_that_does_not_reach_it() {
    let base = unique_path("advertise");
    let connect = zk().connect_string();
    let provider = |extra: &[&str]| {
        let args = [
            &["--zk", &connect, "--base-path", &base, "--port", "0"],
            extra,
        ]
        .concat();
        run_to_end(
            env!("CARGO_BIN_EXE_zoorpc-provider"),
            &args,
            Duration::from_secs(20),
        )
    };
    for host in ["0.0.0.0", "::", "[::]"] {
        let (code, stdout, stderr) = provider(&["--advertise-host", host]);
        assert_eq!(code, Some(1), "{host}: {stdout} {stderr}");
        assert!(
            stderr.starts_with(&format!("error: cannot advertise {host}: "))
                && stderr.contains("--advertise-host"),
            "{stderr}"
        );
    }
    // 127.0.0.2 is loopback too, but the listener is on 127.0.0.1 only: nothing answers there.
    // A refused connection is said as such and at once (it was "no answer within 5 s", after
    // the 5 s).
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = provider(&["--advertise-host", "127.0.0.2"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: the advertised address http://127.0.0.2:")
            && stderr.contains("does not reach this server (listening on 127.0.0.1:")
            && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a refused address took {:?} (the self-check's whole 5 s)",
        started.elapsed()
    );
    // Nothing was registered.
    let registered = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let raw = common::raw_client(&connect).await;
        raw.list_children(&base).await
    });
    assert!(
        matches!(registered, Err(zookeeper_client::Error::NoNode)),
        "{registered:?}"
    );
    // Listening on every interface needs the advertised address spelled out; refused before
    // binding anything.
    let (code, stdout, stderr) = provider(&["--listen-host", "0.0.0.0"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: --listen-host 0.0.0.0 listens on every interface")
            && stderr.contains("--advertise-host"),
        "{stderr}"
    );
}

/// The HA server writes into the master node only an address that reaches it.
#[test]
fn ha_server_refuses_an_advertised_address_that_does_not_reach_it() {
    let path = format!("{}/HelloService:1.0.0", unique_path("ha-advertise"));
    let connect = zk().connect_string();
    let ha_server = |extra: &[&str]| {
        let args = [&["--zk", &connect, "--path", &path, "--port", "0"], extra].concat();
        run_to_end(
            env!("CARGO_BIN_EXE_zoorpc-ha-server"),
            &args,
            Duration::from_secs(20),
        )
    };
    let (code, stdout, stderr) = ha_server(&["--advertise-host", "0.0.0.0"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: cannot advertise 0.0.0.0: "),
        "{stderr}"
    );
    let (code, stdout, stderr) = ha_server(&["--advertise-host", "127.0.0.2"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: the advertised address http://127.0.0.2:"),
        "{stderr}"
    );
    assert!(!stdout.contains("role master"), "{stdout}");
    let master = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let raw = common::raw_client(&connect).await;
        raw.check_stat(&path).await
    });
    assert!(matches!(master, Ok(None)), "{master:?}");
    let (code, stdout, stderr) = ha_server(&["--listen-host", "::"]);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(
        stderr.starts_with("error: --listen-host :: listens on every interface"),
        "{stderr}"
    );
}

/// A bad election path, job name or address is refused before contending (found once master, it
/// left the master node behind for a session timeout).
#[test]
fn bad_election_paths_job_names_and_addresses_are_refused_before_contending() {
    let connect = zk().connect_string();
    let path = unique_path("bad-job-flags");
    let cases: [(&str, Vec<&str>, &str); 5] = [
        (
            "zoorpc-ha-server",
            vec!["--path", &path, "--job-name", ""],
            "must not end with '/'",
        ),
        (
            "zoorpc-ha-server",
            vec!["--path", "relative"],
            "must start with '/'",
        ),
        (
            "zoorpc-master-job",
            vec!["--path", &path, "--name", "x/y"],
            "one path segment",
        ),
        (
            "zoorpc-master-job",
            vec!["--path", &path, "--name", ".."],
            "'..'",
        ),
        (
            "zoorpc-master-job",
            vec!["--path", &path, "--address", "a b"],
            "whitespace",
        ),
    ];
    for (program, args, expected) in cases {
        let exe = match program {
            "zoorpc-ha-server" => env!("CARGO_BIN_EXE_zoorpc-ha-server"),
            _ => env!("CARGO_BIN_EXE_zoorpc-master-job"),
        };
        let mut all = vec!["--zk", connect.as_str()];
        all.extend(args.iter().copied());
        let (code, stdout, stderr) = run_to_end(exe, &all, Duration::from_secs(10));
        assert_eq!(code, Some(2), "{program} {args:?}: {stdout} {stderr}");
        assert!(stdout.is_empty(), "{program} {args:?} started: {stdout}");
        assert!(stderr.contains(expected), "{program} {args:?}: {stderr}");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt.block_on(async {
        let raw = common::raw_client(&connect).await;
        raw.check_stat(&path).await.unwrap().is_some()
    });
    assert!(!created, "a refused program created {path}");
}
