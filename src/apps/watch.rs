//! `zoorpc watch`: the live provider list under a base path, one line per change as it
//! happens (a `Discovery` watch, the same the consumer's list is built from):
//! `live=<n> +<node> <url> -<node> <url> ...` (the first line lists every provider as added).
//! Runs until SIGTERM / Ctrl-C or until nobody reads its output.

use std::collections::BTreeMap;

use zoorpc_provider::StopSignals;
use zoorpc_registry::{Discovery, Providers};

use super::ZkArg;

/// `zoorpc watch` flags.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: ZkArg,
    /// The base path to watch
    #[arg(long, default_value = "/registry", value_parser = super::znode_path, conflicts_with = "curator_name")]
    pub base_path: String,
    /// Watch the instances of a service in the Curator / Spring Cloud Zookeeper layout instead.
    #[command(flatten)]
    pub curator: super::CuratorArgs,
}

/// Runs `zoorpc watch`; returns the exit status.
pub fn run(args: WatchArgs) -> i32 {
    let credential = match super::credential_or_exit(&args.zk) {
        Ok(credential) => credential,
        Err(status) => return status,
    };
    super::block_on(async move {
        let session = super::open_session(&args.zk.zk, credential)
            .await
            .map_err(|e| e.to_string())?;
        let discovery = match args.curator.service() {
            Some(service) => Discovery::watch_curator(&session, &service).await,
            None => Discovery::watch(&session, &args.base_path).await,
        }
        .map_err(|e| e.to_string())?;
        let mut signals = StopSignals::listen().map_err(|e| e.to_string())?;
        let mut updates = discovery.subscribe();
        let mut seen = BTreeMap::new();
        let mut current = updates.borrow_and_update().clone();
        loop {
            if !super::write_line(format_args!("{}", change_line(&mut seen, &current))) {
                return Ok(0);
            }
            tokio::select! {
                () = signals.recv() => return Ok(0),
                changed = updates.changed() => {
                    if changed.is_err() {
                        return Err(format!("the watch of {} ended; run again", args.base_path));
                    }
                    current = updates.borrow_and_update().clone();
                }
            }
        }
    })
}

/// The line for a new snapshot, given what was seen before (updated to the snapshot).
pub fn change_line(seen: &mut BTreeMap<(String, i64), String>, now: &Providers) -> String {
    let next: BTreeMap<(String, i64), String> = now
        .iter()
        .map(|p| ((p.name.to_string(), p.created), p.url.to_string()))
        .collect();
    let mut line = format!("live={}", next.len());
    for ((name, created), url) in seen.iter() {
        if next.get(&(name.clone(), *created)) != Some(url) {
            line.push_str(&format!(" -{name} {url}"));
        }
    }
    for (key, url) in &next {
        if seen.get(key) != Some(url) {
            line.push_str(&format!(" +{} {url}", key.0));
        }
    }
    *seen = next;
    line
}
