//! `xds`: `zoorpc xds` under load, two measures.
//!
//! - `first_call`: a provider registers; time until the first call a stock Python grpcio xDS
//!   client (`tests/interop/xds_client.py`, calling every `--interval-ms`) sends it, over
//!   `--rounds` rounds: registration → watch → push → the client's own picking.
//! - `fleet`: `--providers` registrations (no servers behind them) and `--clients` ADS streams
//!   (simulated in this process, each subscribed to the four resources of one name, ACKing
//!   every push); the `zoorpc xds` process's resident memory and CPU once every stream holds the
//!   whole assignment, then over `--changes` changes (one provider joins or leaves at a time),
//!   with the time until every stream has each change.

mod first_call;
mod fleet;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use zoorpc::cli::number;

use crate::harness::ChildProcess;
use crate::sibling_binary;

/// `xds` options.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Rounds of the first-call measure (0 skips it)
    #[arg(long, value_name = "N", default_value = "50", value_parser = number(0..=10_000usize))]
    rounds: usize,
    /// The Python client's pause between calls, in milliseconds
    #[arg(long = "interval-ms", value_name = "MS", default_value = "2", value_parser = number(1..=1000u64))]
    interval_ms: u64,
    /// Providers registered for the fleet measure
    #[arg(long, value_name = "N", default_value = "1000", value_parser = number(1..=100_000usize))]
    providers: usize,
    /// Simulated ADS clients for the fleet measure (0 skips it)
    #[arg(long, value_name = "N", default_value = "100", value_parser = number(0..=10_000usize))]
    clients: usize,
    /// Changes of the fleet (a provider joining or leaving), one at a time
    #[arg(long, value_name = "N", default_value = "100", value_parser = number(1..=100_000usize))]
    changes: usize,
    /// The Python with grpcio [default: target/tmp/interop-venv/bin/python, made by
    /// scripts/install-python-grpcio]
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// The `zoorpc` program [default: beside this program]
    #[arg(long, value_name = "PATH")]
    zoorpc: Option<PathBuf>,
}

pub async fn run(zk: &str, options: Options) -> Result<(), String> {
    let zoorpc = sibling_binary(options.zoorpc.as_ref(), "zoorpc")?;
    let mut figures = Vec::new();
    if options.rounds > 0 {
        let (xds, address) = start_xds(&zoorpc, zk, &[])?;
        figures.push(first_call::run(zk, &zoorpc, &address, &options).await?);
        drop(xds);
    }
    if options.clients > 0 {
        let root = format!("/zoorpc-bench/xds-fleet-{}", std::process::id());
        let (xds, address) = start_xds(&zoorpc, zk, &["--root", &root])?;
        figures.push(fleet::run(zk, &root, &xds, &address, &options).await?);
    }
    println!("{{{}}}", figures.join(","));
    Ok(())
}

/// Starts `zoorpc xds` on a free loopback port; returns it and its address.
fn start_xds(zoorpc: &PathBuf, zk: &str, args: &[&str]) -> Result<(ChildProcess, String), String> {
    let mut cmd = Command::new(zoorpc);
    cmd.args(["xds", "--zk", zk, "--listen", "127.0.0.1:0"])
        .args(args);
    let mut xds = ChildProcess::spawn("zoorpc xds", cmd).map_err(|e| e.to_string())?;
    let line = xds
        .wait_for_line("listening ", Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    Ok((xds, line["listening ".len()..].to_owned()))
}
