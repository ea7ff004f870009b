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
use crate::cli::{Flags, MAX_MS, or_exit};

/// Usage text.
pub const USAGE: &str = "usage: ha_server --zk HOST:PORT[,HOST:PORT...] [--port N (0 = free port)] \
[--path /soa/master/services/HelloService:1.0.0] [--advertise-host 127.0.0.1] \
[--listen-host 127.0.0.1] [--session-timeout-ms 10000] [--handover-grace-ms 2000] \
[--fast-takeover true|false (true: take over at once from a master whose address refuses connections)] \
[--takeover-refusals 3] [--takeover-spacing-ms 100] \
[--job-interval-ms N (run a master-only job every N >= 100 ms)] [--job-name hello-report] \
[--zk-auth-file PATH (user:password; or env ZOORPC_ZK_AUTH_FILE)] \
[--metrics ADDR (Prometheus at http://ADDR/metrics)] \
[--tls-cert PEM --tls-key PEM (serve TLS; clients need --tls-ca) [--tls-client-ca PEM]]";

/// Flags the HA server accepts.
pub const FLAGS: &[&str] = &[
    "zk",
    "port",
    "path",
    "advertise-host",
    "listen-host",
    "session-timeout-ms",
    "handover-grace-ms",
    "fast-takeover",
    "takeover-refusals",
    "takeover-spacing-ms",
    "job-interval-ms",
    "metrics",
    "job-name",
    "zk-auth-file",
    "tls-cert",
    "tls-key",
    "tls-client-ca",
];

/// The default election path of `HelloService` 1.0.0.
pub fn default_path() -> String {
    default_master_path("HelloService", "1.0.0")
}

/// How to run the HA server program.
#[derive(Clone, Debug)]
pub struct HaServerArgs {
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
    /// Where to serve Prometheus metrics (`--metrics ADDR`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// TLS (`--tls-cert`, `--tls-key`, `--tls-client-ca`), if served.
    pub tls: Option<zoorpc_provider::ProviderTls>,
}

/// Builds the configuration from flags.
pub fn config(flags: &Flags) -> Result<HaServerArgs, String> {
    let zk = flags.zk()?;
    let port = flags.number("port", 0u16, 0..=u16::MAX)?;
    let ip = super::provider::listen_ip(flags.str("listen-host").unwrap_or("127.0.0.1"))?;
    let job_interval = match flags.str("job-interval-ms") {
        None => None,
        Some(_) => Some(flags.millis(
            "job-interval-ms",
            0,
            MasterJob::MIN_INTERVAL.as_millis() as u64..=MAX_MS,
        )?),
    };
    let path = flags.str("path").map_or_else(default_path, str::to_owned);
    let job_name = flags.str("job-name").unwrap_or("hello-report").to_owned();
    // Checked before anything starts: a bad name found once master would leave its node
    // behind for a session timeout.
    zoorpc_registry::master_job::validate_job(&path, &job_name).map_err(|e| e.to_string())?;
    Ok(HaServerArgs {
        zk,
        listen: SocketAddr::new(ip, port),
        advertise_host: flags.str("advertise-host").map(str::to_owned),
        path,
        session_timeout: flags.millis("session-timeout-ms", 10_000, 1..=MAX_MS)?,
        election: ElectionOptions {
            handover_grace: flags.millis("handover-grace-ms", 2_000, 0..=MAX_MS)?,
            fast_takeover: fast_takeover(flags)?,
        },
        job_interval,
        job_name,
        zk_auth: flags.zk_auth()?,
        tls: super::tls::provider_tls_flags(flags)?,
        metrics: match flags.str("metrics") {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| {
                format!(
                    "bad value {text:?} for --metrics: expected an address such as 127.0.0.1:9464"
                )
            })?),
        },
    })
}

/// `--fast-takeover` (default on: this program serves the address it contends with),
/// `--takeover-refusals`, `--takeover-spacing-ms`.
fn fast_takeover(flags: &Flags) -> Result<FastTakeover, String> {
    let enabled = match flags.str("fast-takeover") {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(format!(
                "bad value {other:?} for --fast-takeover: expected true or false"
            ));
        }
    };
    Ok(FastTakeover {
        enabled,
        refusals: flags.number("takeover-refusals", 3u32, 1..=100)?,
        spacing: flags.millis("takeover-spacing-ms", 100, 1..=60_000)?,
        ..FastTakeover::default()
    })
}

/// Runs the HA server program with the process arguments.
pub fn main() {
    crate::init_logging();
    let flags = Flags::from_env(USAGE, FLAGS);
    let config = or_exit(USAGE, config(&flags));
    std::process::exit(run(config));
}

/// Runs an HA server until a signal; returns the exit status.
pub fn run(config: HaServerArgs) -> i32 {
    if let Some(Err(e)) = config.metrics.map(super::metrics::serve) {
        eprintln!("error: {}", crate::cli::error_line(&e.to_string()));
        return 1;
    }
    super::block_on(async move { serve(config).await.map(|()| 0) })
}

async fn serve(args: HaServerArgs) -> Result<(), String> {
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
    args: HaServerArgs,
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
    HaServer::serve_with(config, |address| {
        Services::new().add_service(HelloServiceServer::new(EpochGreeter {
            greeter: Greeter::new(address),
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
