//! `zoorpc proxy`: a local gRPC (HTTP/2, cleartext) forwarder for clients that cannot link
//! zoorpc. Every request it accepts goes through the registry's balanced channel
//! (`Consumer::channel()`, or `channel_with(CallPolicy::IDEMPOTENT)` with `--idempotent`) or,
//! with `--master PATH`, through `MasterClient::channel()` to the current master, so grpcurl,
//! Python grpcio or any HTTP/2 gRPC client gets picking, ejection and failover: client-side HA
//! without a virtual IP.
//!
//! Guarantees:
//! - The request is forwarded as it came (path, headers, body, trailers); the answer too. Any
//!   service and method: the proxy knows no proto.
//! - A request whose body has ended is forwarded whole, so the channel may replay it on another
//!   provider (a refused connection; with `--idempotent` also a broken one). The proxy reads a
//!   request body while its frames keep coming (each within [`FRAME_GAP`]) up to
//!   [`BUFFER_LIMIT`]; a body still open after that (a client or bidi stream waiting for the
//!   server) is forwarded as a stream, committed to its first provider, as the channel does
//!   with any streaming request.
//! - A failure of the channel itself is a gRPC status with the channel's code and reason
//!   (`UNAVAILABLE`: no provider, no master, nothing reached; `DEADLINE_EXCEEDED`: no answer
//!   within the attempt timeout or the client's deadline), never a dropped connection.
//! - One client connection may carry any number of calls at once (as tonic's server), unless
//!   `--max-concurrent-streams N` sets a limit (HTTP/2's `SETTINGS_MAX_CONCURRENT_STREAMS`).
//! - With `--master`, a call made while there is no master waits for one at most
//!   `--switch-over-timeout-ms` (default 15 s: longer than a contender's session timeout, so a
//!   killed master's node can expire; `MasterClientConfig::switch_over_timeout`) or the client's
//!   deadline, then fails with `UNAVAILABLE` naming the path.
//! - With `--metrics`, every call the proxy accepted counts exactly one outcome in
//!   `zoorpc_calls_total` (`cancelled` included: a client gone while its body was still read).
//! - Prints `listening <addr>` once it accepts connections and the registry was read; on
//!   SIGTERM / Ctrl-C it stops accepting and exits (calls in flight are cut).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio_stream::StreamExt;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;
use tower::Service;
use tracing::debug;
use zoorpc_consumer::{
    BalancedChannel, CallError, CallPolicy, Consumer, ConsumerConfig, ConsumerTls, MasterClient,
    MasterClientConfig, Strategy,
};
use zoorpc_provider::StopSignals;
use zoorpc_registry::ZkCredential;

use super::ZkArg;
use crate::cli::{MAX_MS, millis, number};

/// `zoorpc proxy` flags.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["base_path", "master", "curator_name"])))]
pub struct ProxyArgs {
    /// The ZooKeeper to talk to (`--zk`, default `ZOORPC_ZK`).
    #[command(flatten)]
    pub zk: ZkArg,
    /// Where to accept gRPC (HTTP/2 cleartext) connections, e.g. 127.0.0.1:50051
    #[arg(long, value_parser = crate::cli::socket_address)]
    pub listen: SocketAddr,
    /// Forward to the providers registered under this base path (balanced)
    #[arg(long, value_parser = super::znode_path)]
    pub base_path: Option<String>,
    /// Forward to the instances of a service in the Curator / Spring Cloud Zookeeper layout
    /// (balanced).
    #[command(flatten)]
    pub curator: super::CuratorArgs,
    /// Forward to the current master of this election path
    #[arg(long, value_parser = super::election_path)]
    pub master: Option<String>,
    /// Also retry requests that may have been sent (only for idempotent methods)
    #[arg(long)]
    pub idempotent: bool,
    /// How long an attempt waits for a provider's answer once the request was sent, before it
    /// fails (or, with --idempotent, is tried on another provider), also within a client's own
    /// deadline (grpc-timeout); without this flag a client's deadline replaces the default
    /// [default: 5000]
    #[arg(long = "attempt-timeout-ms", value_name = "MS", value_parser = millis(1..=MAX_MS))]
    pub attempt_timeout: Option<Duration>,
    /// With --master: how long a call waits for a master when there is none (no contender yet,
    /// or a switch-over under way) before it fails with UNAVAILABLE; a client's own deadline
    /// also applies [default: 15000]
    #[arg(long = "switch-over-timeout-ms", value_name = "MS", conflicts_with = "base_path", value_parser = millis(0..=MAX_MS))]
    pub switch_over_timeout: Option<Duration>,
    /// Most calls (HTTP/2 streams) one client connection may have open at once [default: no
    /// limit]
    #[arg(long, value_name = "N", value_parser = number(1..=u32::MAX))]
    pub max_concurrent_streams: Option<u32>,
    /// How a provider is picked (with --base-path): random, round-robin, least-loaded or first
    #[arg(long, conflicts_with = "master")]
    pub strategy: Option<Strategy>,
    /// Where to serve Prometheus metrics (calls, failures, retries, ejections, live endpoints,
    /// session state), if anywhere.
    #[command(flatten)]
    pub metrics: super::MetricsArg,
    #[command(flatten)]
    /// How https providers are verified (`--tls-ca`, client certificate, server name)
    pub tls: super::tls::ConsumerTlsArgs,
}

