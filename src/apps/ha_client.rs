//! The HA client program: calls `SayHello` on the current master N times through a
//! [`MasterClient`], printing `ok <addr>` (the master that answered, `host:port` as the master
//! node holds it) or `err <reason>` per call, and `calls=N ok=N failed=N` last. Exits 1 if any
//! call failed (as `zoorpc call`), 0 if all were answered.

use zoorpc_consumer::{MasterClient, MasterClientConfig};

use crate::cli::{Flags, MAX_MS, or_exit};

/// Usage text.
pub const USAGE: &str = "usage: ha_client --zk HOST:PORT[,HOST:PORT...] \
[--path /soa/master/services/HelloService:1.0.0] [--calls 10] [--interval-ms 500 (0 = no pause)] [--name world] \
[--switch-over-timeout-ms 15000] [--zk-auth-file PATH (user:password; or env ZOORPC_ZK_AUTH_FILE)] \
[--tls-ca PEM (the masters serve TLS) [--tls-client-cert PEM --tls-client-key PEM] [--tls-server-name NAME]]";

/// Flags the HA client accepts.
pub const FLAGS: &[&str] = &[
    "zk",
    "path",
    "calls",
    "interval-ms",
    "name",
    "switch-over-timeout-ms",
    "zk-auth-file",
    "tls-ca",
    "tls-client-cert",
    "tls-client-key",
    "tls-server-name",
];

/// Runs the HA client program with the process arguments.
pub fn main() {
    crate::init_logging();
    let flags = Flags::from_env(USAGE, FLAGS);
    let zk = or_exit(USAGE, flags.zk());
    let path = flags
        .str("path")
        .map_or_else(super::ha_server::default_path, str::to_owned);
    let calls = or_exit(USAGE, flags.number("calls", 10u64, 0..=u64::MAX));
    let interval = or_exit(USAGE, flags.millis("interval-ms", 500, 0..=MAX_MS));
    let name = flags.str("name").unwrap_or("world").to_owned();
    let mut config = MasterClientConfig::new(zk, path);
    config.zk_auth = or_exit(USAGE, flags.zk_auth());
    config.tls = or_exit(USAGE, super::tls::consumer_tls_flags(&flags));
    config.switch_over_timeout = or_exit(
        USAGE,
        flags.millis("switch-over-timeout-ms", 15_000, 0..=MAX_MS),
    );
    std::process::exit(super::block_on(async move {
        let client = MasterClient::connect_with(config).await?;
        let failed = super::call_loop(calls, interval, || async {
            client.say_hello(&name).await.map(|a| a.master)
        })
        .await;
        Ok::<_, zoorpc_consumer::Error>(if failed == 0 { 0 } else { 1 })
    }));
}
