//! `zoorpc proxy`'s and the providers' metrics: they move with calls, kills and the list; retries and refusals told apart.

use super::*;

#[test]
fn proxy_and_provider_metrics_move_with_calls_kills_and_the_list() {
    let connect = zk().connect_string();
    let base = unique_path("metrics");
    let mut a = spawn_provider(&connect, &base, 0, &[]);
    let _b = spawn_provider(&connect, &base, 0, &[]);
    let provider_metrics = free_addr();
    let mut cmd = Command::new(ZOORPC);
    cmd.args([
        "provider",
        "--zk",
        &connect,
        "--base-path",
        &unique_path("metrics-own"),
    ])
    .args(["--metrics", &provider_metrics]);
    let mut own = ChildProcess::spawn("provider --metrics", cmd).unwrap();
    let line = own
        .wait_for_line("registered ", Duration::from_secs(20))
        .unwrap();
    let own_url = line.split_whitespace().nth(2).unwrap().to_owned();
    let body = scrape(&provider_metrics);
    assert_eq!(
        value(&body, &format!("zoorpc_zk_connected{{zk=\"{connect}\"}}")),
        Some(1.0),
        "{body}"
    );
    // Served calls by method and code: three answered, one a method it does not have.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(own_url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HelloServiceClient::new(channel.clone());
        for _ in 0..3 {
            client
                .say_hello(HelloRequest { name: "x".into() })
                .await
                .unwrap();
        }
        let status = crate::call_a_method_no_provider_has(channel).await;
        assert_eq!(status.code(), tonic::Code::Unimplemented);
    });
    let body = scrape(&provider_metrics);
    let served = |method: &str, code: &str| {
        value(
            &body,
            &format!(
                "zoorpc_served_total{{method=\"/hello.v1.HelloService/{method}\",code=\"{code}\"}}"
            ),
        )
    };
    assert_eq!(served("SayHello", "OK"), Some(3.0), "{body}");
    // Methods the server does not have are one series, whatever their made-up names.
    assert_eq!(
        value(
            &body,
            "zoorpc_served_total{method=\"unknown\",code=\"UNIMPLEMENTED\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert!(
        !body.contains("Nope"),
        "a client-made name became a label: {body}"
    );

    let proxy_metrics = free_addr();
    let mut cmd = Command::new(ZOORPC);
    cmd.args(["proxy", "--zk", &connect, "--listen", "127.0.0.1:0"])
        .args([
            "--base-path",
            &base,
            "--idempotent",
            "--metrics",
            &proxy_metrics,
        ]);
    let mut proxy = ChildProcess::spawn("proxy --metrics", cmd).unwrap();
    let line = proxy
        .wait_for_line("listening ", Duration::from_secs(20))
        .unwrap();
    let addr = line.split_whitespace().nth(1).unwrap().to_owned();
    let live = format!("zoorpc_live_endpoints{{base_path=\"{base}\"}}");
    let body = scrape(&proxy_metrics);
    assert_eq!(value(&body, &live), Some(2.0), "{body}");
    assert_eq!(
        value(&body, "zoorpc_calls_total{outcome=\"answered\"}"),
        None
    );

    let mut client = rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        HelloServiceClient::new(channel)
    });
    let mut call = || rt.block_on(client.say_hello(HelloRequest { name: "m".into() }));
    for _ in 0..10 {
        call().unwrap();
    }
    let body = scrape(&proxy_metrics);
    assert_eq!(
        value(&body, "zoorpc_calls_total{outcome=\"answered\"}"),
        Some(10.0),
        "{body}"
    );
    let by_endpoint: f64 = [&a.url, &_b.url]
        .iter()
        .filter_map(|u| {
            value(
                &body,
                &format!("zoorpc_attempts_total{{endpoint=\"{u}\",code=\"OK\"}}"),
            )
        })
        .sum();
    assert_eq!(by_endpoint, 10.0, "{body}");

    // Kill a: calls that pick it are refused (never sent), it is ejected, the call retried.
    a.process.kill();
    let mut ejected = false;
    for _ in 0..200 {
        call().unwrap();
        let body = scrape(&proxy_metrics);
        if value(
            &body,
            &format!("zoorpc_ejections_total{{endpoint=\"{}\"}}", a.url),
        ) == Some(1.0)
        {
            ejected = true;
            let failures = format!(
                "zoorpc_attempt_failures_total{{endpoint=\"{}\",class=\"never_sent\"}}",
                a.url
            );
            assert!(value(&body, &failures).unwrap_or(0.0) >= 1.0, "{body}");
            assert!(
                value(&body, "zoorpc_retries_total").unwrap_or(0.0) >= 1.0,
                "{body}"
            );
            assert_eq!(
                value(&body, "zoorpc_calls_total{outcome=\"failed\"}"),
                None,
                "{body}"
            );
            break;
        }
    }
    assert!(ejected, "a was never ejected: {}", scrape(&proxy_metrics));
    // Its node expires: the live list shrinks.
    let gone = rt.block_on(async {
        let client = raw_client(&connect).await;
        wait_node_gone(&client, &a.node, Duration::from_secs(20)).await
    });
    assert!(gone);
    wait_value(&proxy_metrics, &live, 1.0);
    // A taken address (the running provider's): one error line naming it, status 1.
    let output = Command::new(ZOORPC)
        .args(["provider", "--zk", &connect, "--metrics", &provider_metrics])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&provider_metrics) && stderr.contains("--metrics"),
        "{stderr}"
    );
    proxy.signal(libc::SIGTERM).unwrap();
    own.signal(libc::SIGTERM).unwrap();
    own.wait_for_line("stopped", Duration::from_secs(20))
        .unwrap();
}