/// What the channel was made from: kept alive as long as the proxy runs.
enum Upstream {
    Providers(Consumer),
    Master(MasterClient),
}

/// Runs `zoorpc proxy`; returns the exit status.
pub fn run(args: ProxyArgs) -> i32 {
    let access = super::consumer_access(&args.zk, &args.tls);
    let metrics = args.metrics.clone();
    super::run_checked(access, &metrics, |(credential, tls)| {
        super::block_on(async move {
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .map_err(|e| {
                    format!(
                        "cannot listen on {}: {e}; pick another --listen address",
                        args.listen
                    )
                })?;
            let local = listener
                .local_addr()
                .map_err(|e| format!("cannot read the listening address: {e}"))?;
            let (upstream, target) = connect_upstream(&args, credential, tls).await?;
            let channel = match &upstream {
                Upstream::Providers(consumer) => consumer.channel_with(policy(&args)),
                Upstream::Master(client) => client.channel_with(policy(&args)),
            };
            let signals = StopSignals::listen().map_err(|e| e.to_string())?;
            crate::say!("listening {local} -> {target}");
            accept_until_signal(listener, signals, channel, args.max_concurrent_streams).await;
            drop(upstream);
            crate::say!("stopped");
            Ok::<_, String>(0)
        })
    })
}

/// The retry policy `--idempotent` and `--attempt-timeout-ms` ask for.
fn policy(args: &ProxyArgs) -> CallPolicy {
    let policy = if args.idempotent {
        CallPolicy::IDEMPOTENT
    } else {
        CallPolicy::default()
    };
    match args.attempt_timeout {
        Some(timeout) => policy.with_attempt_timeout(timeout),
        None => policy,
    }
}

/// The consumer (`--base-path`, `--curator-name`) or master client (`--master`) the proxy forwards through, and
/// how `listening` names it.
async fn connect_upstream(
    args: &ProxyArgs,
    credential: Option<ZkCredential>,
    tls: Option<ConsumerTls>,
) -> Result<(Upstream, String), String> {
    let providers = match (&args.base_path, args.curator.service()) {
        (Some(base), _) => Some(ConsumerConfig::new(args.zk.zk.clone(), base.clone())),
        (None, Some(_)) => Some(args.curator.consumer_config(&args.zk.zk, "")?),
        (None, None) => None,
    };
    match (providers, &args.master) {
        (Some(config), _) => {
            let base = config.base_path.clone();
            let mut config = config.strategy(args.strategy.clone().unwrap_or_default());
            config.zk_auth = credential;
            config.tls = tls;
            let consumer = Consumer::connect_with(config)
                .await
                .map_err(|e| e.to_string())?;
            Ok((
                Upstream::Providers(consumer),
                format!("providers under {base}"),
            ))
        }
        (None, Some(path)) => {
            let mut config = MasterClientConfig::new(args.zk.zk.clone(), path);
            config.zk_auth = credential;
            config.tls = tls;
            // The master client replaces a policy's attempt timeout with its own.
            config.attempt_timeout = policy(args).attempt_timeout;
            if let Some(timeout) = args.switch_over_timeout {
                config.switch_over_timeout = timeout;
            }
            let client = MasterClient::connect_with(config)
                .await
                .map_err(|e| e.to_string())?;
            Ok((Upstream::Master(client), format!("the master of {path}")))
        }
        (None, None) => Err("give --base-path, --curator-name or --master".to_owned()),
    }
}

/// Accepts client connections, each served on a task of its own, until SIGTERM / Ctrl-C.
async fn accept_until_signal(
    listener: tokio::net::TcpListener,
    mut signals: StopSignals,
    channel: BalancedChannel,
    max_streams: Option<u32>,
) {
    loop {
        tokio::select! {
            () = signals.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream, peer, channel.clone(), max_streams));
                }
                // Out of file descriptors and the like: keep serving the others, and
                // give them a moment to close some instead of spinning on the error.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Serves one client connection (HTTP/2), forwarding each request through `channel`, with at
