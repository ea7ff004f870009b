//! `zoorpc proxy` under what stock gRPC clients do: many calls on one connection, calls
//! cancelled at the client's deadline (and counted), no master to forward to.

use crate::common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::prometheus::{free_addr, scrape, sum};
use common::echo_load::{echo_provider, say};
use common::{eventually_blocking, zk};
use tokio::task::JoinSet;
use zoorpc::apps::echo::{EchoClient, EchoRequest};
use zoorpc_testkit::{ChildProcess, unique_path};

const ZOORPC: &str = env!("CARGO_BIN_EXE_zoorpc");

/// `zoorpc proxy --zk CONNECT --listen 127.0.0.1:0 ARGS...` once it listens: the process and
/// the address it accepts on.
fn start_proxy(args: &[&str]) -> (ChildProcess, String) {
    let connect = zk().connect_string();
    let mut cmd = Command::new(ZOORPC);
    cmd.args(["proxy", "--zk", &connect, "--listen", "127.0.0.1:0"])
        .args(args);
    let mut proxy = ChildProcess::spawn("proxy", cmd).expect("spawn proxy");
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .expect("proxy listens");
    let addr = line.split_whitespace().nth(1).expect("address").to_owned();
    (proxy, addr)
}

/// One plain tonic channel (one HTTP/2 connection) to `addr`.
async fn one_connection(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to the proxy")
}

/// The proxy's metrics at `addr` once they count `calls` calls (at most 20 s).
fn counted(addr: &str, calls: f64) -> String {
    let what = format!("{calls} calls counted");
    eventually_blocking(&what, Duration::from_secs(20), || {
        let body = scrape(addr);
        if sum(&body, "zoorpc_calls_total", "") >= calls {
            Ok(body)
        } else {
            Err(body)
        }
    })
}

/// Six hundred calls open at once on one client connection (a Python or Node channel carries
/// all its calls on one): every one gets its answer's headers, and a unary call still gets
/// through. hyper's server would have queued every call past the 200th.
#[test]
fn one_client_connection_carries_600_calls_at_once() {
    let base = unique_path("proxy-streams");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (provider, _calls) = rt.block_on(echo_provider(&base, Duration::ZERO));
    let (_proxy, addr) = start_proxy(&["--base-path", &base]);
    rt.block_on(async {
        let client = EchoClient::new(one_connection(&addr).await);
        let mut opening = JoinSet::new();
        for n in 0..600 {
            let mut client = client.clone();
            // One reply, a minute away: the stream stays open for the whole test.
            let request = EchoRequest {
                text: format!("stream {n}"),
                count: 1,
                interval_ms: 60_000,
                ..EchoRequest::default()
            };
            opening.spawn(async move { client.expand(request).await });
        }
        let mut open = Vec::new();
        let all_open = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(opened) = opening.join_next().await {
                open.push(opened.expect("task").expect("stream opened"));
            }
        })
        .await;
        assert!(
            all_open.is_ok(),
            "only {} of 600 streams opened through the proxy on one connection",
            open.len()
        );
        let mut unary = client.clone();
        let answer = tokio::time::timeout(Duration::from_secs(20), unary.say(say("beside")))
            .await
            .expect("a unary call beside 600 open streams got no answer")
            .expect("unary call");
        assert_eq!(answer.into_inner().text, "beside");
        drop(open);
        provider.shutdown().await.expect("provider stops");
    });
}

