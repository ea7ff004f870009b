//! `zoorpc master <path>`: who is master of an election path, its epoch (the companion
//! `<path>.epoch`'s `mzxid`, the fencing token), how long it has held it (since the
//! companion's `mtime`: every takeover writes it) and the standbys (the participant nodes). An
//! address designated but not taken over yet is never shown as master (`no master yet ...:
//! designated X, not yet taken over, since ...`); a name that is not `host:port` (what
//! `zoorpc-master-job` calls itself, `job-<pid>`) is shown as a name no client can call, and
//! data that is not even a name (empty, whitespace, control characters, binary) is `BAD DATA`,
//! escaped so it stays one line. `--json` prints one JSON document. Nobody
//! holding the node is not an error: `no master at <path>` (`"master": null`), exit 0.

use serde_json::json;
use zoorpc_registry::inspect;

use super::{ZkArg, human_age, now_ms, session_hex};

/// `zoorpc master` flags.
#[derive(clap::Args, Debug)]
pub struct MasterArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: ZkArg,
    /// The election path, e.g. /soa/master/services/HelloService:1.0.0
    #[arg(value_parser = super::election_path)]
    pub path: String,
    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
}

/// Runs `zoorpc master`; returns the exit status.
pub fn run(args: MasterArgs) -> i32 {
    let credential = match super::credential_or_exit(&args.zk) {
        Ok(credential) => credential,
        Err(status) => return status,
    };
    super::block_on(async move {
        let session = super::open_session(&args.zk.zk, credential).await?;
        let master = inspect::master(&session, &args.path)
            .await
            .map_err(|e| e.to_string())?;
        let designee = match &master {
            None => inspect::designee(&session, &args.path)
                .await
                .map_err(|e| e.to_string())?,
            Some(_) => None,
        };
        let now = now_ms();
        match (master, args.json) {
            (None, false) => match designee {
                Some(next) => crate::say!(
                    "no master at {} (handover under way) designee={next}",
                    args.path
                ),
                None => crate::say!("no master at {}", args.path),
            },
            (None, true) => crate::say!("{}", no_master_json(&args.path, designee)),
            (Some(m), false) => crate::say!("{}", master_line(&args.path, m, now)),
            (Some(m), true) => crate::say!("{}", master_json(&args.path, m, now)),
        }
        Ok::<_, String>(0)
    })
}

/// The `--json` document when nobody holds the node (`designee`: a handover under way).
pub(crate) fn no_master_json(path: &str, designee: Option<String>) -> serde_json::Value {
    json!({
        "path": path,
        "master": null,
        "error": null,
        "epoch": null,
        "since_ms": null,
        "held_ms": null,
        "session_id": null,
        "designee": designee,
    })
}

/// The `--json` document for a held node: as [`master_line`], a designation not taken over yet
/// names no master.
pub(crate) fn master_json(path: &str, m: inspect::MasterEntry, now: i64) -> serde_json::Value {
    let (address, error) = match m.address {
        Ok(a) => (Some(a), None),
        Err(bad) if is_name(&bad) => (None, Some(format!("a name, not an address: {bad:?}"))),
        Err(bad) => (None, Some(format!("not an address: {bad:?}"))),
    };
    // A designation not taken over yet: the data names no master.
    let (address, designated) = match &m.pending {
        Some(_) => (None, address),
        None => (address, None),
    };
    json!({
        "path": path,
        "master": address,
        "error": error,
        "epoch": m.epoch,
        "since_ms": m.since_ms,
        "held_ms": (now - m.since_ms).max(0),
        "session_id": session_hex(m.session_id),
        "designee": m.designee,
        "designated": designated,
        "designated_since_ms": m.pending.as_ref().map(|p| p.since_ms),
        "held_by": m.pending.as_ref().map_or(m.holder.clone(), |p| p.held_by.clone()),
        "standbys": m.standbys,
        "standby_sessions": m.standby_sessions.iter().map(|s| session_hex(*s)).collect::<Vec<_>>(),
        "bad_standbys": m.bad_standbys,
    })
}

/// The text line of `zoorpc master` for a held node: the master, or a designation not taken
/// over yet (never named as master), or BAD DATA.
fn master_line(path: &str, m: inspect::MasterEntry, now: i64) -> String {
    let epoch = m
        .epoch
        .map_or("none (companion missing)".to_owned(), |e| e.to_string());
    let standbys = standbys_field(&m);
    match (m.address, m.pending) {
        (Ok(address), Some(pending)) => format!(
            "no master yet at {path}: designated {address}, not yet taken over, since {} ago; \
the node is still held by {} session={} epoch={epoch}{standbys}",
            human_age(now - pending.since_ms),
            pending
                .held_by
                .as_deref()
                .unwrap_or("a contender that is not zoorpc's"),
            session_hex(m.session_id)
        ),
        (address, _) => {
            let address = address.unwrap_or_else(|bad| not_an_address(&bad));
            format!(
                "master {address} epoch={epoch} held={} session={}{standbys}",
                human_age(now - m.since_ms),
                session_hex(m.session_id)
            )
        }
    }
}

/// ` standbys=<addr>,...`, or nothing without standbys. A standby with the master's very
/// address (a master killed and started again on its port, its old session not ended yet) is
/// shown with its session, `<addr>[session=<id>]`, so the two are told apart.
fn standbys_field(m: &inspect::MasterEntry) -> String {
    if m.standbys.is_empty() {
        return String::new();
    }
    let master = m.address.as_ref().ok();
    let shown: Vec<String> = m
        .standbys
        .iter()
        .zip(&m.standby_sessions)
        .map(|(address, session)| match master {
            Some(master) if master == address => {
                format!("{address}[session={}]", session_hex(*session))
            }
            _ => address.clone(),
        })
        .collect();
    format!(" standbys={}", shown.join(","))
}

/// Whether `data` (a master node's data that is not `host:port`) is still a contender's name:
/// what [`validate_address`](zoorpc_registry::election::validate_address) accepts.
fn is_name(data: &str) -> bool {
    zoorpc_registry::election::validate_address(data).is_ok()
}

/// How the text line shows master data that is not `host:port`: a name as itself, anything else
/// as `BAD DATA` (escaped).
///
/// ```text
/// job-2 (a name, not an address: no gRPC client can call it)
/// BAD DATA "evil\nline" (not host:port; no client can call it)
/// ```
fn not_an_address(data: &str) -> String {
    if is_name(data) {
        format!("{data} (a name, not an address: no gRPC client can call it)")
    } else {
        format!("BAD DATA {data:?} (not host:port; no client can call it)")
    }
}
