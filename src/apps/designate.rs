//! `zoorpc designate <path> <address>`: hands mastership of an election path to `address` by
//! setting the master node's data (what `zkCli.sh set <path> <address>` does); the holder steps
//! down and the contender with that address takes over.
//!
//! Unless `--force`, `address` must be a contender's: one of the participant nodes under
//! `<path>.participants` (every zoorpc contender holds one while it contends) holds it. A
//! contender that is not zoorpc's (seed 004's, which holds no participant node) needs
//! `--force`. A designee that is not a contender is harmless but slow: the holders wait the
//! handover grace (2 s), then run again. No master at the path (no election there, or none
//! running) is an error saying so, with or without `--force`.

use zoorpc_registry::{Error, designate, election::validate_address, inspect};

use super::ZkArg;

/// `zoorpc designate` flags.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Without --force, designate checks that ADDRESS is a contender's: one of the \
participant nodes under <path>.participants holds it (every zoorpc HA server has one while it \
contends), and refuses the address otherwise. A contender that is not zoorpc's needs --force."
)]
pub struct DesignateArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: ZkArg,
    /// The election path, e.g. /soa/master/services/HelloService:1.0.0
    #[arg(value_parser = super::election_path)]
    pub path: String,
    /// The new master's address, host:port, exactly as it joins the election (an IPv6 address
    /// in brackets: `[::1]:9091`)
    #[arg(value_parser = designee)]
    pub address: String,
    /// Designate even if no participant node holds ADDRESS
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
        let session = super::open_session(&args.zk.zk, credential)
            .await
            .map_err(|e| e.to_string())?;
        if !args.force {
            let contenders = inspect::contenders(&session, &args.path)
                .await
                .map_err(|e| e.to_string())?;
            let mut known: Vec<String> = contenders
                .into_iter()
                .filter_map(|c| c.address.ok())
                .collect();
            if !known.contains(&args.address) {
                // Nobody to hand over from: that is what to say first (a mistyped path, an
                // election not started), not that the address is nobody's.
                if let Ok(None) = inspect::master(&session, &args.path).await {
                    return Err(Error::NoMaster {
                        path: args.path.clone(),
                    }
                    .to_string());
                }
                known.sort();
                let listed = if known.is_empty() {
                    "there are none".to_owned()
                } else {
                    format!("they are {}", known.join(", "))
                };
                return Err(format!(
                    "{} does not look like a contender at {}: no participant node holds it ({listed}); \
give the address of a running HA server, or --force",
                    args.address, args.path
                ));
            }
        }
        designate(&session, &args.path, &args.address)
            .await
            .map_err(|e| e.to_string())?;
        crate::say!("designated {} at {}", args.address, args.path);
        Ok::<_, String>(0)
    })
}

/// clap's check of the designee: `host:port` with a port from 1 to 65535, an IPv6 address in
/// brackets (`[::1]:9091`, as a contender writes it: an unbracketed one could never match a
/// master node, and would only fail later as a URI), before anything connects.
///
/// ```
/// use zoorpc::apps::designate::designee;
/// assert!(designee("127.0.0.1:9091").is_ok() && designee("[::1]:9091").is_ok());
/// assert!(designee("ha-1.example.org:9091").is_ok());
/// assert!(designee("::1:1234").unwrap_err().contains("write [::1]:1234"));
/// assert!(designee("::1").unwrap_err().contains("[::1]:PORT"));
/// for bad in ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", ":9091", "[::1]9091", "a b:1"] {
///     assert!(designee(bad).is_err(), "{bad}");
/// }
/// ```
pub fn designee(text: &str) -> Result<String, String> {
    // The brackets rule of every contender address first, then host:port.
    let address = super::contender_address(text)?;
    let ipv6 = |host: &str| host.parse::<std::net::Ipv6Addr>().is_ok();
    let (host, port) = address
        .rsplit_once(':')
        .ok_or("expected host:port, e.g. 127.0.0.1:9091 (the port is missing)")?;
    let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if host.is_empty()
        || bracketed.is_some_and(|h| !ipv6(h))
        || host.contains(['[', ']']) && bracketed.is_none()
    {
        return Err("expected host:port, e.g. 127.0.0.1:9091 or [::1]:9091".to_owned());
    }
    match port.parse::<u16>() {
        Ok(1..) => Ok(address),
        _ => Err(format!("the port {port:?} is not a number from 1 to 65535")),
    }
}