/// `zoorpc_retries_total` counts retries made: with one provider, dead, every call fails after
/// its one attempt and no retry is counted (it counted one per call: the decision to retry
/// with nowhere left to go).
#[test]
fn retries_count_only_attempts_made_again() {
    let connect = zk().connect_string();
    let base = unique_path("metrics-no-retry");
    let dead = free_addr(); // nothing listens there once the probe listener is gone
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(register_providers(&connect, &base, &[&dead]));
    let metrics = free_addr();
    let (_proxy, listen) = proxy_with_metrics(&connect, &base, &metrics);
    rt.block_on(async {
        let mut client = hello_client(&listen).await;
        for _ in 0..5 {
            let status = client
                .say_hello(HelloRequest { name: "x".into() })
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
        }
    });
    let body = scrape(&metrics);
    assert_eq!(
        value(&body, "zoorpc_calls_total{outcome=\"failed\"}"),
        Some(5.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "zoorpc_retries_total").unwrap_or(0.0),
        0.0,
        "{body}"
    );
}

/// A standby's refusal is counted `refused`, a provider's own `UNAVAILABLE` answer
/// `unavailable` (both were `refused`, which reads as a refused connection).
#[test]
fn a_standbys_refusal_and_an_answered_unavailable_are_told_apart() {
    let connect = zk().connect_string();
    let base = unique_path("metrics-classes");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (overloaded, standby) = rt.block_on(async {
        let overloaded = answering_with(|| tonic::Status::unavailable("overloaded")).await;
        let standby = answering_with(|| zoorpc::proto::standby::standby_status(None)).await;
        register_providers(&connect, &base, &[&overloaded, &standby]).await;
        (overloaded, standby)
    });
    let metrics = free_addr();
    let (_proxy, listen) = proxy_with_metrics(&connect, &base, &metrics);
    let series = |address: &str, class: &str| {
        format!("zoorpc_attempt_failures_total{{endpoint=\"http://{address}\",class=\"{class}\"}}")
    };
    let body = eventually_blocking("both classes counted", Duration::from_secs(30), || {
        rt.block_on(async {
            let status = hello_client(&listen)
                .await
                .say_hello(HelloRequest { name: "x".into() })
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
        });
        let body = scrape(&metrics);
        if value(&body, &series(&overloaded, "unavailable")).is_some()
            && value(&body, &series(&standby, "refused")).is_some()
        {
            Ok(body)
        } else {
            Err(body)
        }
    });
    assert_eq!(
        value(&body, &series(&overloaded, "refused")),
        None,
        "{body}"
    );
    assert_eq!(
        value(&body, &series(&standby, "unavailable")),
        None,
        "{body}"
    );
}