/// `--max-concurrent-streams N` sets a limit where one is wanted: calls past it wait for a
/// stream to end instead of failing.
#[test]
fn max_concurrent_streams_limits_one_connection() {
    let base = unique_path("proxy-stream-limit");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (provider, calls) = rt.block_on(echo_provider(&base, Duration::ZERO));
    let (_proxy, addr) = start_proxy(&["--base-path", &base, "--max-concurrent-streams", "2"]);
    rt.block_on(async {
        let mut client = EchoClient::new(one_connection(&addr).await);
        let held = EchoRequest {
            count: 1,
            interval_ms: 60_000,
            ..EchoRequest::default()
        };
        let first = client.expand(held.clone()).await.expect("first stream");
        let second = client.expand(held).await.expect("second stream");
        // A third call waits for a stream to end: past its own deadline, never reaching the
        // provider.
        let mut third = tonic::Request::new(say("third"));
        third.set_timeout(Duration::from_millis(500));
        let status = client
            .say(third)
            .await
            .expect_err("a third call ran past a limit of 2");
        // tonic's client gives up on its own deadline with CANCELLED ("Timeout expired").
        assert_eq!(status.code(), tonic::Code::Cancelled, "{status}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // A stream ends: the next call runs.
        drop(first);
        let answer = tokio::time::timeout(Duration::from_secs(20), client.say(say("fourth")))
            .await
            .expect("no call ran after a stream ended")
            .expect("fourth call");
        assert_eq!(answer.into_inner().text, "fourth");
        drop(second);
        provider.shutdown().await.expect("provider stops");
    });
    let (code, _, stderr) = common::run_command(
        {
            let mut cmd = Command::new(ZOORPC);
            cmd.args(["proxy", "--zk", "127.0.0.1:1", "--listen", "127.0.0.1:0"])
                .args(["--base-path", "/x", "--max-concurrent-streams", "0"]);
            cmd
        },
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--max-concurrent-streams"), "{stderr}");
}

/// `proxy --master --switch-over-timeout-ms`: with no master, a call fails with UNAVAILABLE
/// naming the path after that bound (the default is 15 s).
#[test]
fn proxy_master_waits_for_a_master_at_most_the_switch_over_timeout() {
    let path = format!("{}/Hello:1.0.0", unique_path("proxy-no-master"));
    let (_proxy, addr) = start_proxy(&["--master", &path, "--switch-over-timeout-ms", "400"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client = EchoClient::new(one_connection(&addr).await);
        let started = Instant::now();
        let status = tokio::time::timeout(Duration::from_secs(10), client.say(say("x")))
            .await
            .expect("the call waited past 10 s")
            .expect_err("no master: the call fails");
        let took = started.elapsed();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
        assert!(status.message().contains(&path), "{status}");
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    });
    // The library's setting behind the flag: the same bound for a MasterClient's calls.
    rt.block_on(async {
        let mut config = zoorpc::consumer::MasterClientConfig::new(zk().connect_string(), &path);
        config.switch_over_timeout = Duration::from_millis(400);
        let client = zoorpc::consumer::MasterClient::connect_with(config)
            .await
            .expect("master client");
        let started = Instant::now();
        let error = client.say_hello("x").await.expect_err("no master");
        let took = started.elapsed();
        assert!(error.to_string().contains(&path), "{error}");
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(5),
            "{took:?}"
        );
    });
    // Only with --master; a bad number is a usage error.
    for args in [
        &["--base-path", "/x", "--switch-over-timeout-ms", "100"][..],
        &["--master", "/x", "--switch-over-timeout-ms", "soon"][..],
    ] {
        let mut cmd = Command::new(ZOORPC);
        cmd.args(["proxy", "--zk", "127.0.0.1:1", "--listen", "127.0.0.1:0"])
            .args(args);
        let (code, _, stderr) = common::run_command(cmd, Duration::from_secs(20));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--switch-over-timeout-ms"), "{stderr}");
    }
}

/// Calls a client cancels at its own deadline (a Python or Node client resets the stream) are
/// counted: every call the proxy accepted ends in exactly one outcome, and every attempt on the
/// hung provider in one `attempt_failures_total` series of that provider.
#[test]
fn calls_cancelled_at_the_clients_deadline_are_counted_once_each() {
    let base = unique_path("proxy-cancelled");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // A provider that answers after a minute: hung, as far as a 300 ms deadline can tell.
    let (provider, calls) = rt.block_on(echo_provider(&base, Duration::from_secs(60)));
    let hung = provider.url().to_string();
    let metrics = free_addr();
    let (_proxy, addr) = start_proxy(&["--base-path", &base, "--metrics", &metrics]);
    rt.block_on(async {
        let mut client = EchoClient::new(one_connection(&addr).await);
        for n in 0..10 {
            let mut request = tonic::Request::new(say(&format!("call {n}")));
            request.set_timeout(Duration::from_millis(300));
            let status = client.say(request).await.expect_err("a hung provider");
            // The client's own timer (CANCELLED) or the proxy's answer at the deadline.
            assert!(
                matches!(
                    status.code(),
                    tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
                ),
                "{status}"
            );
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), 10);
    // The proxy learns of a reset a moment after the client sent it.
    let body = counted(&metrics, 10.0);
    assert_eq!(sum(&body, "zoorpc_calls_total", ""), 10.0, "{body}");
    assert_eq!(
        sum(&body, "zoorpc_calls_total", "outcome=\"answered\""),
        0.0,
        "{body}"
    );
    let of_hung = format!("endpoint=\"{hung}\"");
    assert_eq!(
        sum(&body, "zoorpc_attempt_failures_total", &of_hung),
        10.0,
        "{body}"
    );
    assert_eq!(sum(&body, "zoorpc_attempts_total", ""), 0.0, "{body}");
    rt.block_on(provider.shutdown()).expect("provider stops");
}

/// `proxy --master --attempt-timeout-ms`: a master slower than the attempt timeout answers
/// `DEADLINE_EXCEEDED` within about it (the master client had replaced it with its own 5 s).
#[test]
fn proxy_master_honours_the_attempt_timeout() {
    let path = format!("{}/Echo:1.0.0", unique_path("proxy-master-slow"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(async {
        let config = zoorpc::provider::HaServerConfig::new(zk().connect_string(), &path, 0);
        let slow = zoorpc::apps::echo::EchoService::new(Duration::from_secs(3));
        let server =
            zoorpc::provider::HaServer::serve(config, zoorpc::apps::echo::EchoServer::new(slow))
                .await
                .expect("HA server");
        let mut roles = server.election().expect("contending").subscribe();
        tokio::time::timeout(Duration::from_secs(20), roles.wait_for(|r| r.is_master()))
            .await
            .expect("never master")
            .expect("role watch");
        server
    });
    let (_proxy, addr) = start_proxy(&["--master", &path, "--attempt-timeout-ms", "300"]);
    rt.block_on(async {
        let mut client = EchoClient::new(one_connection(&addr).await);
        let started = Instant::now();
        let status = client
            .say(say("slow"))
            .await
            .expect_err("slower than the timeout");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
        server.shutdown().await.expect("HA server stops");
    });
}

/// A client stream whose messages keep coming is read ahead by the proxy (up to 256 KiB) before
/// the channel sees it; cancelled by the client's deadline meanwhile, it still counts as one
/// call, `cancelled`: counted by the channel when the reset reaches it through the body, by the
/// proxy when hyper drops the call first.
#[test]
fn a_call_cancelled_while_the_proxy_reads_its_body_is_counted() {
    let base = unique_path("proxy-cancelled-body");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (provider, _calls) = rt.block_on(echo_provider(&base, Duration::ZERO));
    let metrics = free_addr();
    let (_proxy, addr) = start_proxy(&["--base-path", &base, "--metrics", &metrics]);
    rt.block_on(async {
        let mut client = EchoClient::new(one_connection(&addr).await);
        // A small message every 5 ms, for ever: the proxy's read-ahead never ends on its own.
        let messages = tokio_stream::StreamExt::throttle(
            tokio_stream::iter(std::iter::repeat_with(|| say("tick"))),
            Duration::from_millis(5),
        );
        let mut request = tonic::Request::new(messages);
        request.set_timeout(Duration::from_millis(300));
        let status = client.collect(request).await.expect_err("cancelled");
        assert!(
            matches!(
                status.code(),
                tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
            ),
            "{status}"
        );
    });
    // Whether the read-ahead was still under way (frames every 5 ms) or a pause of the loaded
    // machine let the proxy forward it as a stream already: one call, cancelled by the client's
    // reset, or failed on the deadline the proxy took from `grpc-timeout` when its own timer
    // fired first (a loaded machine delays the reset).
    let body = counted(&metrics, 1.0);
    let cancelled = sum(&body, "zoorpc_calls_total", "outcome=\"cancelled\"");
    let deadline = sum(&body, "zoorpc_attempt_failures_total", "class=\"deadline\"");
    assert!(
        cancelled == 1.0
            || (deadline == 1.0 && sum(&body, "zoorpc_calls_total", "outcome=\"failed\"") == 1.0),
        "{body}"
    );
    assert_eq!(sum(&body, "zoorpc_calls_total", ""), 1.0, "{body}");
    rt.block_on(provider.shutdown()).expect("provider stops");
}

/// Client streams through the proxy, from a tonic client (which ends a stream with an empty
/// DATA frame of its own): the proxy forwards no empty DATA frame that does not end the stream.
/// A provider's HTTP/2 (h2 0.4.20 and later) closes a connection that received more than 100
/// of those (`ENHANCE_YOUR_CALM`, "too_many_data_frames"): the 101st client stream through one
/// proxy failed, and every call in flight on that connection with it.
#[test]
fn client_streams_through_the_proxy_never_wear_out_the_providers_connection() {
    let base = unique_path("proxy-client-streams");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (provider, _calls) = rt.block_on(echo_provider(&base, Duration::ZERO));
    let (_proxy, addr) = start_proxy(&["--base-path", &base]);
    rt.block_on(async {
        let client = EchoClient::new(one_connection(&addr).await);
        let mut streams = JoinSet::new();
        for n in 0..150 {
            let mut client = client.clone();
            streams.spawn(async move {
                // Two messages 50 ms apart: the proxy forwards the body as a stream, and the
                // client's empty end-of-stream frame comes through it.
                let messages = tokio_stream::StreamExt::throttle(
                    tokio_stream::iter([say("one"), say("two")]),
                    Duration::from_millis(50),
                );
                client
                    .collect(tonic::Request::new(messages))
                    .await
                    .map(|reply| reply.into_inner().messages)
                    .map_err(|status| format!("stream {n}: {status}"))
            });
        }
        let mut failed = Vec::new();
        while let Some(done) = streams.join_next().await {
            match done.expect("task") {
                Ok(messages) => assert_eq!(messages, 2),
                Err(e) => failed.push(e),
            }
        }
        assert!(
            failed.is_empty(),
            "{} failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        provider.shutdown().await.expect("provider stops");
    });
}
