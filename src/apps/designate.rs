//! `zoorpc designate <path> <address>`: hands mastership of an election path to `address` by
//! setting the master node's data (what `zkCli.sh set <path> <address>` does); the holder steps
//! down and the contender with that address takes over.
//!
//! Contenders are not listed in ZooKeeper (a standby holds no node), so whether `address` is
//! one cannot be read there. What is checked instead, unless `--force`: a gRPC server answers
//! a health check (`grpc.health.v1.Health/Check`, service `""`) SERVING at `address`, as every
//! `ha_server`/`HaServer` does whatever its role. A designee that is not a contender is
//! harmless but slow: the holders wait the handover grace (2 s), then run again.

use zoorpc_registry::{designate, election::validate_address};

use super::ZkArg;

/// `zoorpc designate` flags.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Contenders are not listed in ZooKeeper, so without --force designate checks that \
a gRPC server answers a health check SERVING at ADDRESS (every zoorpc HA server does, master or \
standby) and refuses the address otherwise."
)]
pub struct DesignateArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: ZkArg,
    /// The election path, e.g. /soa/master/services/HelloService:1.0.0
    #[arg(value_parser = super::znode_path)]
    pub path: String,
    /// The new master's address, host:port, exactly as it joins the election
    #[arg(value_parser = super::contender_address)]
    pub address: String,
    /// Designate even if nothing answers gRPC health at ADDRESS
    #[arg(long)]
    pub force: bool,
}

/// Runs `zoorpc designate`; returns the exit status.
pub fn run(args: DesignateArgs) -> i32 {
    let credential = match super::credential_or_exit(&args.zk) {
        Ok(credential) => credential,
        Err(status) => return status,
    };
    super::block_on(async move {
        validate_address(&args.address).map_err(|e| e.to_string())?;
        if !args.force {
            let endpoint = format!("http://{}", args.address);
            let any: std::net::SocketAddr = ([0, 0, 0, 0], 0).into();
            zoorpc_provider::check_serving(&endpoint, any, "")
                .await
                .map_err(|e| {
                    let detail = match e {
                        zoorpc_provider::Error::AdvertisedUnreachable { detail, .. } => detail,
                        other => other.to_string(),
                    };
                    format!(
                        "{} does not look like a contender: no gRPC health answer SERVING there ({}); \
give the address of a running HA server, or --force",
                        args.address,
                        one_line(&detail)
                    )
                })?;
        }
        let session = super::open_session(&args.zk.zk, credential)
            .await
            .map_err(|e| e.to_string())?;
        designate(&session, &args.path, &args.address)
            .await
            .map_err(|e| e.to_string())?;
        crate::say!("designated {} at {}", args.address, args.path);
        Ok::<_, String>(0)
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
