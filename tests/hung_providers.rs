//! Providers that hang or vanish mid-call, as real processes: paused with SIGSTOP (a stream
//! whose provider is silent), killed with SIGKILL (a connection broken mid-call).

mod common;

use std::time::{Duration, Instant};

use common::echo_load::{consumer, spawn_echo};
use common::zk;
use zoorpc::apps::echo::{EchoClient, EchoRequest};
use zoorpc::consumer::Strategy;
use zoorpc_testkit::{ChildProcess, unique_path};

/// `zoorpc proxy` for `base` on a free loopback port: the process and its address.
fn start_proxy(base: &str) -> (ChildProcess, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zoorpc"));
    cmd.args([
        "proxy",
        "--zk",
        &zk().connect_string(),
        "--listen",
        "127.0.0.1:0",
    ])
    .args(["--base-path", base]);
    let mut proxy = ChildProcess::spawn("proxy", cmd).expect("spawn the proxy");
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .expect("the proxy listens");
    let addr = line.split_whitespace().nth(1).expect("address").to_owned();
    (proxy, addr)
}

/// `zoorpc-echo` for `base` whose ZooKeeper session outlives the test (30 s): paused, it stays
/// in the consumer's list, so only the channel's own signals can take it out.
fn spawn_lasting_echo(base: &str) -> common::echo_load::EchoProcess {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zoorpc-echo"));
    cmd.args([
        "--zk",
        &zk().connect_string(),
        "--base-path",
        base,
        "--port",
        "0",
    ])
    .args(["--session-timeout-ms", "30000", "--drain-grace-ms", "300"]);
    let mut process = ChildProcess::spawn("echo", cmd).expect("spawn echo");
    let line = process
        .wait_for_line("registered ", Duration::from_secs(20))
        .expect("echo registers");
    let url = line.split_whitespace().nth(2).expect("url").to_owned();
    common::echo_load::EchoProcess { process, url }
}

/// Reads `stream` to its end, within 10 s.
async fn stream_end(
    stream: &mut tonic::Streaming<zoorpc::apps::echo::EchoReply>,
) -> Option<tonic::Status> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => break None,
                Err(status) => break Some(status),
            }
        }
    })
    .await
    .expect("the stream ends when its provider's connection breaks")
}

/// A server stream whose provider is paused (SIGSTOP) and whose caller set no deadline ends
/// with `UNAVAILABLE` once HTTP/2 keepalive finds the silent connection: within the keepalive
/// interval and timeout (10 s + 5 s), not never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_from_a_paused_provider_ends_unavailable_without_a_deadline() {
    let base = unique_path("hung-stream");
    let echo = spawn_echo(&base);
    let consumer = consumer(&base, Strategy::Random, 1).await;
    let mut client = EchoClient::new(consumer.channel());
    let request = EchoRequest {
        text: "s".into(),
        count: 10_000,
        interval_ms: 50,
        ..EchoRequest::default()
    };
    let mut stream = client.expand(request).await.expect("headers").into_inner();
    for _ in 0..3 {
        let first = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
        assert!(matches!(first, Ok(Ok(Some(_)))), "{first:?}");
    }
    echo.process.pause().expect("SIGSTOP the provider");
    let paused = Instant::now();
    // Keepalive interval + timeout, and room for a loaded machine.
    let bound = Duration::from_secs(10 + 5 + 10);
    let ended = tokio::time::timeout(bound, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => break None,
                Err(status) => break Some(status),
            }
        }
    })
    .await;
    let took = paused.elapsed();
    let ended =
        ended.unwrap_or_else(|_| panic!("the stream still hangs {bound:?} after the pause"));
    let status = ended.expect("a paused provider's stream must not end normally");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(&echo.url),
        "names the provider: {status}"
    );
    assert!(
        took >= Duration::from_secs(9),
        "ended before keepalive could: {took:?}"
    );
}

/// A provider killed (SIGKILL) during a server stream: the stream ends `UNAVAILABLE` naming the
/// provider whose connection broke, not `UNKNOWN "transport error"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_during_a_stream_ends_it_unavailable_naming_the_provider() {
    let base = unique_path("killed-stream");
    let mut echo = spawn_echo(&base);
    let consumer = consumer(&base, Strategy::Random, 1).await;
    let mut client = EchoClient::new(consumer.channel());
    let request = EchoRequest {
        text: "s".into(),
        count: 10_000,
        interval_ms: 20,
        ..EchoRequest::default()
    };
    let mut stream = client.expand(request).await.expect("headers").into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
    assert!(matches!(first, Ok(Ok(Some(_)))), "{first:?}");
    echo.process.kill();
    let status = stream_end(&mut stream)
        .await
        .expect("a killed provider's stream must not end normally");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(&echo.url),
        "names the provider: {status}"
    );
}

