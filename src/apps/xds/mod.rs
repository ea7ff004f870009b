//! `zoorpc xds --listen ADDR`: an xDS v3 management server (the Aggregated Discovery Service,
//! state of the world) fed by the registry, so any gRPC client with xDS support (C++ and so
//! Python, Ruby, PHP; Java; Go; Node with `@grpc/grpc-js-xds`) calls a zoorpc fleet with
//! `xds:///<name>`, balanced on its own side, with no proxy in the path.
//!
//! Guarantees:
//! - Every service name is served as the four resources gRPC's xDS client asks for (`resources`:
//!   Listener, RouteConfiguration with a retry policy on `UNAVAILABLE`, Cluster with outlier
//!   detection, ClusterLoadAssignment with the live providers and their weights; a backup,
//!   weight 0, is priority 1), under the same name.
//! - Names (`catalog`): `--service NAME=BASE_PATH` and `--master NAME=PATH` (a cluster whose one
//!   endpoint is the current master) as given; any other name `N` is the base path `<ROOT>/N`
//!   (`--root`, default `/`), so `xds:///hello` calls the providers under `/hello` with no flag,
//!   and under `/services/hello` with `--root /services`. A name is also the authority of the
//!   client's calls: letters, digits and `-._` only ([`service_name`]). At most 1000 names
//!   with subscribers are followed; a name without any is released after `--linger-ms`. A name
//!   not served (not a name, past the cap) gets a Listener routing nowhere: calls fail at once.
//! - One ZooKeeper watch per name however many clients; a change is pushed to every subscribed
//!   stream as soon as the watch publishes it; ACK, NACK and nonces as the protocol says (`ads`).
//! - ZooKeeper out of reach: the last known state stays served (never an empty assignment
//!   caused by the outage), said by a warning and `zoorpc_xds_zookeeper_connected 0`.
//! - gRPC server reflection (v1 and v1alpha) describes the ADS service with every message it
//!   takes, transitively ([`ADS_DESCRIPTORS`]), gRPC health and reflection: `grpcurl -plaintext
//!   ADDR list` and `describe envoy.service.discovery.v3.DiscoveryRequest` work.
//! - gRPC health (`""` and the ADS service: SERVING, NOT_SERVING once stopping); `--metrics`:
//!   `zoorpc_xds_clients`, `zoorpc_xds_pushes_total{type}`, `zoorpc_xds_nacks_total{type}`,
//!   `zoorpc_xds_endpoints{name}`, `zoorpc_xds_zookeeper_connected`.
//! - Prints `listening <addr>` once it accepts connections; on SIGTERM / Ctrl-C health turns
//!   NOT_SERVING, every stream ends (clients keep the resources they have), it prints `stopped`
//!   and exits 0 within [`STOP_GRACE`].
//! - `zoorpc xds bootstrap --listen HOST:PORT` prints the client's bootstrap (`bootstrap`).

mod ads;
mod assignment;
pub mod bootstrap;
mod catalog;
mod resources;

use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryServiceServer;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use zoorpc_provider::StopSignals;

pub use resources::RETRIES;

use super::ZkArg;

/// The most time from a stop signal to the exit: streams end at once, connections close after.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The ADS service's name, as health reports it.
const ADS_SERVICE: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";

/// Encoded `FileDescriptorSet` of the ADS service's file and every file it imports,
/// transitively, for server reflection: taken at build time from the descriptor set inside the
/// `envoy-types` package the build uses (`build/xds_descriptors.rs`; the crate has no API for
/// it). Empty if the build could not find it (the build said so in a warning).
pub const ADS_DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ads_descriptors.bin"));

/// `zoorpc xds` and its `bootstrap` subcommand: the serving flags, or the subcommand alone
/// (`--zk` and `--listen` are not asked of `bootstrap`).
#[derive(Debug)]
pub enum XdsCli {
    Serve(XdsArgs),
    Command(XdsCommand),
}

impl clap::FromArgMatches for XdsCli {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        match matches.subcommand() {
            Some(_) => XdsCommand::from_arg_matches(matches).map(XdsCli::Command),
            None => XdsArgs::from_arg_matches(matches).map(XdsCli::Serve),
        }
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = XdsCli::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for XdsCli {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        <XdsCommand as clap::Subcommand>::augment_subcommands(XdsArgs::augment_args(cmd))
            .args_conflicts_with_subcommands(true)
            .subcommand_negates_reqs(true)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        XdsCli::augment_args(cmd)
    }
}

/// `zoorpc xds` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum XdsCommand {
    /// Print the bootstrap JSON a gRPC client needs (GRPC_XDS_BOOTSTRAP) to use `zoorpc xds` at
    /// the given address
    Bootstrap(bootstrap::BootstrapArgs),
}

