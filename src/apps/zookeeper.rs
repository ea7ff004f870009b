//! The ZooKeeper program: a standalone ZooKeeper (Debian's package, through the test harness) on
//! 127.0.0.1, in a temp dir, for trying the other programs by hand. Prints
//! `zookeeper 127.0.0.1:<port>` once it serves; on SIGTERM or Ctrl-C it stops the server, removes
//! its data and prints `stopped`. If the server dies on its own, it says so (with the end of the
//! server's log) and exits 1 at once: a silently dead ZooKeeper must not look like a running one.

use crate::cli::{millis, number};
use zoorpc_provider::StopSignals;
use zoorpc_testkit::{ZkServer, ZkServerConfig};

/// zoorpc-zookeeper: a development ZooKeeper (Debian's package) on 127.0.0.1 in a temp dir, until
/// SIGTERM or Ctrl-C.
#[derive(clap::Parser, Debug)]
#[command(name = "zoorpc-zookeeper", version)]
pub struct ZookeeperArgs {
    /// Where and how it serves.
    #[command(flatten)]
    pub server: ZkArgs,
    /// How much to log.
    #[command(flatten)]
    pub log: super::LogArgs,
}

/// Runs the ZooKeeper program with the process arguments.
pub fn main() {
    let args: ZookeeperArgs = crate::cli::parse();
    args.log.init("warn");
    std::process::exit(run(args.server.config()));
}

/// `zoorpc zk` and `zoorpc-zookeeper` flags.
#[derive(clap::Args, Debug)]
pub struct ZkArgs {
    /// Port to serve on (0 picks a free one)
    #[arg(long, value_name = "N", default_value = "2181", value_parser = number(0..=u16::MAX))]
    pub port: u16,
    /// ZooKeeper's tickTime in milliseconds (sessions may last 2 to 20 ticks)
    #[arg(long = "tick-ms", value_name = "MS", default_value = "200", value_parser = millis(1..=ZkServerConfig::MAX_TICK_TIME.as_millis() as u64))]
    pub tick: std::time::Duration,
}

impl ZkArgs {
    /// The server configuration.
    pub fn config(&self) -> ZkServerConfig {
        ZkServerConfig {
            tick_time: self.tick,
            port: (self.port != 0).then_some(self.port),
        }
    }
}

/// Runs a ZooKeeper until a signal, printing the program's lines; returns the exit status.
pub fn run(config: ZkServerConfig) -> i32 {
    super::block_on(async move {
        // A Ctrl-C while it starts ends this process, and the server dies with it (it is tied
        // to this process); from here on it stops cleanly.
        let mut server = ZkServer::start_with(config).map_err(|e| e.to_string())?;
        // Listening before announcing: whoever reads the line may signal at once.
        let mut signals = StopSignals::listen().map_err(|e| e.to_string())?;
        crate::say!("zookeeper {}", server.connect_string());
        // The server is a child process: look at it twice a second while waiting for a signal.
        let mut check = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tokio::select! {
                () = signals.recv() => break,
                _ = check.tick() => {
                    if let Some(status) = server.exited() {
                        return Err(format!(
                            "ZooKeeper at {} exited on its own ({status}); the end of its log:\n{}",
                            server.connect_string(),
                            server.log_tail(10)
                        ));
                    }
                }
            }
        }
        drop(server);
        crate::say!("stopped");
        Ok::<_, String>(0)
    })
}
