//! Providers that hang or vanish mid-call, as real processes: paused with SIGSTOP (a stream
//! whose provider is silent), killed with SIGKILL (a connection broken mid-call).

use crate::common;

use std::time::{Duration, Instant};

use common::echo_load::{EchoProcess, consumer, spawn_echo, spawn_echo_with_session};
use common::zk;
use zoorpc::apps::echo::{EchoClient, EchoRequest};
use zoorpc::consumer::{BalancedChannel, Consumer, Strategy};
use zoorpc_testkit::{ChildProcess, unique_path};

/// `zoorpc proxy` for `base` on a free loopback port: the process and a channel to it.
async fn start_proxy(base: &str) -> (ChildProcess, tonic::transport::Channel) {
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
    let addr = line.split_whitespace().nth(1).expect("address");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("proxy URL")
        .connect()
        .await
        .expect("connect to the proxy");
    (proxy, channel)
}

/// `zoorpc-echo` for `base` whose ZooKeeper session outlives the test (30 s): paused, it stays
/// in the consumer's list, so only the channel's own signals can take it out.
fn spawn_lasting_echo(base: &str) -> EchoProcess {
    spawn_echo_with_session(base, 0, Duration::from_secs(30))
}

/// A long server stream: `count` messages `interval_ms` apart.
fn long_stream(interval_ms: u32) -> EchoRequest {
    EchoRequest {
        text: "s".into(),
        count: 10_000,
        interval_ms,
        ..EchoRequest::default()
    }
}

/// Reads `stream` to its end, within `bound`: how it ended, `None` if it still runs.
async fn stream_end(
    stream: &mut tonic::Streaming<zoorpc::apps::echo::EchoReply>,
    bound: Duration,
) -> Option<Option<tonic::Status>> {
    tokio::time::timeout(bound, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => break None,
                Err(status) => break Some(status),
            }
        }
    })
    .await
    .ok()
}

/// Kills `echo` (SIGKILL) once `stream`, one of its, carries messages: the stream must end
/// `UNAVAILABLE` naming it.
async fn kill_during_stream(
    echo: &mut EchoProcess,
    stream: &mut tonic::Streaming<zoorpc::apps::echo::EchoReply>,
) {
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
    assert!(matches!(first, Ok(Ok(Some(_)))), "{first:?}");
    echo.process.kill();
    let status = stream_end(stream, Duration::from_secs(10))
        .await
        .expect("the stream ends when its provider's connection breaks")
        .expect("a killed provider's stream must not end normally");
    assert_unavailable_naming(&status, &echo.url);
}

/// A provider of a new base path (named after `name`) and a consumer's client that lists it.
async fn one_provider(name: &str) -> (EchoProcess, Consumer, EchoClient<BalancedChannel>) {
    let base = unique_path(name);
    let echo = spawn_echo(&base);
    let consumer = consumer(&base, Strategy::Random, 1).await;
    let client = EchoClient::new(consumer.channel());
    (echo, consumer, client)
}

fn assert_unavailable_naming(status: &tonic::Status, url: &str) {
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(url),
        "names the provider: {status}"
    );
}

/// A server stream whose provider is paused (SIGSTOP) and whose caller set no deadline ends
/// with `UNAVAILABLE` once the connection's watchdog finds it silent: within its probe's wait
/// and timeout (10 s + 5 s), not never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_from_a_paused_provider_ends_unavailable_without_a_deadline() {
    let (echo, _consumer, mut client) = one_provider("hung-stream").await;
    let request = long_stream(50);
    let mut stream = client.expand(request).await.expect("headers").into_inner();
    for _ in 0..3 {
        let first = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
        assert!(matches!(first, Ok(Ok(Some(_)))), "{first:?}");
    }
    echo.process.pause().expect("SIGSTOP the provider");
    let paused = Instant::now();
    // The probe's wait + timeout, and room for a loaded machine.
    let bound = Duration::from_secs(10 + 5 + 10);
    let ended = stream_end(&mut stream, bound).await;
    let took = paused.elapsed();
    let ended = ended.unwrap_or_else(|| panic!("the stream still hangs {bound:?} after the pause"));
    let status = ended.expect("a paused provider's stream must not end normally");
    assert_unavailable_naming(&status, &echo.url);
    assert!(
        took >= Duration::from_secs(9),
        "ended before the watchdog could: {took:?}"
    );
}

