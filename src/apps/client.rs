//! The client program: calls `SayHello` through a [`Consumer`] N times, printing
//! `ok <provider url>` or `err <reason>` per call and `calls=N ok=N failed=N` last.

use crate::cli::{Flags, MAX_MS, or_exit};
use zoorpc_consumer::{Consumer, ConsumerConfig, Strategy};

/// Usage text.
pub const USAGE: &str = "usage: client --zk HOST:PORT[,HOST:PORT...] [--base-path /registry] \
[--calls 10] [--interval-ms 500 (0 = no pause)] [--name world] \
[--strategy random|round-robin|least-loaded|first] [--zk-auth-file PATH (user:password; or env ZOORPC_ZK_AUTH_FILE)] \
[--metrics ADDR (Prometheus at http://ADDR/metrics while it runs)] \
[--tls-ca PEM (call https:// providers) [--tls-client-cert PEM --tls-client-key PEM] [--tls-server-name NAME]]";

/// Runs the client program with the process arguments.
pub fn main() {
    crate::init_logging();
    let flags = Flags::from_env(
        USAGE,
        &[
            "zk",
            "base-path",
            "calls",
            "interval-ms",
            "name",
            "strategy",
            "zk-auth-file",
            "metrics",
            "tls-ca",
            "tls-client-cert",
            "tls-client-key",
            "tls-server-name",
        ],
    );
    let zk = or_exit(USAGE, flags.zk());
    let base = flags.str("base-path").unwrap_or("/registry").to_owned();
    let calls = or_exit(USAGE, flags.number("calls", 10u64, 0..=u64::MAX));
    let interval = or_exit(USAGE, flags.millis("interval-ms", 500, 0..=MAX_MS));
    let name = flags.str("name").unwrap_or("world").to_owned();
    let strategy = or_exit(
        USAGE,
        flags
            .str("strategy")
            .unwrap_or("random")
            .parse::<Strategy>()
            .map_err(|e| format!("bad value for --strategy: {e}")),
    );
    let zk_auth = or_exit(USAGE, flags.zk_auth());
    let tls = or_exit(USAGE, super::tls::consumer_tls_flags(&flags));
    let metrics = or_exit(USAGE, flags.metrics());
    std::process::exit(super::block_on(async move {
        if let Some(addr) = metrics {
            super::metrics::serve(addr)?;
        }
        let mut config = ConsumerConfig::new(zk, base).strategy(strategy);
        config.zk_auth = zk_auth;
        config.tls = tls;
        let consumer = Consumer::connect_with(config)
            .await
            .map_err(|e| e.to_string())?;
        super::call_loop(calls, interval, || async {
            consumer.say_hello(&name).await.map(|a| a.url.to_string())
        })
        .await;
        Ok::<_, String>(0)
    }));
}