/// A provider killed (SIGKILL) while a call waits for its answer (a client stream it has
/// started reading): `UNAVAILABLE` naming the provider, on the default (non-idempotent) policy
/// that cannot retry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_mid_call_fails_it_unavailable_naming_the_provider() {
    let base = unique_path("killed-call");
    let mut echo = spawn_echo(&base);
    let consumer = consumer(&base, Strategy::Random, 1).await;
    let mut client = EchoClient::new(consumer.channel());
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let call = tokio::spawn(async move {
        client
            .collect(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    // The first message is over the channel's buffer limit: the call reads it and commits the
    // body to one provider, reading no more. The channel holds one message: once the third is
    // accepted, the second was taken, and only the call's HTTP/2 stream, open on the provider's
    // connection, takes messages now.
    for i in 0..3 {
        let payload = if i == 0 {
            vec![7; 300 * 1024]
        } else {
            Vec::new()
        };
        let sent = tokio::time::timeout(
            Duration::from_secs(10),
            tx.send(EchoRequest {
                text: format!("m{i}"),
                payload,
                ..EchoRequest::default()
            }),
        )
        .await;
        assert!(matches!(sent, Ok(Ok(()))), "the call takes its messages");
    }
    echo.process.kill();
    let status = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call ends when its provider's connection breaks")
        .expect("call task")
        .expect_err("a killed provider cannot answer");
    drop(tx);
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(&echo.url),
        "names the provider: {status}"
    );
}

/// The same through `zoorpc proxy`: a stream whose provider is killed ends `UNAVAILABLE` naming
/// the provider for the proxy's client too (its stream was reset before: `INTERNAL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_proxy_a_killed_providers_stream_ends_unavailable_naming_it() {
    let base = unique_path("killed-proxy");
    let mut echo = spawn_echo(&base);
    let (_proxy, addr) = start_proxy(&base);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("proxy URL")
        .connect()
        .await
        .expect("connect to the proxy");
    let mut client = EchoClient::new(channel);
    let request = EchoRequest {
        text: "s".into(),
        count: 10_000,
        interval_ms: 20,
        ..EchoRequest::default()
    };
    let mut stream = client.expand(request).await.expect("headers").into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
    assert!(matches!(first, Ok(Ok(Some(_)))), "{first:?}");
    echo.process.kill();
    let status = stream_end(&mut stream)
        .await
        .expect("a killed provider's stream must not end normally");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(&echo.url),
        "names the provider: {status}"
    );
}

/// Callers whose deadline (1 s) is shorter than any attempt timeout still get a hung provider
/// (SIGSTOP, its registration kept) ejected: five calls in a row that reached their deadline
/// with no response headers are the signal; then calls succeed on the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_deadlines_eject_a_hung_provider_and_calls_succeed_on_the_others() {
    let base = unique_path("hung-short-deadlines");
    let echoes: Vec<_> = (0..3).map(|_| spawn_lasting_echo(&base)).collect();
    let consumer = consumer(&base, Strategy::Random, 3).await;
    let client = EchoClient::new(consumer.channel());
    let call = |mut client: EchoClient<_>| async move {
        let mut request = tonic::Request::new(common::echo_load::say("short"));
        request.set_timeout(Duration::from_secs(1));
        client.say(request).await
    };
    // The three answer.
    for _ in 0..10 {
        call(client.clone()).await.expect("all providers answer");
    }
    let hung = &echoes[0];
    hung.process.pause().expect("SIGSTOP a provider");
    let paused = Instant::now();
    let ejected = || {
        consumer
            .endpoints()
            .iter()
            .any(|e| e.url().as_str() == hung.url && e.is_ejected())
    };
    // Four callers at a time, until the hung provider is ejected (before keepalive, at 10 s,
    // or its session, at 30 s, could take it out).
    while !ejected() {
        assert!(
            paused.elapsed() < Duration::from_secs(8),
            "the hung provider is still not ejected {:?} after the pause",
            paused.elapsed()
        );
        let calls: Vec<_> = (0..4).map(|_| tokio::spawn(call(client.clone()))).collect();
        for c in calls {
            let _ = c.await;
        }
    }
    // While it is out, every call is answered by the others.
    let mut failed = Vec::new();
    for _ in 0..40 {
        if !ejected() {
            break;
        }
        if let Err(status) = call(client.clone()).await {
            failed.push(status);
        }
    }
    assert!(
        failed.is_empty(),
        "calls failed with the hung provider ejected: {failed:?}"
    );
}
