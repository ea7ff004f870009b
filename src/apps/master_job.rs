//! The master-job program: contends for mastership at an election path and, while master, runs
//! a job every interval. Prints `role ...` on each change (as `ha_server` does) and
//! `run epoch=<n> seq=<k>` per run (with `--timestamps true`, each line ends with
//! ` at_ms=<unix ms>`: when the role was adopted, when the run started); the run numbers
//! continue across failovers (the last claimed run is recorded in `<path>.jobs/<name>`). On
//! SIGTERM or Ctrl-C it resigns, then exits.

use std::time::Duration;

use zoorpc_provider::StopSignals;
use zoorpc_registry::{
    MasterElection, MasterJob, Session, SessionConfig, ZkCredential, default_master_path,
};

use crate::cli::{MAX_MS, millis};

/// zoorpc-master-job: contends for mastership at an election path and, while master, runs a job
/// every interval (`role ...` and `run epoch=<n> seq=<k>` lines); resigns on SIGTERM or Ctrl-C.
#[derive(clap::Parser, Debug)]
#[command(name = "zoorpc-master-job", version)]
pub struct MasterJobArgs {
    /// The ZooKeeper to talk to and the identity to use.
    #[command(flatten)]
    pub zk: super::ZkArg,
    /// The election path
    #[arg(long, default_value_t = default_master_path("MasterJob", "1.0.0"), value_parser = super::election_path)]
    pub path: String,
    /// How often the job runs while master, in milliseconds (at least 100: every run is a
    /// fenced ZooKeeper write); also `--interval-ms`
    #[arg(long = "job-interval-ms", alias = "interval-ms", value_name = "MS", default_value = "1000", value_parser = millis(MasterJob::MIN_INTERVAL.as_millis() as u64..=MAX_MS))]
    pub interval: Duration,
    /// The job's name (its record is PATH.jobs/NAME, PATH the election path); also `--name`
    #[arg(
        long = "job-name",
        alias = "name",
        value_name = "NAME",
        default_value = "report"
    )]
    pub name: String,
    /// This process's identity in the master node: a name or host:port, an IPv6 address in
    /// brackets as in `[::1]:9091` [default: job-<pid>]
    #[arg(long, value_parser = super::contender_address)]
    pub address: Option<String>,
    /// The session timeout asked for.
    #[command(flatten)]
    pub session: super::SessionArg,
    /// End the `role` and `run` lines with ` at_ms=<unix ms>` (when the role was adopted, when
    /// the run started)
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub timestamps: bool,
    /// How much to log.
    #[command(flatten)]
    pub log: super::LogArgs,
}

/// What the flags ask for, checked.
struct Settings {
    zk: String,
    path: String,
    interval: Duration,
    name: String,
    /// This process's identity in the master node.
    address: String,
    session_timeout: Duration,
    /// Lines end with ` at_ms=<unix ms>`.
    stamp: bool,
    zk_auth: Option<ZkCredential>,
}

/// Runs the master-job program with the process arguments.
pub fn main() {
    let args: MasterJobArgs = crate::cli::parse();
    args.log.init("warn");
    std::process::exit(run(args));
}

/// Runs the master-job program; returns the exit status.
pub fn run(args: MasterJobArgs) -> i32 {
    super::run_checked(settings(args), &super::MetricsArg::default(), |settings| {
        super::block_on(contend(settings))
    })
}

/// The settings, checked before joining: found once master, a bad name would leave the node
/// behind for a session timeout.
fn settings(args: MasterJobArgs) -> Result<Settings, String> {
    let address = args
        .address
        .unwrap_or_else(|| format!("job-{}", std::process::id()));
    zoorpc_registry::master_job::validate_job(&args.path, &args.name).map_err(|e| e.to_string())?;
    Ok(Settings {
        zk_auth: args.zk.credential()?,
        zk: args.zk.zk,
        path: args.path,
        interval: args.interval,
        name: args.name,
        address,
        session_timeout: args.session.session_timeout,
        stamp: args.timestamps,
    })
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
