//! The channel's connections and a stock gRPC server's ping policy: grpc-java, grpc-go and
//! C-core servers (Python here) allow one HTTP/2 PING per 5 minutes while calls are open, and
//! close a connection pinged more often (`GOAWAY ENHANCE_YOUR_CALM "too_many_pings"`), failing
//! every call on it. zoorpc's consumer finds silent providers with a health-check request
//! instead (consumer `balance::liveness`), so a call that is quiet for long is not cut by the
//! server it calls.

use std::time::{Duration, Instant};

use crate::common::{self, zk};
use zoorpc::consumer::{Consumer, ConsumerConfig};
use zoorpc::proto::{HelloRequest, HelloServiceClient};
use zoorpc_testkit::unique_path;

/// How long the call stays quiet: past the PINGs a client pinging every 10 s sends before the
/// server below closes the connection (measured with HTTP/2 keepalive at 10 s, zoorpc's until
/// it probed with requests: the call failed `UNAVAILABLE "Too many pings"` at 40 s).
const QUIET_SECS: u64 = 44;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_quiet_call_is_not_cut_by_a_stock_servers_ping_policy() {
    // Python grpcio's server with its ping policy at one strike (its default is two: one strike
    // fewer makes a pinging client fail 10 s sooner).
    let (_server, port) = crate::interop::python_hello_server(
        &["--max-ping-strikes", "1"],
        "the server with a ping policy",
    );
    let base = unique_path("ping-policy");
    let raw = common::raw_client(&zk().connect_string()).await;
    crate::picking::register_raw(&raw, &base, &format!("http://127.0.0.1:{port}")).await;
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