/// `zoorpc xds` flags (serving).
#[derive(clap::Args, Debug)]
pub struct XdsArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: ZkArg,
    /// Where to serve xDS (gRPC, HTTP/2 cleartext), e.g. 127.0.0.1:18000
    #[arg(long, value_name = "ADDR", value_parser = crate::cli::socket_address)]
    pub listen: SocketAddr,
    /// Serve the providers under BASE_PATH as NAME (`xds:///NAME`); a name without one is
    /// the base path <ROOT>/NAME
    #[arg(long = "service", value_name = "NAME=BASE_PATH", value_parser = service_mapping)]
    pub services: Vec<(String, String)>,
    /// Where the base paths of names without --service are: NAME is ROOT/NAME
    #[arg(long, value_name = "ROOT", default_value = "/", value_parser = super::znode_path_or_root)]
    pub root: String,
    /// Serve the current master of the election at PATH as NAME (one endpoint)
    #[arg(long = "master", value_name = "NAME=PATH", value_parser = master_mapping)]
    pub masters: Vec<(String, String)>,
    /// How long a name no client subscribes to any more stays followed (its ZooKeeper watch
    /// kept, so a client reconnecting finds it at once); then it is released and no longer
    /// counts against the 1000 names followed at most
    #[arg(long, value_name = "MS", default_value_t = catalog::DEFAULT_LINGER.as_millis() as u64)]
    pub linger_ms: u64,
    /// Where to serve Prometheus metrics (xDS clients, pushes, NACKs, endpoints, ZooKeeper's
    /// link), if anywhere.
    #[command(flatten)]
    pub metrics: super::MetricsArg,
}

/// Whether `name` can be a service's name: it is also the authority (`:authority`) of the
/// client's calls (gRPC's default for `xds:///NAME`), so letters, digits and `-._` only, as in
/// a host name (a `/` there makes every provider refuse the call).
///
/// ```
/// use zoorpc::apps::xds::service_name;
/// for good in ["hello", "hello.v1", "a_b-c"] {
///     assert!(service_name(good).is_ok(), "{good}");
/// }
/// for bad in ["", "services/hello", "a b", ".", "..", "h:1"] {
///     assert!(service_name(bad).is_err(), "{bad}");
/// }
/// ```
pub fn service_name(name: &str) -> Result<&str, String> {
    let name_ok = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
    if name.is_empty() || name == "." || name == ".." || !name.chars().all(name_ok) {
        return Err(format!(
            "{name:?} is not a service name: use letters, digits and -._ (it is also the \
             authority of the client's calls)"
        ));
    }
    Ok(name)
}

/// `NAME=VALUE`, with a [`service_name`].
fn mapping(text: &str) -> Result<(String, &str), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| "expected NAME=PATH, e.g. hello=/services/hello".to_owned())?;
    Ok((service_name(name)?.to_owned(), value))
}

/// clap's check of `--service NAME=BASE_PATH`.
///
/// ```
/// use zoorpc::apps::xds::service_mapping;
/// assert_eq!(service_mapping("hello=/services/hello").unwrap().1, "/services/hello");
/// assert!(service_mapping("hello").is_err());
/// assert!(service_mapping("a b=/x").is_err());
/// assert!(service_mapping("services/hello=/services/hello").is_err());
/// assert!(service_mapping("hello=services").is_err());
/// ```
pub fn service_mapping(text: &str) -> Result<(String, String), String> {
    let (name, path) = mapping(text)?;
    Ok((name, super::znode_path(path)?))
}

/// clap's check of `--master NAME=PATH`.
pub fn master_mapping(text: &str) -> Result<(String, String), String> {
    let (name, path) = mapping(text)?;
    Ok((name, super::election_path(path)?))
}

/// `Ok` if no name is given twice among `--service` and `--master` (which one would be served
/// is not for the server to guess), else the usage error naming both.
///
/// ```
/// use zoorpc::apps::xds::distinct_names;
/// let pair = |n: &str, p: &str| (n.to_owned(), p.to_owned());
/// assert!(distinct_names(&[pair("a", "/a"), pair("b", "/b")], &[pair("m", "/m")]).is_ok());
/// let twice = distinct_names(&[pair("b", "/x"), pair("b", "/y")], &[]).unwrap_err();
/// assert!(twice.contains("--service b=/x") && twice.contains("--service b=/y"), "{twice}");
/// assert!(distinct_names(&[pair("a", "/x")], &[pair("a", "/m")]).is_err());
/// ```
pub fn distinct_names(
    services: &[(String, String)],
    masters: &[(String, String)],
) -> Result<(), String> {
    let flags = services
        .iter()
        .map(|(name, path)| ("service", name, path))
        .chain(masters.iter().map(|(name, path)| ("master", name, path)));
    let mut seen: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for (flag, name, path) in flags {
        let given = format!("--{flag} {name}={path}");
        if let Some(first) = seen.insert(name, given.clone()) {
            return Err(format!(
                "the name {name} is given twice ({first} and {given}): give each name once"
            ));
        }
    }
    Ok(())
}

