//! The HA server program: serves `hello.v1.HelloService` on a [`HaServer`] and contends for
//! mastership of the service at an election path; only the master answers, standbys refuse with
//! the standby refusal ([`zoorpc_provider::standby_status`]) so a
//! [`zoorpc_consumer::MasterClient`] retries on the master.
//!
//! Prints (other tools read these lines):
//! - `listening <addr>` once the server answers at `<addr>` (`host:port`, exactly what it writes
//!   into the master node: checked with a gRPC health call to that address before contending;
//!   `0.0.0.0`/`::` is never advertised: give `--advertise-host` with `--listen-host 0.0.0.0`);
//! - `role master epoch=<n>`, `role standby master=<addr>`, `role electing` or
//!   `role disconnected` on each change;
//! - with `--job-interval-ms`: `run epoch=<n> seq=<k>` for each run of a master-only job;
//! - on SIGTERM or Ctrl-C: `resigned` once its node is deleted, then it exits with status 0.
//!
//! Every `SayHello` answer carries the response metadata [`EPOCH_METADATA`] (`zoorpc-epoch`):
//! the epoch this process was master under when its handler ran (absent if it was not master
//! any more by then). A client calling a server's own address (grpcurl, a load balancer) can
//! see which term answered it, and an answer under an older epoch than one already seen is a
//! deposed master still serving.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use zoorpc_proto::{HelloReply, HelloRequest, HelloService, HelloServiceServer};
use zoorpc_provider::{HaServer, HaServerConfig, Services, StopSignals};
use zoorpc_registry::election::FastTakeover;
use zoorpc_registry::{ElectionOptions, MasterElection, MasterJob, Role, default_master_path};

use super::hello::Greeter;
use crate::cli::{MAX_MS, millis, number};

/// The default election path of `HelloService` 1.0.0.
pub fn default_path() -> String {
    default_master_path("HelloService", "1.0.0")
}

/// zoorpc-ha-server: serves HelloService on the master only and contends for mastership of an
/// election path (`listening <addr>`, `role ...` lines); resigns on SIGTERM or Ctrl-C.
#[derive(clap::Parser, Debug)]
#[command(name = "zoorpc-ha-server", version)]
pub struct HaServerArgs {
    /// The ZooKeeper to talk to and the identity to use.
    #[command(flatten)]
    pub zk: super::ZkArg,
    /// Where to listen and what to write into the master node.
    #[command(flatten)]
    pub listen: super::ListenArgs,
    /// The election path
    #[arg(long, default_value_t = default_path(), value_parser = super::election_path)]
    pub path: String,
    /// The session timeout asked for: how long after a crash a standby takes over.
    #[command(flatten)]
    pub session: super::SessionArg,
    /// How long the holder waits for a designated contender to take over before it runs again,
    /// in milliseconds
    #[arg(long = "handover-grace-ms", value_name = "MS", default_value = "2000", value_parser = millis(0..=MAX_MS))]
    pub handover_grace: Duration,
    /// Take over at once from a master whose own address refuses connections (its process is
    /// gone), instead of waiting for its session to expire
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub fast_takeover: bool,
    /// Refused connects that prove the master's process gone
    #[arg(long, value_name = "N", default_value = "3", value_parser = number(1..=100u32))]
    pub takeover_refusals: u32,
    /// Pause between those connects, in milliseconds
    #[arg(long = "takeover-spacing-ms", value_name = "MS", default_value = "100", value_parser = millis(1..=60_000))]
    pub takeover_spacing: Duration,
    /// Also run a master-only job this often, in milliseconds (at least 100) [default: no job]
    #[arg(long = "job-interval-ms", value_name = "MS", value_parser = millis(MasterJob::MIN_INTERVAL.as_millis() as u64..=MAX_MS))]
    pub job_interval: Option<Duration>,
    /// The job's name (its record is PATH.jobs/NAME, PATH the election path)
    #[arg(long, default_value = "hello-report")]
    pub job_name: String,
    /// Artificial latency of every SayHello, in milliseconds (a slow handler, for tests)
    #[arg(long = "delay-ms", value_name = "MS", default_value = "0", value_parser = millis(0..=MAX_MS))]
    pub delay: Duration,
    /// Where to serve metrics (role, epoch, session state), if anywhere.
    #[command(flatten)]
    pub metrics: super::MetricsArg,
    /// TLS to serve with (`--tls-cert`, `--tls-key`, `--tls-client-ca`); clients need `--tls-ca`.
    #[command(flatten)]
    pub tls: super::tls::ProviderTlsArgs,
    /// How much to log.
    #[command(flatten)]
    pub log: super::LogArgs,
}