/// most `max_streams` requests at once (`None`: no limit, as tonic's server).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    channel: BalancedChannel,
    max_streams: Option<u32>,
) {
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let mut channel = channel.clone();
            async move {
                let (parts, body) = request.into_parts();
                let reading = NotForwarded::new();
                let body = read_ahead(body).await;
                reading.forwarded();
                let request = http::Request::from_parts(parts, body);
                Ok::<_, Infallible>(forward(&mut channel, request).await)
            }
        });
    // hyper's server allows 200 streams per connection unless told otherwise; a gRPC client
    // multiplexes every call of a channel on one connection, so the 201st would queue.
    let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .max_concurrent_streams(max_streams)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        debug!(%peer, error = %e, "client connection ended");
    }
}

/// A call the proxy accepted and is still reading, before the channel (which counts every call
/// it is given) has it: dropped so (the client reset the stream, e.g. at its deadline, while its
/// body kept coming), it is counted here, `zoorpc_calls_total{outcome="cancelled"}`, so every
/// call the proxy accepted counts exactly one outcome.
struct NotForwarded {
    forwarded: bool,
}

impl NotForwarded {
    fn new() -> Self {
        NotForwarded { forwarded: false }
    }

    /// Handed to the channel, which counts it from now on.
    fn forwarded(mut self) {
        self.forwarded = true;
    }
}

impl Drop for NotForwarded {
    fn drop(&mut self) {
        if !self.forwarded {
            metrics::counter!("zoorpc_calls_total", "outcome" => "cancelled").increment(1);
        }
    }
}

/// Longest pause between two frames of a request body the proxy still waits for.
pub const FRAME_GAP: Duration = Duration::from_millis(20);

/// Most bytes of a request body the proxy reads before forwarding (the channel's own limit).
pub const BUFFER_LIMIT: usize = 256 * 1024;

/// Reads `body` ahead while its frames keep coming (see the module's guarantees): a body that
/// ended is returned whole (replayable), else what was read followed by the rest. Empty data
/// frames are left out: a client's empty end-of-stream DATA frame comes out of hyper as an
/// empty data frame, and forwarded as it came it would be an empty DATA frame that does not
/// end the stream, which a provider's HTTP/2 (h2 0.4.20 and later) counts against the
/// connection, closing it with `ENHANCE_YOUR_CALM` after 100. The stream's end is the body's.
async fn read_ahead(mut body: Incoming) -> Body {
    let mut frames: Vec<Frame<Bytes>> = Vec::new();
    let mut read = 0usize;
    while read <= BUFFER_LIMIT {
        match tokio::time::timeout(FRAME_GAP, body.frame()).await {
            Ok(None) => {
                return Body::new(StreamBody::new(tokio_stream::iter(
                    frames.into_iter().map(Ok::<_, hyper::Error>),
                )));
            }
            Ok(Some(Ok(frame))) if is_empty_data(&frame) => {}
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, Bytes::len);
                frames.push(frame);
            }
            // The client's stream broke: forward what there is and the error after it.
            Ok(Some(Err(e))) => {
                let read = tokio_stream::iter(frames.into_iter().map(Ok));
                return Body::new(StreamBody::new(read.chain(tokio_stream::once(Err(e)))));
            }
            Err(_) => break,
        }
    }
    let read = tokio_stream::iter(frames.into_iter().map(Ok));
    let rest = BodyStream::new(body).filter(|frame| !frame.as_ref().is_ok_and(is_empty_data));
    Body::new(StreamBody::new(read.chain(rest)))
}

/// Whether `frame` is a data frame carrying nothing.
fn is_empty_data(frame: &Frame<Bytes>) -> bool {
    frame.data_ref().is_some_and(Bytes::is_empty)
}

/// Forwards one request; a failure of the channel becomes a gRPC status.
pub async fn forward(
    channel: &mut BalancedChannel,
    request: http::Request<Body>,
) -> http::Response<Body> {
    match channel.call(request).await {
        // A response that fails later (its provider's connection broke, the deadline passed)
        // ends with the status as trailers, which the client reads.
        Ok(response) => response.map(zoorpc_consumer::balance::status_trailers),
        // The channel's own verdict keeps its code: DEADLINE_EXCEEDED for a call that may have
        // been processed (a client must not take it for a safe-to-retry UNAVAILABLE).
        Err(e) => match e.downcast::<CallError>() {
            // A proxy's client is a program's user: settings are named by the proxy's flags.
            Ok(failed) => tonic::Status::new(
                failed.status.code(),
                format!(
                    "zoorpc proxy: {}",
                    crate::cli::with_flags(failed.status.message())
                ),
            )
            .into_http(),
            Err(e) => match e.downcast::<tonic::Status>() {
                Ok(status) => status.into_http(),
                Err(e) => tonic::Status::unavailable(format!("zoorpc proxy: {e}")).into_http(),
            },
        },
    }
}
