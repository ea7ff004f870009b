//! The channel's connections and a stock gRPC server's ping policy: grpc-java, grpc-go and
//! C-core servers (Python here) allow one HTTP/2 PING per 5 minutes while calls are open, and
//! close a connection pinged more often (`GOAWAY ENHANCE_YOUR_CALM "too_many_pings"`), failing
//! every call on it. zoorpc's consumer finds silent providers with a health-check request
//! instead (consumer `balance::liveness`), so a call that is quiet for long is not cut by the
//! server it calls.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, zk};
use zoorpc::consumer::{Consumer, ConsumerConfig};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::{ChildProcess, unique_path};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How long the call stays quiet: past the PINGs a client pinging every 10 s sends before the
/// server below closes the connection (measured with HTTP/2 keepalive at 10 s, zoorpc's until
/// it probed with requests: the call failed `UNAVAILABLE "Too many pings"` at 40 s).
const QUIET_SECS: u64 = 44;

/// Python grpcio's server with its ping policy at one strike (its default is two: one strike
/// fewer makes a pinging client fail 10 s sooner): the process and its `host:port`.
fn strict_python_server() -> (ChildProcess, String) {
    let python = match crate::interop::python() {
        Ok(python) => python,
        Err(why) => panic!("no Python grpcio for the server with a ping policy: {why}"),
    };
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(format!("{ROOT}/tests/interop/hello_server.py"))
        .args(["--max-ping-strikes", "1"]);
    let mut server = ChildProcess::spawn("python hello server", cmd).expect("spawn python");
    let line = server
        .wait_for_line("listening ", Duration::from_secs(30))
        .expect("the python server listens");
    let address = line.trim_start_matches("listening ").trim().to_owned();
    (server, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_quiet_call_is_not_cut_by_a_stock_servers_ping_policy() {
    let (_server, address) = strict_python_server();
    let base = unique_path("ping-policy");
    let raw = common::raw_client(&zk().connect_string()).await;
    crate::picking::register_raw(&raw, &base, &format!("http://{address}")).await;
    let consumer = Consumer::connect_with(ConsumerConfig::new(zk().connect_string(), &base))
        .await
        .expect("consumer");
    assert!(
        consumer
            .wait_until(Duration::from_secs(5), |urls| urls.len() == 1)
            .await,
        "{:?}",
        consumer.urls()
    );
    let mut client = HelloServiceClient::new(consumer.channel());
    // The connection is made and used first: then it is quiet for the whole call.
    client
        .say_hello(HelloRequest {
            name: "first".into(),
        })
        .await
        .expect("a first call");
    let mut request = tonic::Request::new(HelloRequest {
        name: format!("quiet:{QUIET_SECS}"),
    });
    request.set_timeout(Duration::from_secs(QUIET_SECS + 30));
    let started = Instant::now();
    let reply = client.say_hello(request).await;
    let reply = reply.unwrap_or_else(|status| {
        panic!(
            "a call quiet for {QUIET_SECS} s failed after {:?}: {status}",
            started.elapsed()
        )
    });
    assert_eq!(
        reply.into_inner().message,
        format!("Hello quiet:{QUIET_SECS} from python")
    );
    assert!(started.elapsed() >= Duration::from_secs(QUIET_SECS));
}