/// A provider killed (SIGKILL) during a server stream: the stream ends `UNAVAILABLE` naming the
/// provider whose connection broke, not `UNKNOWN "transport error"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_during_a_stream_ends_it_unavailable_naming_the_provider() {
    let (mut echo, _consumer, mut client) = one_provider("killed-stream").await;
    let request = long_stream(20);
    let mut stream = client.expand(request).await.expect("headers").into_inner();
    kill_during_stream(&mut echo, &mut stream).await;
}

/// A provider killed (SIGKILL) while a call waits for its answer (a client stream it has
/// started reading): `UNAVAILABLE` naming the provider, on the default (non-idempotent) policy
/// that cannot retry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_mid_call_fails_it_unavailable_naming_the_provider() {
    let (mut echo, _consumer, mut client) = one_provider("killed-call").await;
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
    assert_unavailable_naming(&status, &echo.url);
}

/// The same through `zoorpc proxy`: a stream whose provider is killed ends `UNAVAILABLE` naming
/// the provider for the proxy's client too (its stream was reset before: `INTERNAL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_proxy_a_killed_providers_stream_ends_unavailable_naming_it() {
    let base = unique_path("killed-proxy");
    let mut echo = spawn_echo(&base);
    let (_proxy, channel) = start_proxy(&base).await;
    let mut client = EchoClient::new(channel);
    let request = long_stream(20);
    let mut stream = client.expand(request).await.expect("headers").into_inner();
    kill_during_stream(&mut echo, &mut stream).await;
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
    // Four callers at a time, until the hung provider is ejected (before the watchdog, at 15 s,
    // or its session, at 30 s, could take it out).
    while !ejected() {
        assert!(
            paused.elapsed() < Duration::from_secs(12),
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

/// The same through `zoorpc proxy`, whose clients cancel their calls when their own 1 s
/// deadline passes, before the proxy's timer would (their clock started earlier, by the
/// request's transit: 50 ms here): the hung provider is ejected in the proxy all the same, and
/// a run of 40 calls is then answered by the others (with it still picked, one call in three
/// would fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_proxy_short_deadlines_eject_a_hung_provider() {
    let base = unique_path("hung-proxy-deadlines");
    let echoes: Vec<_> = (0..3).map(|_| spawn_lasting_echo(&base)).collect();
    let (_proxy, channel) = start_proxy(&base).await;
    let client = EchoClient::new(channel);
    let call = |mut client: EchoClient<tonic::transport::Channel>| async move {
        let mut request = tonic::Request::new(common::echo_load::say("short"));
        request.set_timeout(Duration::from_secs(1));
        match tokio::time::timeout(Duration::from_millis(950), client.say(request)).await {
            Ok(answer) => answer,
            Err(_) => Err(tonic::Status::cancelled("the client's own deadline")),
        }
    };
    // The proxy lists the three once each has answered a call.
    let mut servers = std::collections::HashSet::new();
    let listed = Instant::now();
    while servers.len() < 3 {
        assert!(
            listed.elapsed() < Duration::from_secs(10),
            "answered by {servers:?}"
        );
        if let Ok(reply) = call(client.clone()).await {
            servers.insert(reply.into_inner().server);
        }
    }
    echoes[0].process.pause().expect("SIGSTOP a provider");
    let paused = Instant::now();
    let mut in_a_row = 0;
    while in_a_row < 40 {
        // Before the watchdog (a probe at 10 s, unanswered at 15 s) or the provider's session
        // (30 s) could take it out.
        assert!(
            paused.elapsed() < Duration::from_secs(12),
            "calls through the proxy still fail {:?} after the pause",
            paused.elapsed()
        );
        let calls: Vec<_> = (0..6).map(|_| tokio::spawn(call(client.clone()))).collect();
        for c in calls {
            match c.await {
                Ok(Ok(_)) => in_a_row += 1,
                _ => in_a_row = 0,
            }
        }
    }
}
