//! The echo program: a provider of the tests' own `echo.v1.Echo` service
//! (`tests/proto/echo.proto`), i.e. a user's service as zoorpc sees it: served with
//! [`Provider::serve`], called through a consumer's balanced channel. Same flags and output
//! lines as the `provider` program (`registered <node> <url>`; `stopping`, `deregistered`, `stopped`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use zoorpc_provider::Provider;

/// Generated code of `echo.v1`.
pub mod proto {
    tonic::include_proto!("echo.v1");

    /// Encoded `FileDescriptorSet` of `echo.proto`, for server reflection
    /// (`ProviderConfig::file_descriptor_set`).
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("echo_descriptor");
}

pub use proto::echo_client::EchoClient;
pub use proto::echo_server::{Echo, EchoServer};
pub use proto::{EchoReply, EchoRequest};

/// The service: answers with the text and the server's own address (`host:port` it accepted
/// the call on), after `delay`.
///
/// ```
/// use std::sync::atomic::Ordering;
/// use std::time::Duration;
/// use zoorpc::apps::echo::{Echo, EchoRequest, EchoService};
/// let echo = EchoService::new(Duration::ZERO);
/// let request = tonic::Request::new(EchoRequest { text: "hi".into(), payload: vec![0; 3], ..Default::default() });
/// let reply = tokio::runtime::Runtime::new()?.block_on(echo.say(request))?.into_inner();
/// assert_eq!((reply.text.as_str(), reply.messages, reply.payload_bytes), ("hi", 1, 3));
/// assert_eq!(reply.server, ""); // no connection: no local address to name
/// assert_eq!(echo.calls().load(Ordering::Relaxed), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct EchoService {
    delay: Duration,
    /// How many times a handler started (tests count duplicates with it).
    calls: Arc<AtomicU64>,
}

impl EchoService {
    /// An echo that answers after `delay` (a slow provider when non-zero).
    pub fn new(delay: Duration) -> Self {
        EchoService {
            delay,
            calls: Arc::default(),
        }
    }

    /// The counter of handler starts, shared with every clone.
    pub fn calls(&self) -> Arc<AtomicU64> {
        self.calls.clone()
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

fn server_of<T>(request: &Request<T>) -> String {
    request
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn say(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.count();
        tokio::time::sleep(self.delay).await;
        let server = server_of(&request);
        let request = request.into_inner();
        Ok(Response::new(EchoReply {
            text: request.text,
            server,
            messages: 1,
            payload_bytes: request.payload.len() as u64,
        }))
    }

    type ExpandStream = ReplyStream;

    async fn expand(&self, request: Request<EchoRequest>) -> Result<Response<ReplyStream>, Status> {
        self.count();
        let server = server_of(&request);
        let request = request.into_inner();
        let interval = Duration::from_millis(u64::from(request.interval_ms));
        let count = u64::from(request.count.min(10_000));
        let stream = tokio_stream::iter(1..=count).then(move |n| {
            let (server, text) = (server.clone(), request.text.clone());
            async move {
                tokio::time::sleep(interval).await;
                Ok(EchoReply {
                    text,
                    server,
                    messages: n,
                    payload_bytes: 0,
                })
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn collect(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.count();
        let server = server_of(&request);
        let mut stream = request.into_inner();
        let (mut messages, mut payload_bytes, mut text) = (0u64, 0u64, String::new());
        while let Some(message) = stream.next().await {
            let message = message?;
            messages += 1;
            payload_bytes += message.payload.len() as u64;
            text = message.text;
        }
        Ok(Response::new(EchoReply {
            text,
            server,
            messages,
            payload_bytes,
        }))
    }
}

/// zoorpc-echo: serves the tests' echo.v1.Echo and keeps it registered until SIGTERM or Ctrl-C,
/// with the provider program's flags and lines.
#[derive(clap::Parser, Debug)]
#[command(name = "zoorpc-echo", version)]
pub struct EchoArgs {
    /// Where to register
    #[arg(long, default_value = "/services/echo", value_parser = super::znode_path)]
    pub base_path: String,
    /// Everything else a provider program is told.
    #[command(flatten)]
    pub serve: super::provider::ServeArgs,
    /// How much to log.
    #[command(flatten)]
    pub log: super::LogArgs,
}

/// Runs the echo provider program with the process arguments.
pub fn main() {
    let args: EchoArgs = crate::cli::parse();
    args.log.init("warn");
    std::process::exit(args.serve.run(&args.base_path, |program| {
        let config = program
            .config
            .file_descriptor_set(proto::FILE_DESCRIPTOR_SET);
        Provider::serve(config, EchoServer::new(EchoService::new(program.delay)))
    }));
}
