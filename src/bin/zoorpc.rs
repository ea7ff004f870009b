//! `zoorpc`: one command for a registry's operators and users: a development ZooKeeper, the
//! example provider, calls, listings, live watches, the master of an election and handing it
//! over, and a gRPC proxy that gives any HTTP/2 gRPC client the registry's failover.
//!
//! Errors are one line on stderr (what went wrong, what to do) and a non-zero status: 2 for
//! bad usage, 1 when the command failed.

use clap::{Parser, Subcommand};
use zoorpc::apps;

/// zoorpc: service registry and active/standby on ZooKeeper, from the command line.
#[derive(Parser, Debug)]
#[command(name = "zoorpc", version, propagate_version = true)]
#[command(
    after_help = "Every command that talks to ZooKeeper takes --zk HOST:PORT[,HOST:PORT...]; \
the environment variable ZOORPC_ZK is its default."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: apps::LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a development ZooKeeper (Debian's package) in a temp dir until Ctrl-C
    #[cfg(feature = "dev-tools")]
    Zk(apps::zookeeper::ZkArgs),
    /// Serve the example HelloService and keep it registered until Ctrl-C
    ///
    /// Lines: `registered <node> <url>` (again if the node is re-created); on SIGTERM or Ctrl-C
    /// `stopping <node>`, `deregistered <node>` once the node is deleted, then the drain, then
    /// `stopped`.
    Provider(apps::provider::ProviderArgs),
    /// Call SayHello(NAME) through the registry (picking, retry, failover)
    Call(apps::call::CallArgs),
    /// List the services under a root: each provider's node, URL, metadata, session, age
    Ls(apps::ls::LsArgs),
    /// Print one line per change of the live provider list, as it happens
    Watch(apps::watch::WatchArgs),
    /// Show the master of an election path, its epoch and how long it has held it
    Master(apps::master::MasterArgs),
    /// Hand mastership of an election path to another contender
    Designate(apps::designate::DesignateArgs),
    /// Forward gRPC (HTTP/2) from a local port through the registry's balanced channel
    Proxy(apps::proxy::ProxyArgs),
    /// Serve a live page of the services, masters and their changes under a root
    Console(apps::console::ConsoleArgs),
    /// Serve the registry over xDS, so gRPC clients in any language call `xds:///NAME`
    /// balanced on their own side (`bootstrap` prints their bootstrap file)
    Xds(apps::xds::XdsCli),
}

fn main() {
    let cli: Cli = zoorpc::cli::parse();
    // The long-running commands warn of what they go through; the one-shot ones print only
    // their answer or one error line.
    cli.log.init(match cli.command {
        #[cfg(feature = "dev-tools")]
        Command::Zk(_) => "warn",
        Command::Provider(_)
        | Command::Proxy(_)
        | Command::Watch(_)
        | Command::Console(_)
        | Command::Xds(_) => "warn",
        _ => "error",
    });
    let status = match cli.command {
        #[cfg(feature = "dev-tools")]
        Command::Zk(args) => apps::zookeeper::run(args.config()),
        Command::Provider(args) => args.run(),
        Command::Call(args) => apps::call::run(args),
        Command::Ls(args) => apps::ls::run(args),
        Command::Watch(args) => apps::watch::run(args),
        Command::Master(args) => apps::master::run(args),
        Command::Designate(args) => apps::designate::run(args),
        Command::Proxy(args) => apps::proxy::run(args),
        Command::Console(args) => apps::console::run(args),
        Command::Xds(args) => apps::xds::run(args),
    };
    std::process::exit(status);
}
