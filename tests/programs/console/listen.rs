//! Where the console listens: an IP address, as every program's listening flag takes.

use super::*;

/// `--listen localhost:PORT` is refused with the address to give instead (before: "expected an
/// address such as 127.0.0.1:9464", another port than the one asked), by the console as by the
/// proxy.
#[test]
fn a_host_name_to_listen_on_is_refused_with_the_address_to_give() {
    for program in [
        &["console", "--listen", "localhost:18025"][..],
        &["proxy", "--base-path", "/x", "--listen", "localhost:18025"],
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoorpc"));
        cmd.args(program).args(["--zk", "127.0.0.1:1"]);
        let (code, out, err) = run_command(cmd, Duration::from_secs(30));
        assert_eq!(code, Some(2), "{program:?}: {out} {err}");
        assert!(
            err.contains("not the host name \"localhost\": give 127.0.0.1:18025"),
            "{program:?}: {err}"
        );
    }
}