impl HaServerArgs {
    /// The checked settings: the job's name against the path (a bad one found once master
    /// would leave the node behind for a session timeout), the credential and TLS files read.
    pub fn settings(&self) -> Result<HaServerSettings, String> {
        zoorpc_registry::master_job::validate_job(&self.path, &self.job_name)
            .map_err(|e| e.to_string())?;
        Ok(HaServerSettings {
            zk: self.zk.zk.clone(),
            listen: self.listen.address(),
            advertise_host: self.listen.advertise_host.clone(),
            path: self.path.clone(),
            session_timeout: self.session.session_timeout,
            election: ElectionOptions {
                handover_grace: self.handover_grace,
                fast_takeover: FastTakeover {
                    enabled: self.fast_takeover,
                    refusals: self.takeover_refusals,
                    spacing: self.takeover_spacing,
                    ..FastTakeover::default()
                },
            },
            job_interval: self.job_interval,
            job_name: self.job_name.clone(),
            zk_auth: self.zk.credential()?,
            tls: self.tls.load()?,
            delay: self.delay,
        })
    }
}

/// How to run the HA server program: its flags, checked.
#[derive(Clone, Debug)]
pub struct HaServerSettings {
    /// ZooKeeper connect string.
    pub zk: String,
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Host written into the master node (defaults to the listen IP, which must then not be
    /// `0.0.0.0` or `::`). The server must answer there: it is checked before contending.
    pub advertise_host: Option<String>,
    /// Election path.
    pub path: String,
    /// ZooKeeper session timeout: how long after a crash a standby takes over.
    pub session_timeout: Duration,
    /// Election tuning.
    pub election: ElectionOptions,
    /// Run a master-only job at this interval.
    pub job_interval: Option<Duration>,
    /// The job's name (its record is `<path>.jobs/<name>`).
    pub job_name: String,
    /// The ZooKeeper digest identity, if any (the nodes it creates are then changeable by it
    /// only).
    pub zk_auth: Option<zoorpc_registry::ZkCredential>,
    /// TLS (`--tls-cert`, `--tls-key`, `--tls-client-ca`), if served.
    pub tls: Option<zoorpc_provider::ProviderTls>,
    /// How long each `SayHello` takes at least (`--delay-ms`; default 0).
    pub delay: Duration,
}

/// Runs the HA server program with the process arguments.
pub fn main() {
    let args: HaServerArgs = crate::cli::parse();
    args.log.init("warn");
    std::process::exit(run(&args));
}

/// Runs an HA server until a signal; returns the exit status: 2 when a file is not usable, 1
/// when it could not start or serve.
pub fn run(args: &HaServerArgs) -> i32 {
    super::run_checked(args.settings(), &args.metrics, |settings| {
        super::block_on(async move { serve(settings).await.map(|()| 0) })
    })
}

async fn serve(args: HaServerSettings) -> Result<(), String> {
    // Listening for signals before announcing anything: whoever reads a line may signal at once.
    let mut signals = StopSignals::listen().map_err(|e| e.to_string())?;
    let (job_interval, job_name) = (args.job_interval, args.job_name.clone());
    let roles = Arc::new(OnceLock::new());
    let mut server = start(args, roles.clone()).await?;
    crate::say!("listening {}", server.address());
    let election = server
        .election()
        .ok_or("the HA server left the election before it started")?;
    let _ = roles.set(election.subscribe());
    let printer = tokio::spawn(print_roles(
        election.path().to_owned(),
        election.changes(),
        false,
    ));
    let job = match job_interval {
        Some(interval) => Some(start_printing_job(election, &job_name, interval, false)?),
        None => None,
    };

    // Until a signal (or ZooKeeper refuses this identity the takeover): then stop the job,
    // resign, stop serving.
    let refusal = tokio::select! {
        _ = signals.recv() => None,
        refusal = refused(election) => Some(refusal),
    };
    drop(job);
    let resigned = server.resign().await;
    let _ = printer.await;
    match resigned {
        Ok(()) => crate::say!("resigned"),
        Err(e) => {
            eprintln!("warning: could not delete the master node ({e}); it goes with the session")
        }
    }
    match (server.shutdown().await, refusal) {
        (_, Some(refusal)) => Err(refusal),
        (Err(e @ zoorpc_provider::Error::Server(_)), None) => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// Starts the HA server serving the program's `HelloService`, whose replies name the epoch
/// of the role `roles` is set to once the election joined.
async fn start(
    args: HaServerSettings,
    roles: Arc<OnceLock<watch::Receiver<Role>>>,
) -> Result<HaServer, String> {
    let mut config = HaServerConfig::new(args.zk, args.path, 0)
        .listen(args.listen)
        .session_timeout(args.session_timeout)
        .election(args.election)
        .drain_timeout(Duration::from_secs(5))
        .zk_auth(args.zk_auth)
        .tls(args.tls)
        .file_descriptor_set(zoorpc_proto::FILE_DESCRIPTOR_SET);
    if let Some(host) = args.advertise_host {
        config = config.advertise_host(host);
    }
    let delay = args.delay;
    HaServer::serve_with(config, move |address| {
        Services::new().add_service(HelloServiceServer::new(EpochGreeter {
            greeter: Greeter::new(address).with_delay(delay),
            roles,
        }))
    })
    .await
    .map_err(|e| e.to_string())
}

/// The response metadata naming the epoch a `SayHello` was answered under.
pub const EPOCH_METADATA: &str = "zoorpc-epoch";

/// The program's `HelloService`: the [`Greeter`]'s answer, with [`EPOCH_METADATA`].
struct EpochGreeter {
    greeter: Greeter,
    /// The election's role, set once it joined (the gate refuses every call before).
    roles: Arc<OnceLock<watch::Receiver<Role>>>,
}

#[tonic::async_trait]
impl HelloService for EpochGreeter {
    async fn say_hello(
        &self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
        let mut response = self.greeter.say_hello(request).await?;
        let epoch = self.roles.get().and_then(|r| r.borrow().epoch());
        if let Some(epoch) = epoch
            && let Ok(value) = epoch.to_string().parse()
        {
            response.metadata_mut().insert(EPOCH_METADATA, value);
        }
        Ok(response)
    }
}

/// Resolves when `election` stopped contending on its own (ZooKeeper refused this identity the
/// takeover: the election's nodes belong to another identity), with the error line's text;
/// never otherwise.
pub(crate) async fn refused(election: &MasterElection) -> String {
    let mut roles = election.subscribe();
    loop {
        if *roles.borrow_and_update() == Role::Left
            && let Some(refusal) = election.refusal()
        {
            return refusal.to_string();
        }
        if roles.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Prints `role <role>` for every change (not the initial `joining` nor the final `left`); with
/// `stamp`, followed by ` at_ms=<unix ms>`: the wall-clock instant the role was adopted (so
/// another process can lay the roles of several contenders side by side).
pub(crate) async fn print_roles(
    path: String,
    mut changes: zoorpc_registry::RoleChanges,
    stamp: bool,
) {
    while let Some(change) = changes.next().await {
        super::metrics::role(&path, &change.role);
        match change.role {
            Role::Joining | Role::Left => {}
            role if stamp => crate::say!("role {role} at_ms={}", unix_ms(change.at)),
            role => crate::say!("role {role}"),
        }
    }
}

/// Starts a master-only job that prints `run epoch=<n> seq=<k>` per run (with `stamp`, followed
/// by ` at_ms=<unix ms>`, when the run started).
pub(crate) fn start_printing_job(
    election: &MasterElection,
    name: &str,
    interval: Duration,
    stamp: bool,
) -> Result<MasterJob, String> {
    MasterJob::start(election, name, interval, move |run| async move {
        if stamp {
            let at = unix_ms(std::time::Instant::now());
            crate::say!("run epoch={} seq={} at_ms={at}", run.epoch, run.seq);
        } else {
            crate::say!("run epoch={} seq={}", run.epoch, run.seq);
        }
    })
    .map_err(|e| e.to_string())
}

/// `at` as milliseconds since the Unix epoch, by this host's wall clock.
fn unix_ms(at: std::time::Instant) -> u128 {
    let ago = std::time::Instant::now().saturating_duration_since(at);
    std::time::SystemTime::now()
        .checked_sub(ago)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis())
}