/// Runs `zoorpc xds` (or its subcommand); returns the exit status.
pub fn run(cli: XdsCli) -> i32 {
    match cli {
        XdsCli::Command(XdsCommand::Bootstrap(args)) => bootstrap::run(args),
        XdsCli::Serve(args) => serve(args),
    }
}

/// Serves xDS until SIGTERM / Ctrl-C.
fn serve(args: XdsArgs) -> i32 {
    let listen = args.listen;
    let credential =
        distinct_names(&args.services, &args.masters).and_then(|()| args.zk.credential());
    let metrics = args.metrics.clone();
    super::run_checked(credential, &metrics, |credential| {
        super::block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
                format!("cannot listen on {listen}: {e}; give another --listen address")
            })?;
            let local = listener
                .local_addr()
                .map_err(|e| format!("cannot read the listening address: {e}"))?;
            let session = super::open_session(&args.zk.zk, credential).await?;
            let linger = Duration::from_millis(args.linger_ms);
            let catalog =
                catalog::Catalog::start(session, &args.root, args.services, args.masters, linger);
            let signals = StopSignals::listen().map_err(|e| e.to_string())?;
            let (reporter, health) = tonic_health::server::health_reporter();
            for service in ["", ADS_SERVICE] {
                reporter
                    .set_service_status(service, ServingStatus::Serving)
                    .await;
            }
            let reflection = reflection()?;
            let (stop, stopping) = watch::channel(false);
            let ads = ads::Ads {
                catalog,
                stop: stopping.clone(),
            };
            let server = tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(Duration::from_secs(10)))
                .http2_keepalive_timeout(Some(Duration::from_secs(5)))
                .add_routes(reflection)
                .add_service(health)
                .add_service(AggregatedDiscoveryServiceServer::new(ads))
                .serve_with_incoming_shutdown(
                    without_nagle(listener),
                    stop_on_signal(signals, reporter, stop),
                );
            crate::say!("listening {local}");
            tokio::select! {
                served = server => served.map_err(|e| format!("xDS server failed: {e}"))?,
                () = grace_over(stopping) => {}
            }
            crate::say!("stopped");
            Ok::<_, String>(0)
        })
    })
}

/// Server reflection describing [`ADS_DESCRIPTORS`], health and reflection.
fn reflection() -> Result<tonic::service::Routes, String> {
    if ADS_DESCRIPTORS.is_empty() {
        tracing::warn!(
            "reflection does not describe the ADS service: this build found no descriptors of \
             envoy-types (see the build's warning); xDS itself is not affected"
        );
    }
    zoorpc_provider::with_reflection(tonic::service::Routes::default(), &[ADS_DESCRIPTORS])
        .map_err(|e| format!("cannot serve reflection: {e}; the build's ADS descriptors are bad"))
}

/// The connections `listener` accepts, each with Nagle's algorithm off: a push is several
/// writes (headers, data frames), and with it on the last one waited for the client's delayed
/// ACK, 40 ms on Linux, at every push of an assignment past a few kilobytes (tonic sets this
/// only on listeners it binds itself).
fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot turn Nagle's algorithm off");
            }
        })
    })
}

/// Resolves at SIGTERM / Ctrl-C, after turning health NOT_SERVING and ending every stream.
async fn stop_on_signal(
    mut signals: StopSignals,
    reporter: HealthReporter,
    stop: watch::Sender<bool>,
) {
    signals.recv().await;
    for service in ["", ADS_SERVICE] {
        reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    stop.send_replace(true);
}

/// Resolves [`STOP_GRACE`] after the stop began: connections still open then are cut.
async fn grace_over(mut stopping: watch::Receiver<bool>) {
    ads::stopped(&mut stopping).await;
    tokio::time::sleep(STOP_GRACE).await;
}

#[cfg(test)]
mod tests {
    use super::without_nagle;

    /// Every connection the xDS server accepts has Nagle's algorithm off (with it on, each push
    /// of a large assignment waited for the client's delayed ACK: 47 ms instead of 5 ms).
    #[tokio::test]
    async fn accepted_connections_have_nagle_off() -> std::io::Result<()> {
        use tokio_stream::StreamExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let mut accepted = Box::pin(without_nagle(listener));
        for _ in 0..2 {
            let _client = tokio::net::TcpStream::connect(address).await?;
            let stream = accepted.next().await.expect("a connection")?;
            assert!(stream.nodelay()?, "Nagle's algorithm is on");
        }
        Ok(())
    }
}
