//! The master-job program: contends for mastership at an election path and, while master, runs
//! a job every interval. Prints `role ...` on each change (as `ha_server` does) and
//! `run epoch=<n> seq=<k>` per run (with `--timestamps true`, each line ends with
//! ` at_ms=<unix ms>`: when the role was adopted, when the run started); the run numbers
//! continue across failovers (the last claimed run is recorded in `<path>.jobs/<name>`). On
//! SIGTERM or Ctrl-C it resigns, then exits.

use zoorpc_provider::StopSignals;
use zoorpc_registry::{
    MasterElection, MasterJob, Session, SessionConfig, ZkCredential, default_master_path,
};

use crate::cli::{Flags, MAX_MS, or_exit};

/// Usage text.
pub const USAGE: &str = "usage: master_job --zk HOST:PORT[,HOST:PORT...] \
[--path /soa/master/services/MasterJob:1.0.0] [--interval-ms 1000 (at least 100)] [--name report] \
[--address job-<pid> (this process's identity in the master node)] [--session-timeout-ms 10000] \
[--timestamps false (true: lines end with at_ms=<unix ms>)] [--zk-auth-file PATH (user:password; or env ZOORPC_ZK_AUTH_FILE)]";

/// Flags the master-job program accepts.
pub const FLAGS: &[&str] = &[
    "zk",
    "path",
    "interval-ms",
    "name",
    "address",
    "session-timeout-ms",
    "timestamps",
    "zk-auth-file",
];

/// What the flags ask for, checked.
struct Settings {
    zk: String,
    path: String,
    interval: std::time::Duration,
    name: String,
    /// This process's identity in the master node.
    address: String,
    session_timeout: std::time::Duration,
    /// Lines end with ` at_ms=<unix ms>`.
    stamp: bool,
    zk_auth: Option<ZkCredential>,
}

/// Runs the master-job program with the process arguments.
pub fn main() {
    crate::init_logging();
    let flags = Flags::from_env(USAGE, FLAGS);
    let settings = settings(&flags);
    std::process::exit(super::block_on(contend(settings)));
}

/// Reads the flags, exiting with the usage on a bad one.
fn settings(flags: &Flags) -> Settings {
    let zk = or_exit(USAGE, flags.zk());
    let path = flags
        .str("path")
        .map_or_else(|| default_master_path("MasterJob", "1.0.0"), str::to_owned);
    let interval = or_exit(
        USAGE,
        flags.millis(
            "interval-ms",
            1_000,
            MasterJob::MIN_INTERVAL.as_millis() as u64..=MAX_MS,
        ),
    );
    let name = flags.str("name").unwrap_or("report").to_owned();
    let address = flags
        .str("address")
        .map_or_else(|| format!("job-{}", std::process::id()), str::to_owned);
    let session_timeout = or_exit(
        USAGE,
        flags.millis("session-timeout-ms", 10_000, 1..=MAX_MS),
    );
    let stamp = or_exit(USAGE, flags.get("timestamps", false));
    let zk_auth = or_exit(USAGE, flags.zk_auth());
    // Checked before joining: found once master, a bad name or address would leave the node
    // behind for a session timeout.
    or_exit(
        USAGE,
        zoorpc_registry::master_job::validate_job(&path, &name)
            .and_then(|_| zoorpc_registry::election::validate_address(&address).map(|_| ()))
            .map_err(|e| e.to_string()),
    );
    Settings {
        zk,
        path,
        interval,
        name,
        address,
        session_timeout,
        stamp,
        zk_auth,
    }
}

/// Contends and runs the job while master, until a stop signal (or a refusal); the exit status.
async fn contend(settings: Settings) -> Result<i32, String> {
    let (path, address, stamp) = (&settings.path, &settings.address, settings.stamp);
    // Listening for signals before any line is printed: a reader may signal at once.
    let mut signals = StopSignals::listen().map_err(|e| e.to_string())?;
    let session = Session::connect(
        SessionConfig::new(&settings.zk)
            .session_timeout(settings.session_timeout)
            .credential(settings.zk_auth),
    )
    .await
    .map_err(|e| e.to_string())?;
    let election = tokio::select! {
        joined = MasterElection::join(&session, path, address) => {
            joined.map_err(|e| e.to_string())?
        }
        _ = signals.recv() => return Ok(0),
    };
    let printer = tokio::spawn(super::ha_server::print_roles(
        election.path().to_owned(),
        election.changes(),
        stamp,
    ));
    let job =
        super::ha_server::start_printing_job(&election, &settings.name, settings.interval, stamp)?;
    let refusal = tokio::select! {
        _ = signals.recv() => None,
        refusal = super::ha_server::refused(&election) => Some(refusal),
    };
    drop(job);
    let resigned = election.resign().await;
    let _ = printer.await;
    if let Some(refusal) = refusal {
        return Err(refusal);
    }
    resigned.map_err(|e| e.to_string())?;
    crate::say!("resigned");
    Ok(0)
}
