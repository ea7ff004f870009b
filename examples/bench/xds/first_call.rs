//! The first-call measure of `xds`: registration to the first call a stock Python grpcio xDS
//! client sends the new provider. Servers (`HelloService` and reflection, answering with their
//! URL) are started first and registered one per round, so a round times the registration, the
//! watch, the push and the client's own picking, not a server's start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use zoorpc::apps::hello::Greeter;
use zoorpc::apps::now_ms;
use zoorpc::proto::{FILE_DESCRIPTOR_SET, HelloServiceServer};
use zoorpc::registry::{ProviderUrl, Registration, Session, SessionConfig};

use super::Options;
use crate::harness::ChildProcess;
use crate::{json_num, quantile_ms};

const WARMUP: usize = 3;
/// Servers taking turns at joining (one more is always registered).
const TURNS: usize = 8;
const CLIENT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/xds_client.py");

pub async fn run(zk: &str, zoorpc: &Path, xds: &str, options: &Options) -> Result<String, String> {
    let name = format!("zoorpc-bench-xds-{}", std::process::id());
    let base = format!("/{name}");
    let session = Session::connect(SessionConfig::new(zk))
        .await
        .map_err(|e| e.to_string())?;
    let mut urls = Vec::new();
    for _ in 0..=TURNS {
        urls.push(serve().await?);
    }
    let _always = Registration::register(&session, &base, &urls[0])
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut client = start_client(zoorpc, xds, &name, dir.path(), options)?;
    let mut samples = Vec::with_capacity(options.rounds);
    for round in 0..options.rounds + WARMUP {
        let url = &urls[1 + round % TURNS];
        let registered = now_ms();
        let registration = Registration::register(&session, &base, url)
            .await
            .map_err(|e| e.to_string())?;
        let first = tokio::task::block_in_place(|| first_call_to(&mut client, url.as_str()))?;
        registration.deregister().await.map_err(|e| e.to_string())?;
        if round >= WARMUP {
            samples.push(Duration::from_millis((first - registered).max(0) as u64));
        }
    }
    let _ = session.client().delete(&base, None).await;
    let (p50, p99, max) = (
        quantile_ms(&mut samples, 0.5),
        quantile_ms(&mut samples, 0.99),
        quantile_ms(&mut samples, 1.0),
    );
    println!(
        "first call of a Python grpcio xDS client (a call every {} ms) to a new provider, over {} \
         rounds: p50 {p50:.0} ms p99 {p99:.0} ms max {max:.0} ms after its registration",
        options.interval_ms, options.rounds
    );
    Ok(format!(
        "\"first_call_p50_ms\":{},\"first_call_p99_ms\":{},\"first_call_max_ms\":{}",
        json_num(p50),
        json_num(p99),
        json_num(max)
    ))
}

/// Starts the Python client calling `xds:///name` with the bootstrap for `xds` (written in
/// `dir`), once it has had its first answer.
fn start_client(
    zoorpc: &Path,
    xds: &str,
    name: &str,
    dir: &Path,
    options: &Options,
) -> Result<ChildProcess, String> {
    let python = options.python.clone().unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/tmp/interop-venv/bin/python"
        ))
    });
    if !python.is_file() {
        return Err(format!(
            "no Python with grpcio at {}: run `scripts/install-python-grpcio` once (it makes \
             that venv) or give --python",
            python.display()
        ));
    }
    let bootstrap = dir.join("bootstrap.json");
    let out = Command::new(zoorpc)
        .args(["xds", "bootstrap", "--listen", xds])
        .output()
        .map_err(|e| e.to_string())?;
    std::fs::write(&bootstrap, &out.stdout).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&python);
    cmd.arg("-u")
        .arg(CLIENT_PY)
        .env("GRPC_XDS_BOOTSTRAP", &bootstrap);
    cmd.args(["calls", &format!("xds:///{name}"), "100000000"])
        .arg(options.interval_ms.to_string());
    let mut client = ChildProcess::spawn("python xds client", cmd).map_err(|e| e.to_string())?;
    tokio::task::block_in_place(|| client.wait_for_line("ok ", Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    Ok(client)
}

/// Reads the client's lines until a call answered by `url`; returns when (Unix ms).
fn first_call_to(client: &mut ChildProcess, url: &str) -> Result<i64, String> {
    loop {
        let line = client
            .wait_for_line("", Duration::from_secs(10))
            .map_err(|e| format!("no call reached {url}: {e}"))?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("ok"), Some(provider), Some(at)) if provider == url => {
                return at.parse().map_err(|_| line.clone());
            }
            (Some("ok"), _, _) => {}
            _ => return Err(format!("a call failed: {line}")),
        }
    }
}

/// A server of `HelloService` and reflection on a free loopback port, answering as its URL.
async fn serve() -> Result<ProviderUrl, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let url = ProviderUrl::http("127.0.0.1", port).map_err(|e| e.to_string())?;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| e.to_string())?;
    let router = tonic::transport::Server::builder()
        .add_service(HelloServiceServer::new(Greeter::new(url.as_str())))
        .add_service(reflection);
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    Ok(url)
}
