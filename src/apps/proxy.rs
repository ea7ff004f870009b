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
//! - A failure of the channel itself (no provider, no master, every attempt failed) is a gRPC
//!   status (`UNAVAILABLE` with the reason), never a dropped connection.
//! - Prints `listening <addr>` once it accepts connections and the registry was read; on
//!   SIGTERM / Ctrl-C it stops accepting and exits (calls in flight are cut).

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;
use tower::Service;
use tracing::debug;
use zoorpc_consumer::{
    BalancedChannel, CallPolicy, Consumer, ConsumerConfig, MasterClient, MasterClientConfig,
    Strategy,
};
use zoorpc_provider::StopSignals;

use super::ZkArg;

/// `zoorpc proxy` flags.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["base_path", "master"])))]
pub struct ProxyArgs {
    #[command(flatten)]
    pub zk: ZkArg,
    /// Where to accept gRPC (HTTP/2 cleartext) connections, e.g. 127.0.0.1:50051
    #[arg(long)]
    pub listen: SocketAddr,
    /// Forward to the providers registered under this base path (balanced)
    #[arg(long)]
    pub base_path: Option<String>,
    /// Forward to the current master of this election path
    #[arg(long)]
    pub master: Option<String>,
    /// Also retry requests that may have been sent (only for idempotent methods)
    #[arg(long)]
    pub idempotent: bool,
    /// How a provider is picked (with --base-path): random, round-robin, least-loaded or first
    #[arg(long, conflicts_with = "master")]
    pub strategy: Option<Strategy>,
}

/// What the channel was made from: kept alive as long as the proxy runs.
enum Upstream {
    Providers(Consumer),
    Master(MasterClient),
}

/// Runs `zoorpc proxy`; returns the exit status.
pub fn run(args: ProxyArgs) -> i32 {
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
        let policy = if args.idempotent {
            CallPolicy::IDEMPOTENT
        } else {
            CallPolicy::default()
        };
        let (upstream, target) = match (&args.base_path, &args.master) {
            (Some(base), _) => {
                let config = ConsumerConfig::new(args.zk.zk.clone(), base.clone())
                    .strategy(args.strategy.clone().unwrap_or_default());
                let consumer = Consumer::connect_with(config)
                    .await
                    .map_err(|e| e.to_string())?;
                (
                    Upstream::Providers(consumer),
                    format!("providers under {base}"),
                )
            }
            (None, Some(path)) => {
                let client =
                    MasterClient::connect_with(MasterClientConfig::new(args.zk.zk.clone(), path))
                        .await
                        .map_err(|e| e.to_string())?;
                (Upstream::Master(client), format!("the master of {path}"))
            }
            (None, None) => return Err("give --base-path or --master".to_owned()),
        };
        let channel = match &upstream {
            Upstream::Providers(consumer) => consumer.channel_with(policy),
            Upstream::Master(client) => client.channel_with(policy),
        };
        let mut signals = StopSignals::listen().map_err(|e| e.to_string())?;
        crate::say!("listening {local} -> {target}");
        loop {
            tokio::select! {
                () = signals.recv() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve_connection(stream, peer, channel.clone()));
                    }
                    // Out of file descriptors and the like: keep serving the others.
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                },
            }
        }
        drop(upstream);
        crate::say!("stopped");
        Ok::<_, String>(0)
    })
}

/// Serves one client connection (HTTP/2), forwarding each request through `channel`.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    channel: BalancedChannel,
) {
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let mut channel = channel.clone();
            async move { Ok::<_, Infallible>(forward(&mut channel, request.map(Body::new)).await) }
        });
    let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        debug!(%peer, error = %e, "client connection ended");
    }
}

/// Forwards one request; a failure of the channel becomes a gRPC status.
pub async fn forward(
    channel: &mut BalancedChannel,
    request: http::Request<Body>,
) -> http::Response<Body> {
    match channel.call(request).await {
        Ok(response) => response,
        Err(e) => match e.downcast::<tonic::Status>() {
            Ok(status) => status.into_http(),
            Err(e) => tonic::Status::unavailable(format!("zoorpc proxy: {e}")).into_http(),
        },
    }
}
