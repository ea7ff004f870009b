//! `zoorpc proxy`: any gRPC client through it, with failover, following a master, its channels' status.

use super::*;

#[test]
fn proxy_forwards_any_grpc_client_with_failover_while_a_provider_is_killed() {
    common::init_logging();
    let connect = zk().connect_string();
    let base = unique_path("cli-proxy");
    let mut a = spawn_provider(&connect, &base, 0, &[]);
    let b = spawn_provider(&connect, &base, 0, &[]);
    let (mut proxy, _line, addr) = start_proxy(&connect, &["--base-path", &base, "--idempotent"]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = channel_to(&addr).await;
        let client = HelloServiceClient::new(channel.clone());
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let answered_by_a = Arc::new(AtomicU64::new(0));
        let a_url = a.url.clone();
        let looper = {
            let (ok, failed, stop, by_a) = (
                ok.clone(),
                failed.clone(),
                stop.clone(),
                answered_by_a.clone(),
            );
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut errors = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let request = HelloRequest {
                        name: "proxy".into(),
                    };
                    match client.say_hello(request).await {
                        Ok(reply) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if reply.get_ref().provider == a_url {
                                by_a.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            errors.push(e.to_string());
                        }
                    }
                }
                errors
            })
        };
        // Kill a provider once both answered through the proxy, then go on calling.
        let answered = || {
            (
                ok.load(Ordering::SeqCst),
                answered_by_a.load(Ordering::SeqCst),
            )
        };
        let both = "20 calls answered through the proxy, provider a's among them";
        eventually(both, Duration::from_secs(20), || async {
            match answered() {
                (ok, by_a) if ok >= 20 && by_a > 0 => Ok(()),
                (ok, by_a) => Err(format!("{ok} answered, {by_a} by a")),
            }
        })
        .await;
        a.process.kill();
        let before = ok.load(Ordering::SeqCst);
        eventually(
            "200 calls answered after the kill",
            Duration::from_secs(20),
            || async {
                match ok.load(Ordering::SeqCst) - before {
                    more if more >= 200 => Ok(()),
                    more => Err(format!(
                        "{more} answered, {} failed",
                        failed.load(Ordering::SeqCst)
                    )),
                }
            },
        )
        .await;
        stop.store(true, Ordering::SeqCst);
        let errors = looper.await.unwrap();
        assert!(
            errors.is_empty(),
            "failed calls through the proxy: {errors:?}"
        );
        assert_eq!(failed.load(Ordering::SeqCst), 0);

        // A method no provider has: the provider's own answer (UNIMPLEMENTED) comes back.
        let status = crate::call_a_method_no_provider_has(channel).await;
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{status}");
    });

    // No provider left: an UNAVAILABLE status naming the base path, not a dropped connection.
    let mut b = b;
    b.process.kill();
    rt.block_on(async {
        let client = raw_client(&connect).await;
        for p in [&a.node, &b.node] {
            common::wait_node_gone(&client, p, Duration::from_secs(20)).await;
        }
        let channel = channel_to(&addr).await;
        // The proxy hears of the deletions a moment after ZooKeeper made them: until then a
        // call may still meet a dead provider (refused).
        let naming = "an answer naming the base path";
        let status = eventually(naming, Duration::from_secs(5), || async {
            let status = HelloServiceClient::new(channel.clone())
                .say_hello(HelloRequest { name: "x".into() })
                .await
                .unwrap_err();
            if status.message().contains(&base) {
                Ok(status)
            } else {
                Err(status)
            }
        })
        .await;
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    });
    proxy.signal(libc::SIGTERM).unwrap();
    proxy
        .wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();
}

#[test]
fn proxy_with_master_follows_the_master_across_a_handover() {
    let connect = zk().connect_string();
    let path = format!("{}/Hello:1.0.0", unique_path("cli-proxy-master"));
    let ((first, first_addr), (mut second, second_addr)) = master_and_standby(&connect, &path);
    let (mut proxy, line, _addr) = start_proxy(&connect, &["--master", &path]);
    assert!(
        line.ends_with(&format!("-> the master of {path}")),
        "{line}"
    );
    let addr = line.split_whitespace().nth(1).unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut client = rt.block_on(async {
        let channel = channel_to(&addr).await;
        HelloServiceClient::new(channel)
    });
    let mut call = || {
        rt.block_on(client.say_hello(HelloRequest { name: "m".into() }))
            .map(|r| r.into_inner().provider)
    };
    for _ in 0..5 {
        assert_eq!(call().unwrap(), first_addr);
    }
    // The master resigns (SIGTERM): calls go to the new master, none fails.
    first.signal(libc::SIGTERM).unwrap();
    second
        .wait_for_line("role master", Duration::from_secs(20))
        .unwrap();
    for _ in 0..5 {
        assert_eq!(call().unwrap(), second_addr);
    }
    proxy.signal(libc::SIGTERM).unwrap();
    proxy
        .wait_for_line("stopped", Duration::from_secs(10))
        .unwrap();
}

/// `zoorpc proxy --attempt-timeout-ms`: a provider slower than the attempt timeout answers the
/// client `DEADLINE_EXCEEDED` (the request may have been processed; an `UNAVAILABLE` would
/// invite the client to retry it) naming the reason, within about the timeout.
#[test]
fn proxy_keeps_the_channels_status_and_its_attempt_timeout() {
    common::init_logging();
    let connect = zk().connect_string();
    let base = unique_path("cli-proxy-slow");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (provider, calls) = rt.block_on(common::echo_load::echo_provider(
        &base,
        Duration::from_secs(2),
    ));
    let (_proxy, _line, addr) = start_proxy(
        &connect,
        &["--base-path", &base, "--attempt-timeout-ms", "300"],
    );
    rt.block_on(async {
        let channel = channel_to(&addr).await;
        let mut client = zoorpc::apps::echo::EchoClient::new(channel);
        let started = Instant::now();
        let status = client
            .say(common::echo_load::say("slow"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status}");
        assert!(status.message().contains("no answer"), "{status}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "sent once (not idempotent)"
        );
        provider.shutdown().await.unwrap();
    });
}
