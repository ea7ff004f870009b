//! The ZooKeeper program: a standalone ZooKeeper (Debian's package, through the test harness) on
//! 127.0.0.1, in a temp dir, for trying the other programs by hand. Prints
//! `zookeeper 127.0.0.1:<port>` once it serves; on SIGTERM or Ctrl-C it stops the server, removes
//! its data and prints `stopped`.

use std::time::Duration;

use crate::cli::{Flags, or_exit};
use zoorpc_provider::StopSignals;
use zoorpc_registry::testing::{ZkServer, ZkServerConfig};

/// Usage text.
pub const USAGE: &str = "usage: zookeeper [--port 2181 (0 = free port)] [--tick-ms 200]";

/// Runs the ZooKeeper program with the process arguments.
pub fn main() {
    crate::init_logging();
    let flags = Flags::from_env(USAGE, &["port", "tick-ms"]);
    let port: u16 = or_exit(USAGE, flags.get("port", 2181));
    let tick = Duration::from_millis(or_exit(USAGE, flags.get("tick-ms", 200)));
    let config = ZkServerConfig {
        tick_time: tick,
        port: (port != 0).then_some(port),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    // A Ctrl-C while it starts ends this process, and the server dies with it (it is tied to
    // this process); from here on it stops cleanly.
    let server = match ZkServer::start_with(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    // Listening before announcing: whoever reads the line may signal at once.
    let signals = {
        let _runtime = runtime.enter();
        StopSignals::listen()
    };
    let status = match signals {
        Ok(mut signals) => {
            println!("zookeeper {}", server.connect_string());
            runtime.block_on(signals.recv());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    drop(server);
    println!("stopped");
    std::process::exit(status);
}
