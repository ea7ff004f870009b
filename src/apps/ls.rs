//! `zoorpc ls [PATH]`: the services under a root (default `/`): every base path holding
//! `provider<seq>` nodes, and for each node its URL, metadata, owning session
//! (`ephemeralOwner`) and age (by this machine's clock against the node's `ctime`). `--json`
//! prints one JSON document instead. A node whose data is not a provider URL is listed with
//! the reason, never hidden, and counted apart (`/registry (2 providers, 1 with bad data)`); a
//! node with children and no data is a folder, listed as a base path of its own if it holds
//! providers, never as a provider.

use serde_json::{Value, json};
use zoorpc_registry::NodeFormat;
use zoorpc_registry::inspect::{self, ProviderEntry, ServiceListing};

use super::{ZkArg, human_age, now_ms, session_hex};

/// `zoorpc ls` flags.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: ZkArg,
    /// Where to start looking
    #[arg(default_value = "/", value_parser = super::znode_path_or_root, conflicts_with = "curator_name")]
    pub path: String,
    /// List the instances of one service in the Curator / Spring Cloud Zookeeper layout (each
    /// child of <curator-base>/<NAME>, bad data shown as such) instead.
    #[command(flatten)]
    pub curator: super::CuratorArgs,
    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
}

/// Runs `zoorpc ls`; returns the exit status.
pub fn run(args: LsArgs) -> i32 {
    let credential = match super::credential_or_exit(&args.zk) {
        Ok(credential) => credential,
        Err(status) => return status,
    };
    super::block_on(async move {
        let session = super::open_session(&args.zk.zk, credential).await?;
        let (root, listing) = match args.curator.service() {
            Some(service) => {
                let path = service.path().map_err(|e| e.to_string())?;
                let listing = inspect::instances(&session, &path, NodeFormat::Curator).await;
                (path, listing)
            }
            None => (
                args.path.clone(),
                inspect::services(&session, &args.path).await,
            ),
        };
        let listing = listing.map_err(|e| e.to_string())?;
        let now = now_ms();
        if args.json {
            crate::say!("{}", to_json(&root, &listing, now));
        } else {
            print_text(&root, &listing, now);
        }
        Ok::<_, String>(0)
    })
}

fn print_text(root: &str, listing: &ServiceListing, now: i64) {
    if listing.services.is_empty() {
        crate::say!("no providers under {root}");
    }
    for service in &listing.services {
        crate::say!("{} ({})", service.base_path, count(&service.providers));
        for p in &service.providers {
            let node = p.path.rsplit('/').next().unwrap_or(&p.path);
            let age = human_age(now - p.created_ms);
            let session = session_hex(p.session_id);
            match &p.url {
                Ok(url) => {
                    let meta: Vec<String> = url
                        .metadata_pairs()
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    let meta = if meta.is_empty() {
                        "-".to_owned()
                    } else {
                        meta.join(",")
                    };
                    crate::say!(
                        "  {node} {} meta={meta} session={session} age={age}",
                        url.endpoint()
                    );
                }
                Err(bad) => crate::say!("  {node} BAD DATA: {bad} session={session} age={age}"),
            }
        }
    }
    for path in &listing.unreadable {
        crate::say!("(not readable by this identity: {path}; give its --zk-auth-file to list it)");
    }
    if listing.truncated {
        crate::say!(
            "(stopped after {} nodes; give a deeper PATH)",
            inspect::MAX_NODES_VISITED
        );
    }
}

/// How many providers a service has, those with bad data counted apart: `2 providers`,
/// `1 provider, 1 with bad data`.
fn count(providers: &[ProviderEntry]) -> String {
    let bad = providers.iter().filter(|p| p.url.is_err()).count();
    let good = providers.len() - bad;
    let plural = if good == 1 { "" } else { "s" };
    match bad {
        0 => format!("{good} provider{plural}"),
        _ => format!("{good} provider{plural}, {bad} with bad data"),
    }
}

/// The `--json` document.
pub fn to_json(root: &str, listing: &ServiceListing, now: i64) -> Value {
    let services: Vec<Value> = listing
        .services
        .iter()
        .map(|s| {
            json!({
                "base_path": s.base_path,
                "providers": s.providers.iter().map(|p| provider_json(p, now)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "root": root,
        "truncated": listing.truncated,
        "unreadable": listing.unreadable,
        "services": services,
    })
}

fn provider_json(p: &ProviderEntry, now: i64) -> Value {
    let node = p.path.rsplit('/').next().unwrap_or(&p.path);
    let (url, metadata, error) = match &p.url {
        Ok(url) => {
            let meta: serde_json::Map<String, Value> = url
                .metadata_pairs()
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            (
                Value::String(url.as_str().to_owned()),
                Value::Object(meta),
                Value::Null,
            )
        }
        Err(bad) => (Value::Null, Value::Null, Value::String(bad.clone())),
    };
    json!({
        "node": node,
        "path": p.path,
        "url": url,
        "metadata": metadata,
        "error": error,
        "session_id": session_hex(p.session_id),
        "created_ms": p.created_ms,
        "age_ms": (now - p.created_ms).max(0),
    })
}
